"""The engine over real ZeroMQ sockets on loopback: protocol, edits, progress, cancel,
concurrency, and every bad input of the engine issue. After each fault the engine must
still serve the next client correctly."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import zmq
from conftest import face_like, running_engine
from sketchfill.wire import protocol
from sketchfill.wire.client import Client
from sketchfill.wire.errors import EngineError
from sketchfill.wire.protocol import Box
from sketchfill.wire.requests import EditRequest


def edit_request(w: int = 96, h: int = 80, *, seed: int | None = 1, color=(250, 0, 0), **kw):
    image = face_like(h, w)
    mask = np.zeros((h, w), np.uint8)
    mask[h // 4 : h // 2, w // 4 : w // 2] = 255
    paint = np.zeros((h, w, 4), np.uint8)
    paint[..., :3] = color
    paint[..., 3] = 255
    return EditRequest(w, h, Box(0, 0, w, h), image, mask, color=paint, seed=seed, **kw)


def raw_socket(engine) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(engine.bound_endpoint)
    return sock


def receive(sock: zmq.Socket, timeout: float = 10.0) -> tuple[dict, list[bytes]]:
    assert sock.poll(int(timeout * 1000)), "no answer from the engine"
    frames = sock.recv_multipart()
    return json.loads(frames[0]), frames[1:]


def assert_still_serves(engine) -> None:
    with Client(engine.bound_endpoint) as client:
        result = client.edit(edit_request(), timeout=30)
        assert result.width > 0 and result.seed == 1


def test_hello_reports_versions_model_and_limits(engine):
    with Client(engine.bound_endpoint) as client:
        hello = client.hello()
    assert hello["protocol"] == 1 and hello["op"] == "hello"
    assert hello["model"]["name"] == "echo" and len(hello["model"]["sha256"]) == 64
    assert hello["limits"]["max_pixels"] == engine.config.max_pixels
    assert hello["limits"]["max_message_bytes"] == engine.config.max_message_bytes
    assert hello["context"]["min_side"] == 64
    assert set(hello["ops"]) == {"hello", "edit", "cancel", "tone", "composite", "restore"}
    # Each tool's context has its own model's size: the shipped composite network's 128;
    # restore asks for a wide area (it finds the face in what is sent).
    assert hello["tools"]["composite"]["context"]["min_side"] == 128
    assert hello["tools"]["restore"]["context"] == {"margin": 2.0, "min_side": 2048}


def test_edit_streams_progress_then_a_result(engine):
    stages = []
    with Client(engine.bound_endpoint) as client:
        result = client.edit(edit_request(), on_progress=lambda s, f, q: stages.append((s, f, q)))
    assert stages[0] == ("queued", 0.0, 1)
    assert [s for s, _, _ in stages[1:]] == ["preprocess", "generate", "composite"]
    assert (result.x, result.y, result.width, result.height) == (24, 20, 24, 20)
    assert result.layout == "RGBA" and len(result.data) == 24 * 20 * 4
    patch = np.frombuffer(result.data, np.uint8).reshape(20, 24, 4)
    assert np.abs(patch[5:15, 5:19, :3].astype(int) - [250, 0, 0]).max() <= 3


def test_region_offsets_and_bgra_round_trip(engine):
    """A client sending only a region of a big canvas, in Krita's byte order."""
    w, h = 100, 90
    canvas_w, canvas_h = 5000, 4000
    region = Box(3000, 2000, w, h)
    req = edit_request(w, h, color=(10, 200, 30))
    bgra = np.ascontiguousarray(req.image[..., [2, 1, 0, 3]])
    paint = np.ascontiguousarray(req.color[..., [2, 1, 0, 3]])
    request = EditRequest(
        canvas_w,
        canvas_h,
        region,
        bgra,
        req.mask,
        image_layout="BGRA",
        color=paint,
        color_layout="BGRA",
        seed=3,
        reply_layout="BGRA",
    )
    with Client(engine.bound_endpoint) as client:
        result = client.edit(request)
    assert (result.x, result.y) == (3000 + 25, 2000 + 22)
    assert result.layout == "BGRA"
    patch = np.frombuffer(result.data, np.uint8).reshape(result.height, result.width, 4)
    assert np.abs(patch[8, 8, :3].astype(int) - [30, 200, 10]).max() <= 3  # B, G, R


def test_seed_is_chosen_and_reported_when_left_out(engine):
    with Client(engine.bound_endpoint) as client:
        a = client.edit(edit_request(seed=None))
        b = client.edit(edit_request(seed=None))
    assert a.seed != b.seed


def test_queue_positions_hello_and_other_clients_served_during_long_edit(slow_model):
    with running_engine(slow_model) as engine:
        clients = [Client(engine.bound_endpoint) for _ in range(3)]
        ids = [clients[0].submit(edit_request(300, 300))]
        time.sleep(0.3)  # the first edit is running now; the next two wait
        ids += [c.submit(edit_request(300, 300)) for c in clients[1:]]
        time.sleep(0.2)
        t0 = time.monotonic()
        with Client(engine.bound_endpoint) as fourth:
            hello = fourth.hello(timeout=5)
        assert time.monotonic() - t0 < 0.5, "hello waited for the running edit"
        assert hello["queued"] == 2
        positions = []
        last = clients[2].wait(ids[2], on_progress=lambda s, f, q: positions.append(q), timeout=60)
        queued = [q for q in positions if q is not None]
        assert queued[0] == 2 and queued[-1] == 1, positions
        assert last.width == 75
        for client, rid in zip(clients[:2], ids[:2]):
            assert client.wait(rid, timeout=60).width == 75
            client.close()
        clients[2].close()


def test_cancel_running_and_queued_edits(slow_model):
    with running_engine(slow_model) as engine, Client(engine.bound_endpoint) as client:
        running = client.submit(edit_request(300, 300))
        queued = client.submit(edit_request(300, 300))
        time.sleep(0.5)
        t0 = time.monotonic()
        client.cancel(queued)
        client.cancel(running)
        for rid in (queued, running):
            with pytest.raises(EngineError) as err:
                client.wait(rid, timeout=30)
            assert err.value.code == "cancelled"
        assert time.monotonic() - t0 < 1.5, "a running generator was not stopped promptly"
        assert client.edit(edit_request(300, 300), timeout=60).width == 75


def test_should_cancel_callback_stops_a_blocking_edit(slow_model):
    with running_engine(slow_model) as engine, Client(engine.bound_endpoint) as client:
        t0 = time.monotonic()
        with pytest.raises(EngineError) as err:
            client.edit(edit_request(300, 300), should_cancel=lambda: time.monotonic() - t0 > 0.3)
        assert err.value.code == "cancelled"


def test_cancel_of_unknown_id_is_not_found(engine):
    sock = raw_socket(engine)
    sock.send_multipart(protocol.encode({"op": "cancel", "id": "c1", "target": "nope"}))
    header, _ = receive(sock)
    assert (header["op"], header["code"], header["id"]) == ("error", "not_found", "c1")
    assert_still_serves(engine)


def test_a_client_cannot_cancel_another_clients_edit(slow_model):
    with running_engine(slow_model) as engine, Client(engine.bound_endpoint) as owner:
        rid = owner.submit(edit_request(300, 300))
        other = raw_socket(engine)
        other.send_multipart(protocol.encode({"op": "cancel", "id": "x", "target": rid}))
        header, _ = receive(other)
        assert header["code"] == "not_found"
        assert owner.wait(rid, timeout=60).width == 75


BAD_MESSAGES = {
    "garbage frame": ([b"\x00\xff garbage"], "bad_request"),
    "invalid json": ([b"{not json"], "bad_request"),
    "json not an object": ([b"[1, 2]"], "bad_request"),
    "wrong protocol": ([b'{"protocol": 99, "op": "hello", "id": "a"}'], "unsupported_protocol"),
    "no op": ([b'{"protocol": 1, "id": "a"}'], "bad_request"),
    "unknown op": ([b'{"protocol": 1, "op": "explode", "id": "a"}'], "bad_request"),
    "lying length": (
        [
            b'{"protocol":1,"op":"edit","id":"a","buffers":[{"name":"image","width":4,'
            b'"height":4,"layout":"RGBA","bytes":64}]}',
            b"short",
        ],
        "bad_request",
    ),
    "huge declared size": (
        [
            b'{"protocol":1,"op":"edit","id":"a","buffers":[{"name":"image","width":100000,'
            b'"height":100000,"layout":"RGBA","bytes":40000000000}]}',
            b"x" * 16,
        ],
        "bad_request",
    ),
    "more frames than buffers": (
        [b'{"protocol":1,"op":"hello","id":"a"}', b"extra"],
        "bad_request",
    ),
    "unknown layout": (
        [
            b'{"protocol":1,"op":"edit","id":"a","buffers":[{"name":"image","width":1,'
            b'"height":1,"layout":"CMYK","bytes":4}]}',
            b"xxxx",
        ],
        "bad_request",
    ),
}


@pytest.mark.parametrize("name", list(BAD_MESSAGES))
def test_malformed_messages_get_coded_errors(engine, name):
    frames, code = BAD_MESSAGES[name]
    sock = raw_socket(engine)
    sock.send_multipart(frames)
    header, _ = receive(sock)
    assert header["op"] == "error" and header["code"] == code, header
    assert isinstance(header["message"], str) and len(header["message"]) > 10
    assert_still_serves(engine)


def _edit_frames(req: EditRequest, **header_changes) -> list:
    frames = req.frames("r1")
    header = json.loads(frames[0])
    header.update(header_changes)
    return [json.dumps(header).encode(), *frames[1:]]


def _send_edit(engine, frames) -> dict:
    sock = raw_socket(engine)
    sock.send_multipart(frames)
    header, _ = receive(sock)
    return header


@pytest.mark.parametrize(
    "change,code,words",
    [
        ({"canvas": {"width": 50, "height": 50}}, "bad_request", "does not lie inside"),
        ({"region": {"x": 0, "y": 0, "width": 50, "height": 80}}, "bad_request", "all layers"),
        ({"canvas": "big"}, "bad_request", "canvas"),
        ({"seed": -4}, "bad_request", "seed"),
        ({"feather": 1000}, "bad_request", "feather"),
        ({"reply_layout": "CMYK"}, "bad_request", "reply_layout"),
    ],
)
def test_inconsistent_edits_are_refused(engine, change, code, words):
    header = _send_edit(engine, _edit_frames(edit_request(), **change))
    assert (header["code"], header["id"]) == (code, "r1")
    assert words in header["message"]
    assert_still_serves(engine)


def test_missing_mask_buffer_is_refused(engine):
    req = edit_request()
    frames = req.frames("r1")
    header = json.loads(frames[0])
    header["buffers"] = header["buffers"][:1]
    reply = _send_edit(engine, [json.dumps(header).encode(), frames[1]])
    assert reply["code"] == "bad_request" and "'mask'" in reply["message"]
    assert_still_serves(engine)


def test_empty_mask_gets_empty_mask_error(engine):
    req = edit_request()
    req.mask[:] = 0
    with Client(engine.bound_endpoint) as client, pytest.raises(EngineError) as err:
        client.edit(req)
    assert err.value.code == "empty_mask"
    assert_still_serves(engine)


def test_sizes_over_the_limits(echo_model):
    with running_engine(echo_model, max_pixels=96 * 80 - 1, max_message_bytes=200_000) as engine:
        header = _send_edit(engine, edit_request().frames("r1"))
        assert header["code"] == "too_large" and "pixels" in header["message"]
        header = _send_edit(engine, [b'{"protocol":1,"op":"hello","id":"h"}', b"x" * 300_000])
        assert header["code"] == "too_large"
        with Client(engine.bound_endpoint) as client:
            assert client.edit(edit_request(60, 60)).width == 15


def test_duplicate_request_id_is_refused_while_active(slow_model):
    with running_engine(slow_model) as engine:
        sock = raw_socket(engine)
        frames = edit_request(300, 300).frames("dup")
        sock.send_multipart(frames)
        assert receive(sock)[0]["stage"] == "queued"
        sock.send_multipart(frames)
        while True:
            header, _ = receive(sock, 30)
            if header["op"] == "error":
                assert header["code"] == "bad_request" and "already in use" in header["message"]
                break


def test_client_that_disconnects_mid_request_does_not_disturb_others(slow_model):
    with running_engine(slow_model) as engine:
        leaver = raw_socket(engine)
        leaver.send_multipart(edit_request(300, 300).frames("gone"))
        receive(leaver)  # queued
        leaver.close(linger=0)
        with Client(engine.bound_endpoint) as client:
            t0 = time.monotonic()
            assert client.edit(edit_request(300, 300), timeout=60).width == 75
            # The leaver's edit was cancelled when its reply could not be delivered, or ran;
            # either way the next client got its answer.
            assert time.monotonic() - t0 < 20


def test_client_reports_an_engine_that_dies_mid_request(slow_model):
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    proc = ctx.Process(target=_serve_in_child, args=(str(slow_model), ready))
    proc.start()
    try:
        endpoint = ready.get(timeout=60)
        with Client(endpoint) as client:
            rid = client.submit(edit_request(300, 300))
            time.sleep(0.5)
            proc.kill()
            t0 = time.monotonic()
            with pytest.raises(EngineError) as err:
                client.wait(rid, timeout=30)
            assert err.value.code == "unreachable" and "closed the connection" in err.value.message
            assert time.monotonic() - t0 < 5
    finally:
        proc.kill()
        proc.join()


def _serve_in_child(model: str, ready) -> None:
    from sketchfill.serve.server import Engine, ServeConfig

    engine = Engine(ServeConfig(endpoint="tcp://127.0.0.1:*", model=model, threads=2, warmup=0))
    import threading

    t = threading.Thread(target=engine.serve_forever, daemon=True)
    t.start()
    engine.ready.wait(30)
    ready.put(engine.bound_endpoint)
    t.join()


def test_engine_without_model_says_so_and_keeps_serving(tmp_path):
    with (
        running_engine(tmp_path / "no-such-model") as engine,
        Client(engine.bound_endpoint) as client,
    ):
        hello = client.hello()
        assert hello["model"] is None and hello["model_error"]["code"] == "model_missing"
        with pytest.raises(EngineError) as err:
            client.edit(edit_request())
        assert err.value.code == "model_missing" and "model" in err.value.message


def test_concurrent_clients_all_get_their_own_results(echo_model):
    with running_engine(echo_model, workers=2) as engine:
        clients = [Client(engine.bound_endpoint) for _ in range(6)]
        colours = [(i * 40, 255 - i * 40, 7) for i in range(6)]
        ids = [c.submit(edit_request(color=col)) for c, col in zip(clients, colours)]
        for c, rid, col in zip(clients, ids, colours):
            r = c.wait(rid, timeout=30)
            patch = np.frombuffer(r.data, np.uint8).reshape(r.height, r.width, 4)
            assert np.abs(patch[10, 12, :3].astype(int) - col).max() <= 3
            c.close()


def test_one_client_waits_for_several_edits_in_any_order(engine):
    with Client(engine.bound_endpoint) as client:
        first = client.submit(edit_request(color=(255, 0, 0)))
        second = client.submit(edit_request(color=(0, 0, 255)))
        client.hello()  # replies for the edits that arrive meanwhile are kept, not dropped
        b = client.wait(second)
        a = client.wait(first)
        assert client.pending == frozenset()
    pa = np.frombuffer(a.data, np.uint8).reshape(a.height, a.width, 4)
    pb = np.frombuffer(b.data, np.uint8).reshape(b.height, b.width, 4)
    assert pa[10, 12, 0] > 240 and pb[10, 12, 2] > 240


def test_engine_answers_before_the_other_tools_load_and_warms_up_in_the_background(
    echo_model, tmp_path
):
    """Start-up answers as soon as the edit model is in memory (no warm-up runs first):
    the other tools' models load behind it, and the hello describes them from their cards
    meanwhile ("loading"), so a plug-in can plan its request. A request that arrives
    while the background warms up runs at once: the warm-up gives way."""
    from sketchfill.tools import registry as tools

    with running_engine(echo_model, warmup=2) as engine:
        slots = engine._models
        assert slots["edit"].loaded
        with Client(engine.bound_endpoint) as client:
            hello = client.hello()
            result = client.edit(edit_request(), timeout=30)
        assert hello["model"]["name"] == "echo" and "loading" not in hello["model"]
        for op in ("tone", "composite", "restore"):
            described = hello["tools"][op]["model"]
            assert described is not None, (op, hello["tools"][op])
            assert described["name"] == tools.TOOLS[op].default_model
        assert result.width > 0
        deadline = time.monotonic() + 60
        while not all(s.loaded for s in slots.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(s.loaded for s in slots.values())
        while engine._warming_up and time.monotonic() < deadline:
            time.sleep(0.1)
        with Client(engine.bound_endpoint) as client:
            done = client.hello()
        assert all("loading" not in t["model"] for t in done["tools"].values())
        assert done["warming_up"] is False


def test_a_tool_asked_for_before_its_background_load_loads_at_once(echo_model):
    """A request for a tool whose model the background has not reached yet loads it then
    (the slot's lock makes the two loads one)."""
    with running_engine(echo_model) as engine:
        slot = engine._models["tone"]
        model = slot.get()
        assert slot.loaded and model.card.task == "tone"
        assert slot.get() is model
