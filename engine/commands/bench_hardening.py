"""`sketchfill bench --hardening`: issue 20's hostile clients against real engine processes.

Prints one table (case class, count tried, outcome) and the fairness and memory figures:
how long a second client's first edit waits behind a client that floods the engine and
never reads, what became of the flooder's requests, and the engine's peak RSS growth for
one all-mask edit per canvas size. Every product process (engine, broker, CLI, client
submit) runs from `--engine-src` when given, a folder holding another checkout's engine
package (e.g. ../main/engine), so the same command measures before and after:

    sketchfill bench --hardening                               # this checkout
    sketchfill bench --hardening --engine-src /path/to/main/engine
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import zmq

from ..pipeline.modelcard import write_atomic
from ..pipeline.runtime import resolve_model_dir

Frames = list[bytes]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--engine-src",
        type=Path,
        help="with --hardening: run the engine, broker and CLI from this engine folder",
    )
    p.add_argument(
        "--sizes",
        default="1000,2000,4000",
        help="with --hardening: canvas sides for the peak-memory figures (%(default)s)",
    )


# -- running product processes -------------------------------------------------------------


class Product:
    """How to start this checkout's (or --engine-src's) commands."""

    def __init__(self, src: Path | None, work: Path):
        self.env = dict(os.environ)
        self.src = src
        self.logs = work / "logs"
        self.logs.mkdir()
        if src is not None:
            shadow = work / "src"
            shadow.mkdir()
            (shadow / "sketchfill").symlink_to(Path(src).resolve())
            self.env["PYTHONPATH"] = os.pathsep.join(
                p for p in (str(shadow), os.environ.get("PYTHONPATH", "")) if p
            )

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "sketchfill.cli", *args]

    def popen(self, *args: str) -> subprocess.Popen:
        # The log goes to a file: a pipe nobody reads would stall a chatty engine.
        log = (self.logs / f"{args[0]}-{time.monotonic_ns()}.log").open("w")
        with log:
            return subprocess.Popen(
                self.command(*args),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(*args), env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def python(self, code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def free_port(pair: bool = False) -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not pair:
            return port
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


def dealer(endpoint: str, rcvhwm: int | None = None) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    if rcvhwm is not None:
        sock.setsockopt(zmq.RCVHWM, rcvhwm)
    sock.connect(endpoint)
    return sock


def answers_hello(endpoint: str, timeout: float = 3.0) -> bool:
    sock = dealer(endpoint)
    try:
        sock.send_multipart([b'{"protocol":1,"op":"hello","id":"alive"}'])
        deadline = time.monotonic() + timeout
        while sock.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            header = json.loads(sock.recv_multipart()[0])
            if header.get("id") == "alive":
                return header.get("op") == "hello"
        return False
    finally:
        sock.close()


@contextlib.contextmanager
def engine(
    product: Product, model: Path, *extra: str, ready: Callable[[str], bool] | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = product.popen("serve", "--endpoint", endpoint, "--model", str(model), *extra)
    ready = ready or (lambda e: answers_hello(e, 0.5))
    try:
        deadline = time.monotonic() + 90
        while not ready(endpoint):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the engine did not start (exit {proc.poll()})")
        yield endpoint, proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# -- hostile messages ----------------------------------------------------------------------


def _nested(n: int) -> str:
    return "[" * n + "]" * n


def _edit(**changes: Any) -> Frames:
    """A valid 96x80 edit (image, mask) with header fields replaced; a value that is a
    `Raw` is spliced in as JSON text."""
    w, h = 96, 80
    image = bytes(range(256)) * (w * h * 4 // 256)
    mask = bytearray(w * h)
    for y in range(20, 40):
        mask[y * w + 24 : y * w + 48] = b"\xff" * 24
    header = {
        "protocol": 1,
        "op": "edit",
        "id": "e1",
        "canvas": {"width": w, "height": h},
        "region": {"x": 0, "y": 0, "width": w, "height": h},
        "seed": 1,
        "feather": 0,
        "reply_layout": "RGBA",
        "buffers": [
            {"name": "image", "width": w, "height": h, "layout": "RGBA", "bytes": w * h * 4},
            {"name": "mask", "width": w, "height": h, "layout": "L", "bytes": w * h},
        ],
    }
    raws = {}
    for key, value in changes.items():
        if isinstance(value, Raw):
            raws[key] = value.text
            value = f"@@{key}@@"
        if key.startswith("buffers."):
            header["buffers"][0][key.split(".", 1)[1]] = value
        else:
            header[key] = value
    text = json.dumps(header)
    for key, raw in raws.items():
        text = text.replace(json.dumps(f"@@{key}@@"), raw)
    return [text.encode(), image, bytes(mask)]


class Raw:
    def __init__(self, text: str):
        self.text = text


def hostile_classes(rng: random.Random) -> dict[str, list[Frames]]:
    hello = '{"protocol":1,"op":"hello","id":"h","buffers":[{"name":"a","layout":%s}]}'
    deep_fields = ["canvas", "region", "seed", "feather", "id", "op", "reply_layout"]
    random_frames = [
        [rng.randbytes(rng.randrange(300)) for _ in range(rng.randrange(1, 5))] for _ in range(200)
    ]
    return {
        "buffer spec field of the wrong type": [
            *([(hello % v).encode(), b"xxxx"] for v in ("[]", "{}", '[["L"]]', '{"L":1}')),
            _edit(**{"buffers.layout": []}),
            _edit(**{"buffers.layout": {"RGBA": 1}}),
            _edit(**{"buffers.name": ["image"]}),
            _edit(**{"buffers.width": {"w": 96}}),
            _edit(**{"buffers.bytes": [30720]}),
            _edit(**{"buffers.height": 80.0}),
        ],
        "JSON nested deeper than any header": [
            [b"[" * 60000],
            [b'{"a":' * 5000 + b"1" + b"}" * 5000],
            *(_edit(**{f: Raw(_nested(3000))}) for f in deep_fields),
            _edit(buffers=Raw(_nested(3000))),
        ],
        "protocol true, 1.0 or 1e0 (must be the integer 1)": [
            [f'{{"protocol":{v},"op":"hello","id":"p"}}'.encode()] for v in ("true", "1.0", "1e0")
        ],
        "wrong types in request fields": [
            _edit(id=[]),
            _edit(id={"a": 1}),
            _edit(op=["edit"]),
            _edit(canvas={"width": [], "height": {}}),
            _edit(region={"x": 0, "y": 0, "width": 10**30, "height": 80}),
            _edit(region={"x": 0.0, "y": 0, "width": 96, "height": 80}),
            _edit(seed=[]),
            _edit(seed=2**70),
            _edit(seed=True),
            _edit(feather=True),
            _edit(feather=[3]),
            _edit(reply_layout=["RGBA"]),
            _edit(reply_layout={"RGBA": 1}),
            [b'{"protocol":1,"op":"cancel","id":"c","target":[[]]}'],
            [b'{"protocol":1,"op":"cancel","id":"c","target":{"id":"e1"}}'],
        ],
        "NaN, Infinity and 5000-digit numbers": [
            _edit(feather=Raw(v)) for v in ("NaN", "Infinity", "-Infinity", "1" * 5000)
        ]
        + [_edit(seed=Raw("NaN")), _edit(region=Raw('{"x":NaN,"y":0,"width":96,"height":80}'))],
        "random frame lists (seeded)": random_frames,
    }


def _first_reply(sock: zmq.Socket, timeout: float = 2.0) -> dict | None:
    if not sock.poll(int(timeout * 1000)):
        return None
    try:
        return json.loads(sock.recv_multipart()[0])
    except ValueError:
        return {"op": "?"}


def hostile(product: Product, model: Path) -> list[dict[str, Any]]:
    rows = []
    for name, cases in hostile_classes(random.Random(20)).items():
        outcomes: Counter[str] = Counter()
        with contextlib.ExitStack() as stack:
            endpoint, _ = stack.enter_context(engine(product, model))
            for frames in cases:
                sock = dealer(endpoint)
                sock.send_multipart(frames)
                reply = _first_reply(sock)
                sock.close()
                if not answers_hello(endpoint):
                    outcomes["engine died"] += 1
                    stack.close()  # a fresh engine for the next case
                    endpoint, _ = stack.enter_context(engine(product, model))
                    continue
                if reply is None:
                    outcomes["no answer"] += 1
                elif reply.get("op") == "error":
                    outcomes[f"error {reply.get('code')}"] += 1
                else:
                    outcomes[f"accepted ({reply.get('op')})"] += 1
        rows.append({"class": name, "tried": len(cases), "outcomes": dict(outcomes)})
    rows.append(broker_relay(product, model))
    return rows


def broker_relay(product: Product, model: Path) -> dict[str, Any]:
    """Nested messages through `sketchfill broker`, then: does a cancel still reach the
    engines' feed, and does an edit still come back?"""
    front = f"tcp://127.0.0.1:{free_port()}"
    back_port = free_port(pair=True)
    back = f"tcp://127.0.0.1:{back_port}"
    cases = [[b"[" * 60000], _edit(canvas=Raw(_nested(3000))), [b'{"a":' * 5000 + b"1}"]]
    broker = product.popen("broker", "--endpoint", front, "--backend", back)
    served = product.popen("serve", "--broker", back, "--model", str(model))
    feed = zmq.Context.instance().socket(zmq.SUB)
    feed.setsockopt(zmq.LINGER, 0)
    feed.setsockopt(zmq.SUBSCRIBE, b"")
    feed.connect(f"tcp://127.0.0.1:{back_port + 1}")
    try:
        deadline = time.monotonic() + 90
        while not answers_hello(front, 0.5) and time.monotonic() < deadline:
            pass
        sock = dealer(front)
        for frames in cases:
            sock.send_multipart(frames)
        time.sleep(0.5)
        relayed = False
        for _ in range(10):  # the SUB may take a moment to join
            sock.send_multipart([b'{"protocol":1,"op":"cancel","id":"c","target":"t"}'])
            if feed.poll(300):
                relayed = True
                break
        sock.send_multipart(_edit(id="after"))
        got = _finals(sock, 1, 60).get("after")
        sock.close()
    finally:
        feed.close()
        for proc in (broker, served):
            proc.kill()
            proc.wait()
    outcome = {
        "cancel relay alive" if relayed else "cancel relay dead": 1,
        f"edit after: {got or 'no answer'}": 1,
    }
    return {"class": "nested messages through the broker", "tried": len(cases), "outcomes": outcome}


# -- fairness and memory -------------------------------------------------------------------


def _region_edit(rid: str, side: int, full: bool = False, feather: float = 0.0) -> Frames:
    frames = _request(side, full, feather).frames(rid)
    return [bytes(memoryview(f).cast("B")) for f in frames]


def _finals(sock: zmq.Socket, want: int, timeout: float) -> dict[str, str]:
    finals: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while len(finals) < want and time.monotonic() < deadline:
        if sock.poll(200):
            header = json.loads(sock.recv_multipart()[0])
            if header.get("op") in ("result", "error") and header.get("id"):
                finals[header["id"]] = header.get("code", "result")
    return finals


def fairness(product: Product, model: Path, flood: int = 30) -> dict[str, Any]:
    """A client sends `flood` edits and reads nothing (its receive queue holds 16
    messages) until the engine is idle; a second client sends one edit meanwhile."""
    from ..wire.client import Client

    with engine(product, model, "--threads", "2") as (endpoint, _):
        flooder = dealer(endpoint, rcvhwm=16)
        frames = [_region_edit(f"f{i}", 300) for i in range(flood)]
        for f in frames:
            flooder.send_multipart(f)
        time.sleep(0.3)
        with Client(endpoint) as other:
            other.hello()
            t0 = time.monotonic()
            result = other.edit(_request(300), timeout=300)
            waited = time.monotonic() - t0
            one_edit = result.header.get("timings", {}).get("edit", 0.0)
            deadline = time.monotonic() + 300
            while other.hello().get("queued") and time.monotonic() < deadline:
                time.sleep(0.2)
        time.sleep(1.0)  # the last job finishes and its reply leaves
        finals = _finals(flooder, flood, 5.0)
        flooder.close()
    counts = Counter(finals.values())
    return {
        "second_client_wait_s": round(waited, 2),
        "one_edit_s": round(one_edit, 2),
        "flooder_results": counts.get("result", 0),
        "flooder_refused_busy": counts.get("busy", 0),
        "flooder_other_errors": sum(v for k, v in counts.items() if k not in ("result", "busy")),
        "flooder_never_answered": flood - len(finals),
    }


def _request(side: int, full: bool = False, feather: float = 0.0):
    from ..wire.protocol import Box
    from ..wire.requests import EditRequest

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (side, side, 4), dtype=np.uint8)
    image[..., 3] = 255
    mask = np.zeros((side, side), np.uint8)
    if full:
        mask[:] = 255
    else:
        mask[side // 4 : side // 2, side // 4 : side // 2] = 255
    return EditRequest(side, side, Box(0, 0, side, side), image, mask, seed=1, feather=feather)


def _status(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def memory(product: Product, model: Path, sides: list[int]) -> list[dict[str, Any]]:
    """Peak RSS growth of the engine process for one all-mask edit of each size."""
    rows = []
    with engine(product, model, "--threads", "2") as (endpoint, proc):
        for side in sides:
            frames = _region_edit("m", side, full=True)
            size_mb = sum(len(f) for f in frames) / 2**20
            sock = dealer(endpoint)
            time.sleep(0.5)
            Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
            base = _status(proc.pid, "VmRSS")
            t0 = time.monotonic()
            sock.send_multipart(frames)
            del frames
            outcome = _finals(sock, 1, 600).get("m", "no answer")
            seconds = time.monotonic() - t0
            sock.close()
            peak = _status(proc.pid, "VmHWM") - base
            rows.append(
                {
                    "side": side,
                    "request_mb": round(size_mb),
                    "peak_growth_mb": round(peak),
                    "ratio": round(peak / size_mb, 1),
                    "outcome": outcome,
                    "seconds": round(seconds, 1),
                }
            )
    return rows


# -- cancel, shutdown, keys ----------------------------------------------------------------


def cancel_latency(product: Product, model: Path, side: int = 3072) -> dict[str, Any]:
    """Cancel an all-mask feather-64 edit once its composite stage has begun."""
    with engine(product, model, "--threads", "2") as (endpoint, _):
        sock = dealer(endpoint)
        sock.send_multipart(_region_edit("c", side, full=True, feather=64))
        deadline = time.monotonic() + 300
        stage = None
        while stage != "composite" and time.monotonic() < deadline:
            if sock.poll(200):
                stage = json.loads(sock.recv_multipart()[0]).get("stage", stage)
        time.sleep(0.2)
        t0 = time.monotonic()
        sock.send_multipart([b'{"protocol":1,"op":"cancel","id":"x","target":"c"}'])
        outcome = _finals(sock, 1, 300).get("c", "no answer")
        sock.close()
    return {
        "side": side,
        "outcome": outcome,
        "seconds_after_cancel": round(time.monotonic() - t0, 2),
    }


def sigterm(product: Product, model: Path, jobs: int = 10) -> dict[str, Any]:
    """Ten clients with one edit each (one running, nine queued), then SIGTERM: what does
    each client hear within 15 s, and how soon does the process exit?"""
    with engine(product, model, "--threads", "2") as (endpoint, proc):
        socks = {f"t{i}": dealer(endpoint) for i in range(jobs)}
        for rid, s in socks.items():
            s.send_multipart(_region_edit(rid, 300))
        time.sleep(0.5)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        heard: dict[str, str] = {}
        exited = None
        poller = zmq.Poller()
        for s in socks.values():
            poller.register(s, zmq.POLLIN)
        while time.monotonic() - t0 < 15 and (len(heard) < jobs or exited is None):
            if exited is None and proc.poll() is not None:
                exited = time.monotonic() - t0
            for s, _ in poller.poll(50):
                header = json.loads(s.recv_multipart()[0])
                if header.get("op") in ("result", "error") and header.get("id") in socks:
                    heard[header["id"]] = header.get("code", "result")
        codes = Counter(heard.get(rid, "nothing (the client says unreachable)") for rid in socks)
        for s in socks.values():
            s.close()
    return {
        "jobs": jobs,
        "replies": dict(codes),
        "exit_s": round(exited, 1) if exited is not None else "still running after 15 s",
    }


def broker_signals(product: Product) -> dict[str, str]:
    out = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        front = f"tcp://127.0.0.1:{free_port()}"
        back = f"tcp://127.0.0.1:{free_port(pair=True)}"
        proc = product.popen("broker", "--endpoint", front, "--backend", back)
        time.sleep(2.0)
        proc.send_signal(sig)
        try:
            code = proc.wait(5)
            out[sig.name] = f"exited {code}"
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            out[sig.name] = "still running after 5 s (killed)"
    return out


def curve_reload(product: Product, model: Path, work: Path) -> dict[str, str]:
    import zmq.auth

    keys, allowed = work / "keys", work / "allowed"
    keys.mkdir()
    allowed.mkdir()
    zmq.auth.create_certificates(keys, "engine")
    zmq.auth.create_certificates(keys, "artist")
    shutil.copy(keys / "artist.key", allowed)
    server_public, _ = zmq.auth.load_certificate(keys / "engine.key")
    public, secret = zmq.auth.load_certificate(keys / "artist.key_secret")

    def connect(endpoint: str) -> zmq.Socket:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = (
            server_public,
            public,
            secret,
        )
        sock.connect(endpoint)
        return sock

    def hello(sock: zmq.Socket) -> str:
        sock.send_multipart([b'{"protocol":1,"op":"hello","id":"k"}'])
        reply = _first_reply(sock, 1.0)
        if reply is None:
            return "no answer"
        return "admitted" if reply.get("op") == "hello" else f"error {reply.get('code')}"

    def ready(endpoint: str) -> bool:
        sock = connect(endpoint)
        try:
            return hello(sock) == "admitted"
        finally:
            sock.close()

    extra = ("--curve-secret", str(keys / "engine.key_secret"), "--authorized-clients")
    with engine(product, model, *extra, str(allowed), ready=ready) as (endpoint, _):
        open_conn = connect(endpoint)
        before = hello(open_conn)
        (allowed / "artist.key").unlink()
        time.sleep(2.0)
        open_after = hello(open_conn)
        fresh = connect(endpoint)
        fresh_after = hello(fresh)
        open_conn.close()
        fresh.close()

    def shown(outcome: str) -> str:
        return "refused at the handshake (no answer)" if outcome == "no answer" else outcome

    return {
        "before removal": before,
        "open connection 2 s after removal": shown(open_after),
        "new connection 2 s after removal": shown(fresh_after),
    }


# -- files and the client ------------------------------------------------------------------


def cli_files(product: Product, model: Path, work: Path) -> dict[str, str]:
    from PIL import Image

    side = 64
    photo = np.zeros((side, side, 3), np.uint8) + 40
    mask = np.zeros((side, side), np.uint8)
    mask[16:40, 16:40] = 255
    Image.fromarray(photo).save(work / "photo.png")
    Image.fromarray(mask, "L").save(work / "mask.png")
    Image.fromarray(np.full((side, side), 32768, np.uint16)).save(work / "grey16.png")
    Image.fromarray(np.full((side, side), 32768, np.int32), "I").save(work / "grey32.tif")
    Image.fromarray(np.full((side, side), 0.5, np.float32), "F").save(work / "float.tif")
    bomb_png(work / "bomb.png", 30000)
    (work / "folder").mkdir()
    cases = {
        "16-bit grey PNG (32768)": ("grey16.png", "o1.png"),
        "32-bit integer TIFF (32768)": ("grey32.tif", "o2.png"),
        "float TIFF (0.5)": ("float.tif", "o3.png"),
        "decompression bomb 30000x30000": ("bomb.png", "o4.png"),
        "-o an existing folder": ("photo.png", "folder"),
        "-o photo.png/x.png": ("photo.png", "photo.png/x.png"),
    }
    out = {}
    for name, (image, target) in cases.items():
        run = product.run(
            "edit",
            str(work / image),
            "--mask",
            str(work / "mask.png"),
            "-o",
            str(work / target),
            "--in-process",
            "--model",
            str(model),
        )
        lines = run.stderr.strip().splitlines()
        if run.returncode == 0:
            corner = np.asarray(Image.open(work / target).convert("RGB"))[0, 0, 0]
            out[name] = f"exit 0, unmasked pixel {corner} (128 expected)"
        elif "Traceback" in run.stderr:
            out[name] = f"exit {run.returncode}, traceback: {lines[-1][:70] if lines else ''}"
        else:
            out[name] = f"exit {run.returncode}, {len(lines)} line(s): {lines[0][:70]}"
    return out


def bomb_png(path: Path, side: int) -> None:
    """A valid PNG header claiming side x side pixels, next to no data behind it."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + chunk(b"IEND", b"")
    )


_SUBMIT = """
import sys, numpy as np
try:  # this layout, or an engine from before it (--engine-src)
    from sketchfill.wire.client import Client
    from sketchfill.wire.errors import EngineError
    from sketchfill.wire.protocol import Box
    from sketchfill.wire.requests import EditRequest
except ImportError:
    from sketchfill.client import Client, EditRequest, EngineError
    from sketchfill.protocol import Box
wide = np.zeros((80, 192, 4), np.uint8)
mask = np.zeros((80, 96), np.uint8); mask[20:40, 24:48] = 255
req = EditRequest(96, 80, Box(0, 0, 96, 80), wide[:, ::2], mask, seed=1)
with Client(sys.argv[1]) as c:
    try:
        r = c.edit(req, timeout=60)
        print(f"accepted, result {r.width}x{r.height}")
    except EngineError as e:
        print(f"EngineError {e.code}")
    except Exception as e:
        print(f"{type(e).__name__}: {e}"[:80])
"""


def client_submit(product: Product, model: Path) -> str:
    with engine(product, model) as (endpoint, _):
        run = product.python(_SUBMIT, endpoint)
    return (run.stdout.strip() or run.stderr.strip().splitlines()[-1])[:100]


# -- the command ---------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    folder = resolve_model_dir(args.model)
    sides = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="sketchfill-hardening-") as tmp:
        work = Path(tmp)
        product = Product(args.engine_src, work)
        report: dict[str, Any] = {"engine_src": str(args.engine_src or "this checkout")}
        steps = {
            "hostile": lambda: hostile(product, folder),
            "fairness": lambda: fairness(product, folder),
            "memory": lambda: memory(product, folder, sides),
            "cancel": lambda: cancel_latency(product, folder),
            "sigterm": lambda: sigterm(product, folder),
            "broker_signals": lambda: broker_signals(product),
            "curve": lambda: curve_reload(product, folder, work),
            "cli": lambda: cli_files(product, folder, work),
            "client_submit": lambda: client_submit(product, folder),
        }
        for name, step in steps.items():
            print(f"... {name}", file=sys.stderr, flush=True)
            try:
                report[name] = step()
            except Exception as exc:  # one broken step must not hide the others' figures
                report[name] = f"failed: {type(exc).__name__}: {exc}"[:200]
    print_report(report)
    if args.json:
        write_atomic(args.json, (json.dumps(report, indent=2) + "\n").encode())
    return 0


def print_report(r: dict[str, Any]) -> None:
    print(f"hardening, engine from {r['engine_src']}\n")
    print("| case class | tried | outcome |\n|---|---|---|")
    for row in r["hostile"] if isinstance(r["hostile"], list) else []:
        outcome = ", ".join(f"{k}: {v}" for k, v in sorted(row["outcomes"].items()))
        print(f"| {row['class']} | {row['tried']} | {outcome} |")
    f = r["fairness"]
    if isinstance(f, dict):
        print(
            f"| flood: 30 edits from one client that does not read | 30 | "
            f"{f['flooder_results']} results, {f['flooder_refused_busy']} busy, "
            f"{f['flooder_other_errors']} other errors, {f['flooder_never_answered']} never "
            f"answered |"
        )
    c = r["cancel"]
    if isinstance(c, dict):
        print(
            f"| cancel during a {c['side']} px feather-64 composite stage | 1 | "
            f"{c['outcome']} after {c['seconds_after_cancel']} s |"
        )
    s = r["sigterm"]
    if isinstance(s, dict):
        replies = ", ".join(f"{k}: {v}" for k, v in s["replies"].items())
        print(
            f"| SIGTERM with {s['jobs']} edits queued/running | {s['jobs']} | {replies}; "
            f"exit after {s['exit_s']} s |"
        )
    if isinstance(r["broker_signals"], dict):
        for sig, outcome in r["broker_signals"].items():
            print(f"| sketchfill broker, {sig} | 1 | {outcome} |")
    if isinstance(r["curve"], dict):
        print(
            "| CURVE key deleted while serving | 1 | "
            + ", ".join(f"{k}: {v}" for k, v in r["curve"].items())
            + " |"
        )
    if isinstance(r["cli"], dict):
        for name, outcome in r["cli"].items():
            print(f"| CLI: {name} | 1 | {outcome} |")
    print(f"| Client.submit with a non-contiguous array | 1 | {r['client_submit']} |")
    if isinstance(f, dict):
        print(
            f"\nfairness: the second client's first edit waited {f['second_client_wait_s']} s "
            f"behind the flooder (one edit takes {f['one_edit_s']} s)"
        )
    if isinstance(r["memory"], list):
        print("\n| canvas (all-mask edit) | request MiB | peak RSS growth MiB | ratio | outcome |")
        print("|---|---|---|---|---|")
        for m in r["memory"]:
            print(
                f"| {m['side']}x{m['side']} | {m['request_mb']} | {m['peak_growth_mb']} | "
                f"{m['ratio']}x | {m['outcome']} in {m['seconds']} s |"
            )
    for key in ("hostile", "fairness", "memory", "cancel", "sigterm", "curve", "cli"):
        if isinstance(r.get(key), str):
            print(f"({key}: {r[key]})")
