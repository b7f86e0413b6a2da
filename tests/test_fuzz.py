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


# -- structural fuzzing (issue 20) ----------------------------------------------------------
# The tests above throw random values at random keys, and rarely get past the first check
# (buffer count against frame count): a list where a layout belongs never reached the code
# that crashed on it. These start from a valid message of every op and replace any of its
# fields, at any depth, with any JSON (nesting included, thousands deep), keeping the rest
# consistent; after each message the engine must still answer hello, and after all of them
# serve an edit.

STRUCTURAL = settings(
    max_examples=int(os.environ.get("SKETCHFILL_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DEEP = "\x00deep{}\x00"  # stands for raw nested JSON text, spliced in after json.dumps
any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**80), 2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1, 1.0, 0, -1, 2**63, "", "RGBA", "L", "edit", "image", "mask"])
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)
raw_values = st.one_of(
    any_json.map(lambda v: ("json", v)),
    st.integers(17, 4000).map(lambda n: ("deep", n)),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-0", "1" * 5000]).map(
        lambda t: ("text", t)
    ),
)


def _valid(op: str) -> tuple[dict, list[bytes]]:
    """A valid request of `op` (8x8 region) as a header and its frames."""
    if op == "hello":
        return {"protocol": 1, "op": "hello", "id": "h"}, []
    if op == "cancel":
        return {"protocol": 1, "op": "cancel", "id": "c", "target": "t"}, []
    layouts = {
        "edit": [("image", "RGBA"), ("mask", "L"), ("sketch", "L"), ("color", "RGBA")],
        "tone": [("image", "RGBA"), ("mask", "L")],
        "composite": [("image", "RGBA"), ("face", "RGBA"), ("mask", "L")],
        "restore": [("image", "RGBA"), ("mask", "L")],
    }[op]
    specs, frames = [], []
    for name, layout in layouts:
        n = 8 * 8 * (1 if layout == "L" else 4)
        specs.append({"name": name, "width": 8, "height": 8, "layout": layout, "bytes": n})
        frames.append(bytes([255 if name in ("mask", "face") else 90]) * n)
    header = {
        "protocol": 1,
        "op": op,
        "id": f"{op}-1",
        "canvas": {"width": 8, "height": 8},
        "region": {"x": 0, "y": 0, "width": 8, "height": 8},
        "seed": 3,
        "feather": 2,
        "reply_layout": "RGBA",
        "buffers": specs,
    }
    return header, frames


def _paths(value, prefix=()) -> list[tuple]:
    """Every place in a header a value can be replaced: keys of objects, items of lists."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _splice(header: dict, path: tuple, raw: tuple, slot: int) -> None:
    kind, value = raw
    target = header
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value if kind == "json" else DEEP.format(slot)


def _render(header: dict, raws: list[tuple]) -> bytes:
    text = json.dumps(header, separators=(",", ":"))
    for slot, (kind, value) in enumerate(raws):
        if kind != "json":
            raw = "[" * value + "]" * value if kind == "deep" else value
            text = text.replace(json.dumps(DEEP.format(slot)), raw)
    return text.encode()


def _still_answers_hello(sock: zmq.Socket) -> None:
    sock.send_multipart([b'{"protocol":1,"op":"hello","id":"alive?"}'])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert sock.poll(int((deadline - time.monotonic()) * 1000) + 1), "the engine is gone"
        header = json.loads(sock.recv_multipart()[0])
        if header.get("id") == "alive?":
            assert header["op"] == "hello", header
            return
    raise AssertionError("no hello answer")


@STRUCTURAL
@given(
    op=st.sampled_from(["hello", "cancel", "edit", "tone", "composite", "restore"]),
    data=st.data(),
)
def test_any_json_in_any_field_of_any_op(sock, op, data):
    header, frames = _valid(op)
    paths = _paths(header)
    chosen = data.draw(st.lists(st.sampled_from(paths), min_size=1, max_size=3, unique=True))
    raws = []
    for path in sorted(chosen, key=len, reverse=True):  # deepest first: parents stay dicts
        raw = data.draw(raw_values)
        try:
            _splice(header, path, raw, len(raws))
        except (KeyError, IndexError, TypeError):
            continue  # an ancestor was replaced already
        raws.append(raw)
    if data.draw(st.booleans()):  # and sometimes a frame too many or too few
        frames = frames[:-1] if frames and data.draw(st.booleans()) else [*frames, b"\0" * 64]
    drain(sock)
    sock.send_multipart([_render(header, raws), *frames])
    assert sock.poll(10000), "no answer"
    first = json.loads(sock.recv_multipart()[0])
    assert first["protocol"] == 1 and first["op"] in ("error", "hello", "cancel", "progress")
    _still_answers_hello(sock)


frame_zero = st.one_of(
    st.binary(max_size=200),
    st.integers(1, 70000).map(lambda n: b"[" * n),
    st.integers(1, 5000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    any_json.map(lambda v: json.dumps({"protocol": 1, "op": "edit", "buffers": v}).encode()),
)


@STRUCTURAL
@given(first=frame_zero, rest=st.lists(st.binary(max_size=600), max_size=6))
def test_arbitrary_frame_lists(sock, first, rest):
    drain(sock)
    ask(sock, [first, *rest])
    _still_answers_hello(sock)


def test_engine_serves_a_valid_edit_after_the_structural_fuzzing(engine):
    assert_still_serves(engine)
