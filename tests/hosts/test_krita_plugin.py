"""The SketchFill Krita plug-in in the REAL Krita (5.1.5 on the host, 5.2.9 in the chroot),
against a real engine process on loopback.

The plug-in is staged exactly as the installer lays it out (engine/plugins.py). Scenarios in
probes/krita_plugin/ run under kritarunner and drive the same Controller the Generate button
and the actions call; they return what Krita holds afterwards and dump raw pixels, and the
assertions live here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import hostenv
import numpy as np
import pytest
import zmq
from sketchfill.install.plugins import stage_krita
from sketchfill.wire.client import Client
from sketchfill.wire.config import ClientConfig
from sketchfill.wire.protocol import Box
from sketchfill.wire.requests import EditRequest, edit_region

pytestmark = pytest.mark.hosts

HERE = Path(__file__).resolve().parent
PROBES = HERE / "probes" / "krita_plugin"
PROBE = "krita_plugin_probe"
FACE = "SF 1234 fill"  # the probe's fixed seed for the face edit
COMPOSITE = "SF composite"
RESTORE_SEED = 99  # the probe's fixed seed for Restore face
RESTORE = f"SF {RESTORE_SEED} restore"
CANCELLED = "Cancelled: no layer was added."
TOGGLE = "the panel's button, or the action SketchFill: Before/After"


def added(names: str | list[str], guides: bool = True) -> str:
    """The status line after a run that added `names` (engine/roles.py): on top of the
    guides it was made with, and how to compare."""
    from sketchfill.wire.roles import added_above

    return added_above([names] if isinstance(names, str) else names, TOGGLE, guides)


@pytest.fixture(scope="session")
def pykrita(host_setup) -> Path:
    """The plug-in as users get it (sketchfill.desktop + sketchfill/ with the client
    inside) plus the probe module, in the session folder, which the chroot sees too."""
    folder = hostenv.session().dir("krita-plugin/pykrita")
    stage_krita(folder)
    shutil.copy2(PROBES / f"{PROBE}.py", folder)
    return folder


def client_config(name: str, **fields) -> dict[str, str]:
    """A client.json in the session folder, and the env that points the plug-in at it."""
    path = hostenv.session().dir("krita-plugin/config") / f"{name}.json"
    ClientConfig(**fields).save(path)
    return {"SKETCHFILL_CLIENT_CONFIG": str(path)}


def run(krita, pykrita: Path, func: str, args=(), **config):
    """Run a probe scenario with a client.json made of `config`."""
    verdict = krita(pykrita, PROBE, func, list(args), env=client_config(func, **config))
    return verdict.check()


# -- pixels ------------------------------------------------------------------------------


def bgra_file(path: Path, width: int, height: int) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), np.uint8).reshape(height, width, 4)


def to_rgba(bgra: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(bgra[..., [2, 1, 0, 3]])


def mask_bbox(mask: np.ndarray) -> Box:
    ys, xs = np.nonzero(mask >= 128)
    return Box(
        int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
    )


def reference_edit(endpoint: str, workdir: Path, seed: int):
    """The same edit sent straight to the engine from Krita's own layer bytes, turned
    into R,G,B,A here with numpy: what the plug-in's new layer must hold."""
    from sketchfill.wire.roles import auto_feather

    w = h = 512
    layers = {
        n: to_rgba(bgra_file(workdir / f"{n}.bgra", w, h)) for n in ("face", "sketch", "color")
    }
    mask = np.frombuffer((workdir / "selection.l").read_bytes(), np.uint8).reshape(h, w)
    bbox = mask_bbox(mask)
    with Client(endpoint) as client:
        region = edit_region(bbox, w, h, client.hello(5))

        def crop(a):
            return np.ascontiguousarray(a[region.y : region.y1, region.x : region.x1])

        request = EditRequest(
            w,
            h,
            region,
            crop(layers["face"]),
            crop(mask),
            sketch=crop(layers["sketch"]),
            sketch_layout="RGBA",
            color=crop(layers["color"]),
            seed=seed,
            feather=auto_feather(bbox.width, bbox.height, w, h),  # the panel's Auto
        )
        result = client.edit(request, timeout=30)
    patch = np.frombuffer(result.data, np.uint8).reshape(result.height, result.width, 4)
    return bbox, mask, layers, (result.x, result.y), patch


def layers_unchanged(before, after) -> bool:
    """Every layer (and the selection) that existed before holds the same bytes after."""
    after_by_name = {name: digest for name, _, digest in after}
    return all(after_by_name.get(name) == digest for name, _, digest in before)


# -- tests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("space", "exact"),
    [(("RGBA", "U8"), True), (("RGBA", "U16"), True), (("GRAYA", "U8"), False)],
    ids=["rgba8", "rgba16", "gray8"],
)
def test_face_edit_adds_one_layer_above_the_image(
    any_krita, pykrita, engine_endpoint, space, exact
):
    """Face, sketch, colour layers and a selection: one new layer "SF N fill" on top of the
    image layer and its guides (where it is seen), at the mask's bounding box, holding
    exactly the engine's answer (outside-mask pixels = the image's); nothing else changes.
    Other colour spaces are converted on the way in and out and the document keeps its own:
    a 16-bit document gets the very same pixels; a greyscale one a greyscale layer."""
    v = run(any_krita, pykrita, "face_edit", list(space), endpoint=engine_endpoint, autostart=False)
    r = v.value
    rec = r["record"]
    assert rec["outcome"] == "done", rec
    assert rec["last_notice"] == added(FACE)
    assert r["depth"] == list(space)

    bbox, mask, layers, offset, expected = reference_edit(engine_endpoint, v.workdir, 1234)
    assert (bbox.x, bbox.y, bbox.width, bbox.height) == (193, 129, 67, 37)
    box = [bbox.x, bbox.y, bbox.width, bbox.height]
    assert r["new"] == [[FACE, "paintlayer", *space, box]]
    assert r["layers_after"] == ["face", "sketch", "color", FACE]
    assert layers_unchanged(r["before"], r["after"]), (r["before"], r["after"])
    assert r["history_patch"] == [*box, 1234]

    got = to_rgba(bgra_file(v.workdir / "result.bgra", bbox.width, bbox.height))
    inside = mask[bbox.y : bbox.y1, bbox.x : bbox.x1] >= 128
    face = layers["face"][bbox.y : bbox.y1, bbox.x : bbox.x1]
    if not exact:  # grey: the engine saw grey, the layer is grey and changed in the mask
        assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()
        assert (np.abs(got[inside].astype(int) - face[inside]).max(axis=1) > 8).mean() > 0.5
        return
    assert list(offset) == box[:2]
    assert np.array_equal(got, expected), np.argwhere(got != expected)[:10]
    assert np.array_equal(got[~inside], face[~inside])  # outside the mask: the image
    assert (np.abs(got[inside].astype(int) - face[inside]).max(axis=1) > 8).mean() > 0.5
    # the echo generator paints the colour dabs in (only the lips are dabbed, see
    # engine/assets/demo/draw_guides.py); unpainted masked pixels away from them are grey
    for x, y in [(226, 136), (240, 135), (205, 150)]:
        r_, g_, b_, _ = got[y - bbox.y, x - bbox.x]
        assert r_ == g_ == b_, (x, y, got[y - bbox.y, x - bbox.x])
    lips = got[inside & (np.abs(got[..., :3].astype(int) - [178, 92, 92]).max(axis=2) <= 12)]
    assert len(lips) > 20, "the lips' colour dab is missing from the result"
    assert (v.workdir / "history.bgra").read_bytes() == (v.workdir / "result.bgra").read_bytes()


def test_channel_order_round_trip(any_krita, pykrita, engine_endpoint):
    """Distinct R, G and B everywhere; the mask is OPAQUE orange, which the engine reads by
    brightness: only Krita's B,G,R,A read as such gives a mask at all (see the probe)."""
    v = run(any_krita, pykrita, "channel_order", endpoint=engine_endpoint, autostart=False)
    r = v.value
    assert r["record"]["outcome"] == "done", r["record"]
    assert len(r["new"]) == 1 and r["new"][0][1] == [20, 10, 16, 12], r["new"]
    name = r["new"][0][0]
    assert r["layers_after"] == ["image", "mask", "color", name]
    assert layers_unchanged(r["before"], r["after"])

    got = bgra_file(v.workdir / "result.bgra", 16, 12)
    image = bgra_file(v.workdir / "image.bgra", 16, 12)
    # the cut-out corner is outside the mask: the image's own bytes, R, G, B all distinct
    assert np.array_equal(got[:4, :4], image[:4, :4])
    b, g, red, a = (int(c) for c in got[1, 1])
    assert (red, g, b, a) == (103, 122, 178, 255)
    assert r["qcolor_corner"] == [103, 122, 178, 255]
    # inside: the painted red (R 220, G 40, B 10) stored as bytes B, G, R, A
    deep = got[6:10, 6:12].reshape(-1, 4).astype(int)
    assert np.abs(deep - [10, 40, 220, 255]).max() <= 3, deep
    red, g, b, a = r["qcolor_inside"]
    assert abs(red - 220) <= 3 and abs(g - 40) <= 3 and abs(b - 10) <= 3 and a == 255


def test_cancel_mid_edit_and_between_variations(any_krita, pykrita, slow_engine_endpoint):
    """Cancel during the first of two variations: nothing added, idle again, at once. Then
    cancel during the second: the first result stays and the message says so."""
    v = run(
        any_krita, pykrita, "cancel_then_generate", endpoint=slow_engine_endpoint, autostart=False
    )
    r = v.value
    cancel = r["cancel"]
    assert cancel["outcome"] == "cancelled", cancel
    assert cancel["last_notice"] == CANCELLED
    assert cancel["state_after"] == "idle" and not cancel["busy_after"]
    assert "cancelling" in cancel["states"]
    assert r["layers_after_cancel"] == ["face", "sketch", "color"]
    assert r["unchanged_after_cancel"] and r["history_after_cancel"] == 0
    assert cancel["cancel_to_idle_s"] < 5, cancel
    second = r["second"]  # the same controller again: the first variation's layer stays
    assert second["outcome"] == "cancelled", second
    assert [text for _, text in second["progress"]].count("Variation 2/2: generating...") == 1
    (seed,) = r["history_after_second"]
    assert r["new_after_second"] == [f"SF {seed} fill"]
    assert second["last_notice"] == f"Cancelled. Added the layer 'SF {seed} fill'."


def test_engine_down_gives_a_plain_message(any_krita, pykrita, dead_endpoint):
    """Engine down with auto-start off, and an auto-start whose command dies: plain
    messages, no layer, and the GUI thread never blocks while connecting. A document with
    nothing to regenerate is refused before any connection."""
    failing = client_config(
        "autostart_fails",
        endpoint=dead_endpoint,
        autostart=True,
        engine_command=["/bin/false"],
        connect_timeout=0.5,
        start_timeout=20,
    )["SKETCHFILL_CLIENT_CONFIG"]
    down = client_config("down", endpoint=dead_endpoint, autostart=False, connect_timeout=1.5)
    v = any_krita(
        pykrita, PROBE, "plain_errors", [down["SKETCHFILL_CLIENT_CONFIG"], failing]
    ).check()
    r = v.value
    rec = r["down"]
    assert rec["outcome"] == "error", rec
    assert rec["last_notice"].startswith(f"no SketchFill engine answers at {dead_endpoint}")
    assert "sketchfill serve" in rec["last_notice"]
    assert rec["notices"] == [[rec["last_notice"], True]]
    assert rec["states"] == ["connecting", "idle"]
    # the 1.5 s wait for a hello ran on a worker thread: the event loop kept turning
    assert rec["seconds"] >= 1.4 and rec["ticks"] >= 30 and rec["max_gap_ms"] < 300, rec

    fails = r["autostart_fails"]
    assert fails["outcome"] == "error", fails
    assert fails["last_notice"].startswith("the engine exited at start-up (code 1)"), fails
    assert fails["max_gap_ms"] < 300, fails

    assert r["unchanged"] and r["layers_after"] == ["face", "sketch", "color"]
    no_mask = r["no_mask"]
    assert no_mask["outcome"] == "error" and no_mask["started"] is False
    assert no_mask["last_notice"].startswith("Nothing to regenerate: select the area")
    assert no_mask["states"] == [] and r["no_mask_layers"] == ["face", "sketch", "color"]
    assert r["no_document"]["last_notice"].startswith("Open an image first")


class MuteEngine:
    """A ZeroMQ ROUTER on loopback that answers hello like an engine (its hello's `tools`
    as given), then either ignores edits (a stuck engine) or closes its socket on the first
    one (an engine that dies)."""

    def __init__(self, close_on_edit: bool, tools: dict | None = None):
        self.close_on_edit = close_on_edit
        self.tools = tools
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.endpoint = f"tcp://127.0.0.1:{self.sock.bind_to_random_port('tcp://127.0.0.1')}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self.sock.poll(50):
                continue
            peer, header, *_ = self.sock.recv_multipart()
            request = json.loads(header)
            if request["op"] == "hello":
                reply = {"protocol": 1, "op": "hello", "id": request["id"], "context": {}}
                if self.tools is not None:
                    reply["tools"] = self.tools
                self.sock.send_multipart([peer, json.dumps(reply).encode()])
            elif request["op"] == "edit" and self.close_on_edit:
                self.sock.close(linger=0)
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        if not self.sock.closed:
            self.sock.close(linger=0)
        self.ctx.term()


def test_stuck_or_vanishing_engine_gives_a_plain_message(any_krita, pykrita):
    """An engine that goes silent mid-edit (reply_timeout) or drops the connection: plain
    messages, no layer, back to idle."""
    stuck, dying = MuteEngine(close_on_edit=False), MuteEngine(close_on_edit=True)
    try:
        configs = [
            client_config("stuck", endpoint=stuck.endpoint, autostart=False, reply_timeout=1.0),
            client_config("dying", endpoint=dying.endpoint, autostart=False),
        ]
        paths = [c["SKETCHFILL_CLIENT_CONFIG"] for c in configs]
        r = any_krita(pykrita, PROBE, "edit_with_configs", paths).check().value
    finally:
        stuck.close()
        dying.close()
    silent, gone = r["runs"]
    assert silent["outcome"] == "error" and silent["state_after"] == "idle", silent
    assert silent["last_notice"] == (
        f"the engine at {stuck.endpoint} sent nothing for 1 s; it may be overloaded or stuck "
        "(see its log)."
    )
    assert gone["outcome"] == "error", gone
    assert gone["last_notice"].startswith(
        f"the engine at {dying.endpoint} closed the connection during the edit"
    ), gone
    assert r["unchanged"] and r["layers_after"] == ["face", "sketch", "color"]


def test_variations_history_and_put_back(any_krita, pykrita, engine_endpoint):
    v = run(any_krita, pykrita, "variations_and_history", endpoint=engine_endpoint, autostart=False)
    r = v.value
    for key in ("fixed", "random", "one_more"):
        assert r[key]["outcome"] == "done", r[key]
    fixed = [f"SF {s} fill" for s in (500, 501, 502)]
    assert r["after_fixed"] == ["face", "sketch", "color", *fixed]
    assert r["fixed"]["last_notice"] == added(fixed)
    # newest first: the variation, the two random ones, then 502, 501, 500
    seeds = r["history"]
    assert seeds[3:] == [502, 501, 500] and len(set(seeds)) == 6, seeds
    results = [f"SF {s} fill" for s in reversed(seeds)]
    assert r["layers"] == ["face", "sketch", "color", *results]
    assert r["put_back"] == f"SF {seeds[0]} fill"
    assert r["layers_after_put_back"] == ["face", "sketch", "color", *results, r["put_back"]]
    assert r["put_back_twins"] == 2 and r["put_back_equal"]
    assert r["put_back_bounds"] == [193, 129, 67, 37]


def test_docker_smoke_offscreen(any_krita, pykrita, engine_endpoint):
    """The panel itself, built under QT_QPA_PLATFORM=offscreen: Generate clicked."""
    v = run(any_krita, pykrita, "docker_smoke", endpoint=engine_endpoint, autostart=False)
    r = v.value
    assert r["title"] == "SketchFill"
    assert r["combos"]["image"][1:] == ["color", "sketch", "face"]  # top to bottom
    assert r["combos"]["sketch"][1:] == ["None", "color", "sketch", "face"]
    assert r["combos"]["mask"][:2] == ["Auto", "Selection"]  # short: the panel stays narrow
    assert r["options"] == {"seed": 42, "variations": 1, "sketch": "none"}
    assert r["run"]["outcome"] == "done", r["run"]
    assert r["status"] == added("SF 42 fill")
    assert r["progress"] == 1000
    assert r["generate_enabled"] and not r["cancel_enabled"]
    assert len(r["history_items"]) == 1 and r["history_items"][0].startswith("seed 42 ")
    assert r["layers"] == ["face", "sketch", "color", "SF 42 fill"]


def test_autostart_launches_the_engine(krita, pykrita, dead_endpoint, tmp_path_factory):
    """No engine runs; the plug-in starts one with the configured command and the edit
    completes. Host Krita only: the command is this venv's `sketchfill`, which the chroot
    cannot run."""
    from onnx_fixtures import build_model

    folder = hostenv.session().dir("krita-plugin/autostart")
    model = build_model(tmp_path_factory.mktemp("autostart") / "echo", resolution=64)
    pid_file = folder / "engine.pid"
    sketchfill = Path(sys.executable).with_name("sketchfill")
    # The client drops Krita's PYTHONPATH (where `sketchfill` is the plug-in) itself; the
    # wrapper only records the engine's pid so the test can stop it.
    script = f'echo $$ > {pid_file}; exec {sketchfill} "$@" --model {model}'
    config = {
        "endpoint": dead_endpoint,  # nothing serves it until the plug-in starts the engine
        "autostart": True,
        "engine_command": ["/bin/sh", "-c", script, "sh"],
        "connect_timeout": 0.5,
        "start_timeout": 90,
    }
    try:
        v = run(krita, pykrita, "autostart", **config)
    finally:
        if pid_file.exists():
            pid = int(pid_file.read_text())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
    r = v.value
    assert r["run"]["outcome"] == "done", r["run"]
    texts = [text for _, text in r["run"]["progress"]]
    assert any(t.startswith("Starting the SketchFill engine") for t in texts), texts
    assert len(r["layers"]) == 4 and r["layers"][3].startswith("SF "), r["layers"]


def test_without_pyzmq_the_plugin_loads_and_explains(krita, pykrita):
    """Host Krita with pyzmq left off its path (its system Python has none): the plug-in
    does not vanish; its panel and actions explain what is missing and how to repair."""
    inside = [str(pykrita), str(hostenv.INHOST)]
    verdict = krita(pykrita, PROBE, "without_pyzmq", env={"PYTHONPATH": ":".join(inside)})
    r = verdict.check().value
    if r["zmq_present"]:
        pytest.skip("this Krita's own Python has pyzmq")
    assert r["package"] == "sketchfill"
    assert "MissingExtension" in r["extensions"]
    assert r["panel_title"] == "SketchFill"
    text = r["panel_text"]
    assert text.startswith("SketchFill cannot reach its engine from Krita's Python: ")
    assert "pyzmq" in text and "--repair" in text, text


# -- the full Krita GUI under Xvfb ---------------------------------------------------------

GUI_DRIVER = "sketchfill_gui_driver"
KRITARC = f"[python]\nenable_sketchfill=true\nenable_{GUI_DRIVER}=true\n"
# No OpenGL under Xvfb: Krita's canvas shaders fail to compile there and it crashes.
KRITADISPLAYRC = "[General]\nOpenGLRenderer=none\n"


def run_krita_gui(host: str, scenario: str, pyzmq: str | None, env=None, timeout=180):
    """Start the real Krita GUI (`krita --nosplash` under xvfb-run) with the plug-in staged
    in the profile's pykrita folder as users install it, enabled in kritarc, plus the test
    driver plug-in, which runs krita_plugin_probe.<scenario> and writes the verdict. The
    warmed profile is kept as a template like hostenv's (first start ~20 s, later ~5 s)."""
    version = hostenv.host_version("krita") if host == "system" else hostenv.chroot_version("krita")

    def warm_up(home: Path) -> bool:
        verdict = _krita_gui_exec(host, home, "noop", pyzmq, {}, timeout)
        return verdict.get("ok", False)

    home, _ = hostenv.session().home(f"krita-gui-{host}", version, warm_up)
    return _krita_gui_exec(host, home, scenario, pyzmq, env or {}, timeout)


def _krita_gui_exec(host, home: Path, scenario, pyzmq, env, timeout) -> dict:
    sess = hostenv.session()
    config = home / ".config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "kritarc").write_text(KRITARC)
    (config / "kritadisplayrc").write_text(KRITADISPLAYRC)
    pykrita = home / ".local" / "share" / "krita" / "pykrita"
    stage_krita(pykrita)
    shutil.copy2(PROBES / f"{PROBE}.py", pykrita)
    shutil.copy2(PROBES / f"{GUI_DRIVER}.desktop", pykrita)
    if (pykrita / GUI_DRIVER).exists():
        shutil.rmtree(pykrita / GUI_DRIVER)
    shutil.copytree(PROBES / GUI_DRIVER, pykrita / GUI_DRIVER)
    workdir = sess.run_dir(f"krita-gui-{host}")
    inner_env = {
        "PATH": hostenv.HOST_PATH,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "XDG_RUNTIME_DIR": str(sess.dir(f"xdg-krita-gui-{host}", 0o700)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "SKETCHFILL_WORKDIR": str(workdir),
        "SKETCHFILL_REPO": str(hostenv.REPO),
        "SKETCHFILL_GUI_SCENARIO": scenario,
        **({"PYTHONPATH": pyzmq} if pyzmq else {}),
        **env,
    }
    display = str(hostenv._free_x_display())
    inner = ["xvfb-run", "-n", display, "-s", hostenv.GIMP_SCREEN, "krita", "--nosplash"]
    if host == "system":
        cmd, run_env = inner, inner_env
    else:
        mounts = [(hostenv.REPO.resolve(), True), (sess.root, False)]
        cmd, run_env = (
            hostenv._chroot_command(inner, inner_env, mounts),
            {"PATH": hostenv.HOST_PATH},
        )
    run = hostenv._popen_run(cmd, env=run_env, stdin_text=None, timeout=timeout, workdir=workdir)
    path = workdir / "verdict.json"
    if not path.exists():
        why = "timed out" if run.timed_out else f"wrote no verdict (rc {run.returncode})"
        return {
            "ok": False,
            "error": f"Krita GUI {why}:\n{run.output[-3000:]}",
            "seconds": run.seconds,
        }
    verdict = json.loads(path.read_text())
    verdict["seconds"] = run.seconds
    return verdict


def test_gui_actions_docker_and_one_undo(any_krita, host_setup, engine_endpoint):
    """The full Krita GUI loads the plug-in from its .desktop: eight actions, the docker in
    the window; the Generate action adds the layer, ONE Edit > Undo removes it and leaves
    every layer as before, Redo brings it back; the toggle action hides/shows the panel;
    the panel's Auto tone button adds "SF tone" on top, which one Undo removes; in a
    second document whose active layer is a pasted face, the Composite face button adds
    "SF composite" right above the face, which one Undo removes; in a third, with
    part of the face selected, the Restore face button and then the sketchfill_restore
    action each add "SF <seed> restore" right above the photo, which one Undo removes.
    (kritarunner has no window, hence no undo: 5.2's cannot even open one.)"""
    host = any_krita.keywords["host"]  # any_krita only picks the host and checks its set-up
    pyzmq = host_setup.get("krita_pyzmq") if host == "system" else None
    env = client_config(f"gui-{host}", endpoint=engine_endpoint, autostart=False)
    verdict = run_krita_gui(host, "gui_actions_undo", pyzmq, env)
    assert verdict["ok"], verdict.get("error")
    r = verdict["value"]
    assert r["actions"] == {
        "sketchfill_generate": True,
        "sketchfill_variation": True,
        "sketchfill_before_after": True,
        "sketchfill_create_layers": True,
        "sketchfill_tone": True,
        "sketchfill_composite": True,
        "sketchfill_restore": True,
        "sketchfill_cancel": True,
        "sketchfill_put_back": True,
        "sketchfill_toggle_docker": True,
    }
    assert r["dockers"] == ["SketchFillDocker"]
    assert r["active"] and r["floating_messages"]
    assert r["record"]["outcome"] == "done", r["record"]
    assert r["after_generate"] == ["face", "sketch", "color", "SF 77 fill"]
    assert r["after_undo"] == ["face", "sketch", "color"] and r["undo_restores"]
    assert r["after_redo"] == r["after_generate"] and r["redo_restores"]
    assert r["docker_status"] == added("SF 77 fill")
    assert r["docker_history"] == 1
    shown, hidden, shown_again = r["toggle"]  # 5.1 shows a new docker at first, 5.2 hides it
    assert hidden is not shown and shown_again is shown
    assert r["tone_record"]["outcome"] == "done", r["tone_record"]
    assert r["after_tone"] == ["face", "sketch", "color", "SF 77 fill", "SF tone"]
    assert r["tone_undo_restores"]
    assert r["composite_active_document"]
    # 5.2 under Xvfb reports no active layer at all; the probe then hands the button a
    # document whose active layer is the face (see WithActiveLayer there)
    assert r["composite_active_layer"] in (("face",) if host == "system" else ("face", None))
    assert r["composite_record"]["outcome"] == "done", r["composite_record"]
    assert r["after_composite"] == ["photo", "face", COMPOSITE]
    assert r["after_composite_undo"] == ["photo", "face"]
    assert r["composite_undo_restores"]
    # Restore face in a third document: the button, then the action, each one layer right
    # above the photo that one Undo removes
    assert r["restore_active_document"]
    assert r["restore_record"]["outcome"] == "done", r["restore_record"]
    # the panel's seed is not fixed: a random one, in the layer's name
    restored = r["after_restore"][1]
    assert r["after_restore"] == ["photo", restored, "notes"]
    assert re.fullmatch(r"SF \d+ restore", restored), restored
    assert r["restore_status"] == added(restored, guides=False)
    assert r["restore_keeps_layers"]
    assert r["after_restore_undo"] == ["photo", "notes"] and r["restore_undo_restores"]
    assert r["restore_action_record"]["outcome"] == "done", r["restore_action_record"]
    assert r["after_restore_action"][::2] == ["photo", "notes"], r["after_restore_action"]
    assert re.fullmatch(r"SF \d+ restore", r["after_restore_action"][1])
    assert r["restore_action_undo_restores"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("selection", [True, False], ids=["selection", "whole"])
def test_auto_tone_adds_one_layer(any_krita, pykrita, engine_endpoint, selection):
    """The Auto tone command on the demo portrait: one new layer "SF tone" on top of the
    face layer and the guides (which would hide it) holding exactly what the engine's own
    pipeline makes with the shipped tone model (softly inside the selection when there is
    one); nothing else changes."""
    from sketchfill.pipeline.runtime import load_model
    from sketchfill.tools.tone.infer import run_tone

    args = ["selection"] if selection else []
    v = run(any_krita, pykrita, "auto_tone", args, endpoint=engine_endpoint, autostart=False)
    r = v.value
    assert r["record"]["outcome"] == "done", r["record"]
    assert r["record"]["last_notice"] == added("SF tone")
    assert r["layers_after"] == ["face", "sketch", "color", "SF tone"]
    assert layers_unchanged(r["before"], r["after"]), (r["before"], r["after"])
    assert r["history"] == ["tone"]
    face = to_rgba(bgra_file(v.workdir / "face.bgra", 512, 512))
    mask = None
    if selection:
        mask = np.frombuffer((v.workdir / "selection.l").read_bytes(), np.uint8).reshape(512, 512)
    want = run_tone(load_model("sketchfill-tone", task="tone", warmup=0), face, mask)
    b = want.box
    assert r["new"] == [["SF tone", [b.x, b.y, b.width, b.height]]]
    got = to_rgba(bgra_file(v.workdir / "result.bgra", b.width, b.height))
    assert np.abs(got.astype(int) - want.patch).max() <= 1
    if not selection:
        assert np.abs(got[..., :3].astype(int) - face[..., :3]).mean() > 2  # it did tone


def _bbox(on: np.ndarray) -> Box:
    ys, xs = np.nonzero(on)
    return Box(
        int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
    )


def _near(on: np.ndarray, px: int) -> np.ndarray:
    """Pixels within `px` of any `on` pixel."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(on.astype(np.uint8), kernel) > 0


@pytest.mark.parametrize("selection", [False, True], ids=["face", "selection"])
def test_composite_face_adds_one_layer(any_krita, pykrita, engine_endpoint, selection):
    """Composite face on a photo layer with a pasted, recoloured face layer above it (and
    a layer on top): exactly one new layer "SF composite" right above the face
    layer, holding what the engine's own pipeline makes with the shipped composite model
    from the rectangle the plug-in sends (the composite tool's edit_region of the face's,
    or the selection's, bounding box); photo and face unchanged. It is no plain paste
    inside the face, and it is the photo away from the face; with a selection it stays
    within the selection. Layers that do not fit (nothing or a group below the face, an
    empty face, no active layer, a selection off the face) are refused before any engine
    is asked, with plain messages. No pixel value of the model is assumed: it is replaced
    as it trains."""
    from sketchfill.pipeline.runtime import load_model
    from sketchfill.tools.composite.infer import pasted, run_composite

    args = ["selection"] if selection else []
    v = run(any_krita, pykrita, "composite_face", args, endpoint=engine_endpoint, autostart=False)
    r = v.value
    assert r["record"]["outcome"] == "done", r["record"]
    assert r["record"]["last_notice"] == added(COMPOSITE, guides=False)
    assert any(text.startswith("Composite face: ") for _, text in r["record"]["progress"])
    assert r["layers_after"] == ["photo", "face", COMPOSITE, "notes"]
    assert layers_unchanged(r["before"], r["after"]), (r["before"], r["after"])
    assert r["history"] == ["composite"]

    photo = to_rgba(bgra_file(v.workdir / "photo.bgra", 512, 512))
    face = to_rgba(bgra_file(v.workdir / "face.bgra", 512, 512))
    where = face[..., 3] > 0
    mask = None
    if selection:
        mask = np.frombuffer((v.workdir / "selection.l").read_bytes(), np.uint8).reshape(512, 512)
        where = mask > 0
    with Client(engine_endpoint) as client:
        region = edit_region(_bbox(where), 512, 512, client.hello(5), tool="composite")

    def crop(a):
        if a is None:
            return None
        return np.ascontiguousarray(a[region.y : region.y1, region.x : region.x1])

    model = load_model("sketchfill-composite", task="composite", warmup=0)
    want = run_composite(model, crop(photo), crop(face), crop(mask))
    b = Box(region.x + want.x, region.y + want.y, want.box.width, want.box.height)
    assert r["new"] == [[COMPOSITE, "paintlayer", [b.x, b.y, b.width, b.height]]]
    got = to_rgba(bgra_file(v.workdir / "result.bgra", b.width, b.height))
    assert np.abs(got.astype(int) - want.patch).max() <= 1

    def part(a):
        return a[b.y : b.y1, b.x : b.x1]

    assert np.array_equal(got[..., 3], part(photo)[..., 3])  # the photo's alpha
    inside = part(where & (face[..., 3] >= 128))
    paste = part(pasted(photo, face)).astype(int)
    assert np.abs(got[..., :3].astype(int) - paste)[inside].mean() > 2  # not a plain paste
    far = ~part(_near(where, 12))
    if selection:  # only the selection (and a model pixel or two around it) changes
        assert _bbox(where).x - b.x <= 8 and b.x1 - _bbox(where).x1 <= 8
        assert b.y >= _bbox(where).y - 8 and b.y1 <= _bbox(where).y1 + 8
    else:
        assert far.sum() > 100
    assert np.array_equal(got[far], part(photo)[far])

    if selection:
        return
    refused = r["refused"]
    pick = "Select the face layer; the photo must be the paint layer right below it."
    expected = {
        "nothing_below": f"Composite face: there is no layer below 'face'. {pick}",
        "no_active_layer": (
            "Composite face: select the face layer first; the photo must be the paint layer "
            "right below it."
        ),
        "group_below": (
            "Composite face: the layer below 'face' is 'group', a group layer, not a paint "
            f"layer. {pick}"
        ),
        "empty_face": (
            "Composite face: the layer 'empty' is empty inside the canvas. Paste the face on "
            "it (transparent around the face) and move it into place."
        ),
        "selection_elsewhere": (
            "Composite face: the selection does not touch the face on 'face'. Select part of "
            "the face, or select nothing to composite all of it."
        ),
    }
    assert {k: v["notice"] for k, v in refused.items()} == expected
    for key, rec in refused.items():
        assert rec["started"] is False and rec["outcome"] == "error", (key, rec)
        assert rec["states"] == [] and rec["unchanged"], (key, rec)  # never connected


# -- Restore face ----------------------------------------------------------------------------

# The probe's mask: an ellipse over the portrait's left eye and cheek (see RESTORE_CENTRE).
RESTORE_BOX = Box(183, 90, 45, 71)


@pytest.mark.parametrize("mask_as", ["selection", "layer"])
def test_restore_face_adds_one_layer(any_krita, pykrita, engine_endpoint, mask_as):
    """Restore face on the demo portrait, what hides the face given as the selection or
    as the layer 'mask' (as Generate reads it): exactly one new layer "SF <seed> restore"
    right above the photo, over the mask's bounding box, holding what the engine's own
    restore pipeline makes with the shipped restore model from the rectangle the plug-in
    sends (the restore tool's wide edit_region: the whole 512-px canvas); the pixels inside
    the mask changed, those outside it are the photo's; every user layer (and the
    selection) byte-identical. The model is an early checkpoint: behaviour is checked, not
    quality."""
    from sketchfill.pipeline.layers import mask_channel
    from sketchfill.pipeline.runtime import load_model
    from sketchfill.tools.restore.infer import run_restore

    config = {"endpoint": engine_endpoint, "autostart": False}
    v = run(any_krita, pykrita, "restore_face", [mask_as], **config)
    r = v.value
    assert r["record"]["outcome"] == "done", r["record"]
    assert r["record"]["last_notice"] == added(RESTORE, guides=mask_as == "layer")
    assert any(text.startswith("Restore face: ") for _, text in r["record"]["progress"])
    # on top of the mask layer it was made with, when there is one
    stack = ["photo", RESTORE, "notes"] if mask_as == "selection" else ["photo", "mask", RESTORE]
    assert r["layers_after"] == stack
    assert layers_unchanged(r["before"], r["after"]), (r["before"], r["after"])
    assert len(r["after"]) == len(r["before"]) + 1
    assert r["history"] == [["restore", "seed", str(RESTORE_SEED)]]

    photo = to_rgba(bgra_file(v.workdir / "photo.bgra", 512, 512))
    if mask_as == "selection":
        mask = np.frombuffer((v.workdir / "mask.l").read_bytes(), np.uint8).reshape(512, 512)
    else:  # the engine reads a mask layer with transparency by its alpha
        mask = mask_channel(bgra_file(v.workdir / "mask.bgra", 512, 512), "BGRA")
    assert mask_bbox(mask) == RESTORE_BOX
    with Client(engine_endpoint) as client:
        hello = client.hello(5)
    assert hello["tools"]["restore"]["context"] == {"margin": 2.0, "min_side": 2048}
    region = edit_region(RESTORE_BOX, 512, 512, hello, tool="restore")
    assert region == Box(0, 0, 512, 512)
    model = load_model("sketchfill-restore", task="restore", warmup=0)
    from sketchfill.wire.roles import auto_feather

    feather = auto_feather(RESTORE_BOX.width, RESTORE_BOX.height, 512, 512)  # Auto
    want = run_restore(model, photo, np.ascontiguousarray(mask), RESTORE_SEED, feather)
    b = RESTORE_BOX
    assert (want.x, want.y, want.box.width, want.box.height) == (b.x, b.y, b.width, b.height)
    assert r["new"] == [[RESTORE, "paintlayer", [b.x, b.y, b.width, b.height]]]
    got = to_rgba(bgra_file(v.workdir / "result.bgra", b.width, b.height))
    assert np.abs(got.astype(int) - want.patch).max() <= 1

    inside = mask[b.y : b.y1, b.x : b.x1] >= 128
    part = photo[b.y : b.y1, b.x : b.x1]
    assert np.array_equal(got[~inside], part[~inside])  # outside the mask: the photo
    changed = np.abs(got[..., :3].astype(int) - part[..., :3]).max(axis=2) > 8
    assert changed[inside].mean() > 0.5, changed[inside].mean()
    assert (got[..., 3] == 255).all()


def test_restore_face_refusals_are_plain_messages(any_krita, pykrita, engine_endpoint):
    """Nothing marked and an empty mask layer are refused before any engine is asked; a
    mask too faint to count (the engine's empty_mask), a picture without a face (no_face)
    and an engine whose hello has no restore model give plain messages. Never a layer,
    never a changed layer."""
    no_model = MuteEngine(
        close_on_edit=False,
        tools={
            "restore": {
                "model": None,
                "model_error": {
                    "code": "model_missing",
                    "message": "no model 'sketchfill-restore' in /models",
                },
                "context": {"margin": 2.0, "min_side": 2048},
            }
        },
    )
    try:
        config = client_config("restore_no_model", endpoint=no_model.endpoint, autostart=False)
        v = run(
            any_krita,
            pykrita,
            "restore_errors",
            [config["SKETCHFILL_CLIENT_CONFIG"]],
            endpoint=engine_endpoint,
            autostart=False,
        )
    finally:
        no_model.close()
    r = v.value
    no_face = (
        "no face found in the picture: the restore tool needs a face seen from the front or "
        "side, at least about a tenth of the picture's width. Restore face works on a photo "
        "of a face: check that the Image layer in the SketchFill panel is the photo, and mark "
        "only what covers the face."
    )
    expected = {
        "nothing_marked": (
            "Restore face: nothing marked. Select what hides the face (a hand, glasses, a "
            "strand of hair, text), or paint over it on a layer named 'mask'."
        ),
        "empty_mask_layer": (
            "The mask is empty inside the canvas: select the area to regenerate, or paint it "
            "on the mask layer."
        ),
        "faint_mask": (
            "the mask selects nothing: mark what hides the face. Select what hides the face "
            "(or paint over it on the mask layer, at least half opaque) and try again."
        ),
        "no_face": no_face,
        "no_model": (
            "no model 'sketchfill-restore' in /models. Install a model with the SketchFill "
            "installer, then restart the engine."
        ),
    }
    assert {k: rec["notice"] for k, rec in r.items()} == expected
    for key, rec in r.items():
        assert rec["outcome"] == "error" and rec["unchanged"] and rec["history"] == 0, (key, rec)
    for key in ("nothing_marked", "empty_mask_layer"):  # never connected
        assert r[key]["started"] is False and r[key]["states"] == [], (key, r[key])
    for key in ("faint_mask", "no_face", "no_model"):  # the engine was asked
        assert r[key]["started"] is True and r[key]["states"][-1] == "idle", (key, r[key])


# -- a new user's first hour (issue #19) -----------------------------------------------------


def test_first_hour(any_krita, pykrita, engine_endpoint):
    """Create SketchFill layers on a bare photo adds transparent 'sketch', 'color' and
    'mask' right above it (a second run adds nothing); guides the user named "Lines" and
    "Colour" are found by Auto and the result lands ON TOP of them, the status line saying
    so and the progress in words; Before/after hides the result, then shows it; with no
    colour layer the run is refused before any connection, saying how to go on; the panel
    folds its role pickers and history away (shorter, with a one-line summary)."""
    v = run(any_krita, pykrita, "first_hour", endpoint=engine_endpoint, autostart=False)
    r = v.value
    assert r["created"] == ["sketch", "color", "mask"]
    assert r["after_create"] == ["photo", "mask", "color", "sketch"]  # bottom to top
    assert r["create_alpha_max"] == {"sketch": 0, "color": 0, "mask": 0}
    assert r["create_notice"] == (
        "Added the layers 'sketch', 'color' and 'mask' above 'photo'. Then paint the area to "
        "regenerate in white on 'mask'; draw the new shape with a thin dark brush on "
        "'sketch'; dab the wanted colours on 'color'; then Generate."
    )
    assert r["created_again"] == []
    assert r["create_again_notice"].startswith(
        "Kept the layers 'sketch', 'color' and 'mask', already there."
    )
    assert r["after_create_again"] == r["after_create"]

    run_ = r["run"]
    assert run_["outcome"] == "done", run_
    assert r["after_generate"] == ["face", "Lines", "Colour", "SF 321 fill"]
    assert run_["last_notice"] == added("SF 321 fill")
    texts = [text for _, text in run_["progress"]]
    assert "Generating..." in texts, texts
    assert not any(": generate" in t for t in texts), texts
    assert r["toggle_off"] == [False, "Before: 'SF 321 fill' hidden."]
    assert r["toggle_on"] == [True, "After: 'SF 321 fill' shown."]
    assert r["visible"] is True

    no_color = r["no_color"]
    assert no_color["outcome"] == "error" and no_color["started"] is False, no_color
    assert no_color["states"] == [] and r["no_color_unchanged"]
    assert no_color["last_notice"] == (
        "No colour layer: this image has no layer named 'color', 'colour', 'colors' or "
        "'colours'. Pick the colour layer, or set the colour layer to None to generate "
        "without one."
    )

    folded, unfolded = r["heights"]
    assert folded < unfolded - 100, r["heights"]
    assert r["combo_items"] == ["Auto", "None"]
    assert r["summary"].startswith("image 'face', sketch 'Lines', colour: not found"), r


def test_history_names_a_saved_ora_file(any_krita, pykrita, engine_endpoint):
    """A document opened from a .ora file has no title: the history names it by its file,
    not "untitled"."""
    v = run(any_krita, pykrita, "ora_history", endpoint=engine_endpoint, autostart=False)
    r = v.value
    assert r["opened_title"] == "" and r["opened_file"].endswith("portrait.ora"), r
    assert r["layers"] == ["face", "sketch", "color", "mask", "SF 5 fill"], r
    assert r["ora_run"]["outcome"] == "done", r
    label = r["ora_history"][0]
    assert "portrait.ora" in label and "untitled" not in label, (r["opened_title"], label)


def test_the_panel_starts_the_engine_when_it_opens(any_krita, pykrita):
    """With auto-start on, the SketchFill panel opening starts the engine in the
    background (a stand-in command that records its call), once per Krita process, and
    says so; the first Generate then finds it loaded."""
    folder = hostenv.session().dir(f"krita-plugin/prestart-{any_krita.keywords['host']}")
    started = folder / "started.txt"
    started.unlink(missing_ok=True)
    engine = folder / "engine.sh"
    engine.write_text(f'#!/bin/sh\necho "$@" >> {started}\n')
    engine.chmod(0o755)
    with socket.socket() as s:  # a free port: nothing listens there
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    env = client_config("prestart", endpoint=endpoint, engine_command=[str(engine)])
    r = any_krita(pykrita, PROBE, "docker_prestarts", [str(started)], env=env).check().value
    assert r["calls"] == [f"serve --endpoint {endpoint}"], r
    assert r["status"] == (
        "Starting the SketchFill engine in the background, for the first Generate."
    )
