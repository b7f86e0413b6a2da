"""Property-based fuzzing of protocol 1 against a real engine on loopback: whatever a
client sends, it gets a coded answer, the engine keeps serving, memory stays bounded."""

from __future__ import annotations

import json
import os
import time

import pytest
import zmq
from conftest import running_engine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_server import assert_still_serves, edit_request

pytestmark = pytest.mark.slow
FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from onnx_fixtures import build_model

    model = build_model(tmp_path_factory.mktemp("fuzz") / "echo", resolution=64)
    with running_engine(model, max_message_bytes=1 << 20, max_pixels=200_000) as e:
        yield e


@pytest.fixture(scope="module")
def sock(engine):
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(engine.bound_endpoint)
    yield s
    s.close()


def ask(sock: zmq.Socket, frames: list[bytes]) -> dict:
    sock.send_multipart(frames)
    assert sock.poll(5000), f"no answer to {frames[:1]!r}"
    header = json.loads(sock.recv_multipart()[0])
    assert header["protocol"] == 1 and header["op"] in ("error", "hello", "cancel", "progress")
    if header["op"] == "error":
        assert isinstance(header["code"], str) and header["message"]
    return header


def drain(sock: zmq.Socket) -> None:
    while sock.poll(50):
        sock.recv_multipart()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
buffer_specs = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["image", "mask", "sketch", "color", "x"]) | st.text(max_size=5),
        "width": st.integers(-5, 2**40) | json_values,
        "height": st.integers(-5, 2**40) | json_values,
        "layout": st.sampled_from(["L", "RGB", "RGBA", "BGRA", "CMYK"]) | json_values,
        "bytes": st.integers(-5, 2**62) | json_values,
    },
)
headers = st.fixed_dictionaries(
    {"protocol": st.just(1) | json_values},
    optional={
        "op": st.sampled_from(["hello", "edit", "cancel", "result", "explode"]) | json_values,
        "id": st.text(min_size=1, max_size=10) | json_values,
        "target": st.text(max_size=10) | json_values,
        "canvas": json_values,
        "region": json_values,
        "seed": json_values,
        "feather": json_values,
        "buffers": st.lists(buffer_specs, max_size=4) | json_values,
    },
)


@FUZZ
@given(frames=st.lists(st.binary(max_size=300), min_size=1, max_size=5))
def test_random_bytes(sock, frames):
    ask(sock, frames)


@FUZZ
@given(header=headers, payloads=st.lists(st.binary(max_size=2000), max_size=4))
def test_random_headers_and_lying_buffers(sock, header, payloads):
    drain(sock)  # an accepted edit may have left progress behind
    ask(sock, [json.dumps(header, allow_nan=True).encode(), *payloads])


def test_cancel_storm_and_disconnects_leave_the_engine_serving(engine):
    ctx = zmq.Context.instance()
    for round_ in range(20):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(engine.bound_endpoint)
        rid = f"r{round_}"
        s.send_multipart(edit_request().frames(rid))
        for i in range(25):
            target = rid if i % 5 == 0 else f"nobody-{i}"
            s.send_multipart(
                [
                    json.dumps(
                        {"protocol": 1, "op": "cancel", "id": f"c{i}", "target": target}
                    ).encode()
                ]
            )
        s.close()  # gone before reading a single reply
    assert_still_serves(engine)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_memory_stays_bounded_under_garbage(engine, sock):
    frames_sets = [
        [b"{" * 1000],
        [
            json.dumps(
                {
                    "protocol": 1,
                    "op": "edit",
                    "id": "m",
                    "buffers": [
                        {
                            "name": "image",
                            "width": 300,
                            "height": 300,
                            "layout": "RGBA",
                            "bytes": 360000,
                        }
                    ],
                }
            ).encode(),
            b"\0" * 360000,
        ],
        [b"x" * 900_000],
    ]
    for frames in frames_sets * 50:  # warm up allocator pools
        ask(sock, frames)
    before = rss_bytes()
    started = time.monotonic()
    for frames in frames_sets * 400:
        ask(sock, frames)
    grown = rss_bytes() - before
    assert grown < 64 * 2**20, f"engine process grew by {grown / 2**20:.0f} MiB"
    assert time.monotonic() - started < 120
    assert_still_serves(engine)
