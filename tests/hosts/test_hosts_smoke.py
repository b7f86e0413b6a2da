"""Smoke tests: the real GIMP 3 and Krita run headless here and can do what the plug-ins
need (Python, layers, raw pixels, undo, plug-in registration, ZeroMQ to 127.0.0.1)."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
import zmq

HERE = Path(__file__).resolve().parent
PROBES = HERE / "probes"
PROBE_PLUGIN = PROBES / "plugins" / "sketchfill_probe"

pytestmark = pytest.mark.hosts


def _script(name: str) -> str:
    return (PROBES / name).read_text()


def _invert_rgb(frame: bytes) -> bytes:
    """What the fake engine does to a 4-channel frame: invert every byte but the alpha."""
    return bytes(b if i % 4 == 3 else 255 - b for i, b in enumerate(frame))


def _pattern_rgba(w: int, h: int, seed: int) -> bytes:  # mirrors probes/gimp_common.py
    out = bytearray()
    for i in range(w * h):
        x, y = i % w, i // w
        out += bytes(((seed + 30 * x) % 256, (seed + 50 * y) % 256, (seed * 7 + 11) % 256, 255))
    return bytes(out)


class FakeEngine:
    """A pyzmq ROUTER bound in the pytest process on 127.0.0.1 (raw pyzmq, no engine code).
    Replies to every [header, *frames] with a JSON header describing what arrived plus each
    frame with its colour bytes inverted."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{self.port}"
        self.received: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self.sock.poll(100):
                continue
            ident, header, *frames = self.sock.recv_multipart()
            got = json.loads(header)
            self.received.append(got)
            reply = {
                "protocol": 1,
                "op": "probe-reply",
                "got": got,
                "sizes": [len(f) for f in frames],
                "sha256": [hashlib.sha256(f).hexdigest() for f in frames],
            }
            out = [_invert_rgb(f) for f in frames]
            self.sock.send_multipart([ident, json.dumps(reply).encode(), *out])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        self.ctx.term()


@pytest.fixture(scope="module")
def engine():
    fake = FakeEngine()
    yield fake
    fake.close()


# ------------------------------------------------------------------------------- GIMP 3


def test_gimp_python_layers_pixels_undo_group(gimp):
    run = gimp(_script("gimp_layers.py"), pythonpath=[PROBES]).check()
    r = run.result
    assert r is not None, run.output
    assert r["gimp"].startswith("3.0."), r["gimp"]
    assert r["layers"] == ["top", "bottom"]
    assert r["bottom_equal"] and r["top_equal"], r["top_hex"]  # Gegl "R'G'B'A u8" bit-exact
    assert r["undo_enabled"] and r["group_start"] and r["group_end"]
    assert r["layers_after"] == ["sketchfill result", "top", "bottom"]
    assert r["offsets"] == [2, 1]
    assert r["patch_equal"] and r["bottom_untouched"]


def test_gimp_gui_undo_removes_the_whole_group(gimp):
    """The PDB has no undo: press Ctrl+Z / Ctrl+Y in the real GUI under Xvfb."""
    run = gimp(_script("gimp_gui_undo.py"), pythonpath=[PROBES], gui=True).check()
    r = run.result
    assert r is not None, run.output
    assert r["before"] == ["sketchfill result", "photo"]
    assert r["dirty_before"]
    assert r["undone"], r
    assert r["after_undo"] == ["photo"]
    assert not r["dirty_after_undo"], "one Ctrl+Z should return to the clean state"
    assert r["redone"] and r["after_redo"] == ["sketchfill result", "photo"]
    assert r["redo_offsets"] == [5, 7] and r["redo_patch_equal"]


def test_gimp_plugin_registered_via_gimp3_directory(gimp, engine):
    """A plug-in folder copied into GIMP3_DIRECTORY is in the PDB, runs non-interactively,
    reaches the fake engine over 127.0.0.1 from its own process, and adds a layer."""
    env = {"SKETCHFILL_PROBE_ENDPOINT": engine.endpoint}
    run = gimp(
        _script("gimp_call_plugin.py"), pythonpath=[PROBES], plugin_dirs=[PROBE_PLUGIN], env=env
    ).check()
    r = run.result
    assert r is not None, run.output
    assert r["exists"], "sketchfill-probe not in the PDB:\n" + run.output[-3000:]
    assert r["success"], (r, run.output[-3000:])
    assert r["layers"] == ["sketchfill probe", "photo"]
    assert r["photo_untouched"]
    photo = bytes.fromhex(r["photo_hex"])
    assert bytes.fromhex(r["new_hex"]) == _invert_rgb(photo)
    seen = json.loads((run.workdir / "plugin.json").read_text())
    assert seen["run_mode"] == 1  # Gimp.RunMode.NONINTERACTIVE
    assert seen["reply"]["got"]["from"] == "gimp-plugin"
    assert seen["reply"]["sha256"] == [hashlib.sha256(photo).hexdigest()]


def test_gimp_python_talks_zmq_over_loopback(gimp, engine):
    run = gimp(
        _script("gimp_zmq.py"),
        pythonpath=[PROBES],
        env={"SKETCHFILL_PROBE_ENDPOINT": engine.endpoint},
    ).check()
    r = run.result
    assert r is not None, run.output
    assert "error" not in r, r
    sent = bytes.fromhex(r["sent_hex"])
    assert sent == _pattern_rgba(4, 3, seed=9)
    assert r["reply"]["got"]["from"] == "gimp"
    assert r["reply"]["sizes"] == [4 * 3 * 4]
    assert r["reply"]["sha256"] == [hashlib.sha256(sent).hexdigest()]
    assert bytes.fromhex(r["frame_back_hex"]) == _invert_rgb(sent)


# ------------------------------------------------------------------------------- Krita


def _krita_pattern_bgra(w: int = 6, h: int = 4) -> bytes:  # mirrors probes/krita_smoke.py
    out = bytearray()
    for y in range(h):
        for x in range(w):
            out += bytes((10 + 20 * x, 15 + 40 * y, 200, 128 if (x, y) == (w - 1, h - 1) else 255))
    return bytes(out)


def test_krita_document_bgra_pixels_and_paint_layer(any_krita):
    v = any_krita(PROBES, "krita_smoke", "document_pixels").check()
    r = v.value
    assert v.krita_version.startswith("5."), v.krita_version
    assert (r["model"], r["depth"]) == ("RGBA", "U8")
    assert r["added"]
    assert r["layers"][-1] == ["sketchfill", "paintlayer"]  # childNodes() is bottom to top
    assert len(r["layers"]) == len(r["initial_layers"]) + 1
    assert r["roundtrip_equal"], r["back_hex"]
    assert bytes.fromhex(r["back_hex"]) == _krita_pattern_bgra()
    # bytes are B,G,R,A: byte 0 is blue, byte 2 is red
    b, g, red, a = r["bytes_1_2"]
    assert r["qcolor_rgba_1_2"] == [red, g, b, a] == [200, 95, 30, 255]
    assert r["outside_hex"] == "00" * 8  # outside the layer: transparent


def test_krita_python_talks_zmq_over_loopback(any_krita, engine):
    v = any_krita(PROBES, "krita_smoke", "zmq_roundtrip", [engine.endpoint]).check()
    r = v.value
    assert "error" not in r, r
    sent = _krita_pattern_bgra()
    assert r["reply"]["got"]["from"] == "krita"
    assert r["reply"]["sizes"] == [len(sent)]
    assert r["reply"]["sha256"] == [hashlib.sha256(sent).hexdigest()] == [r["sent_sha256"]]
    assert bytes.fromhex(r["frame_back_hex"]) == _invert_rgb(sent)
