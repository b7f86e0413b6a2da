"""The SketchFill GIMP 3 plug-in in the real GIMP 3.0.4 (trixie chroot), against a real
`sketchfill serve` process on loopback serving the echo generator (masked pixels become
the painted colour, darkened by strokes; unmasked ones come back unchanged).

The plug-in is staged with sketchfill.install.plugins.stage_gimp, exactly as users get it, and
loaded from the session's GIMP3_DIRECTORY. Test images are built inside GIMP from a real
face photo, with guide layers that have offsets and differ from the canvas size; the
scripts that run inside GIMP are in probes/sketchfill_gimp/.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sketchfill.install.plugins import stage_gimp
from sketchfill.wire.client import Client
from sketchfill.wire.errors import EngineError

pytestmark = pytest.mark.hosts

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCRIPTS = HERE / "probes" / "sketchfill_gimp"
FACE = REPO.parent / "shared" / "data" / "faces" / "0001.jpg"
ASTRONAUT = REPO / "engine" / "assets" / "demo" / "astronaut.png"
PAINT = np.array([200, 60, 50, 255])
RESULT_NAME = re.compile(r"SF (\d+) fill$")
TOGGLE = "Filters > SketchFill > Before/after"


def added_message(name: str) -> str:
    """What the status line says after a run that added `name` (engine/roles.py)."""
    return (
        f"SketchFill: Added the layer '{name}' on top of the guides. Before/after ({TOGGLE}) "
        "hides and shows it."
    )


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    """plug-ins/sketchfill as the installer lays it out (the client package beside it)."""
    return stage_gimp(tmp_path_factory.mktemp("gimp-profile") / "plug-ins")


@pytest.fixture(scope="module")
def photo() -> Path:
    """A real face photo (never committed: read from ../shared at run time), else the
    bundled public-domain portrait."""
    return FACE if FACE.is_file() else ASTRONAUT


@pytest.fixture
def config(tmp_path):
    """Writes a client.json for the plug-in (passed in SKETCHFILL_CLIENT_CONFIG)."""

    def write(**fields) -> Path:
        path = tmp_path / "client.json"
        path.write_text(json.dumps({"autostart": False, "connect_timeout": 2.0, **fields}))
        return path

    return write


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hello(endpoint: str, timeout: float = 0.5) -> dict | None:
    with Client(endpoint) as client:
        try:
            return client.hello(timeout)
        except EngineError:
            return None


def _start_engine(args: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    sketchfill = Path(sys.executable).with_name("sketchfill")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(sketchfill), "serve", "--endpoint", endpoint, *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, endpoint


def _wait_for(proc: subprocess.Popen, endpoint: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while _hello(endpoint) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"engine did not start: {log.read_text()}")


@pytest.fixture(scope="module")
def odd_engines(tmp_path_factory):
    """Two more real engines: one without a model, one that takes at most 64x64 pixels."""
    from onnx_fixtures import build_model

    tmp = tmp_path_factory.mktemp("odd-engines")
    model = build_model(tmp / "echo", resolution=64)
    started = {
        "no_model": _start_engine(["--model", str(tmp / "missing")], tmp / "no-model.log"),
        "small": _start_engine(
            ["--model", str(model), "--max-pixels", str(64 * 64)], tmp / "small.log"
        ),
    }
    try:
        for name, (proc, endpoint) in started.items():
            _wait_for(proc, endpoint, tmp / f"{name.replace('_', '-')}.log")
        yield {name: endpoint for name, (_, endpoint) in started.items()}
    finally:
        for proc, _ in started.values():
            proc.terminate()
            proc.wait(15)


# -- running GIMP --------------------------------------------------------------------------


def _run(gimp, script: str, plugin: Path, photo: Path, client_json: Path, **kw):
    env = {"SKETCHFILL_CLIENT_CONFIG": str(client_json), **kw.pop("env", {})}
    binds = [client_json.parent, *kw.pop("binds", [])]
    run = gimp(
        (SCRIPTS / script).read_text(),
        files=[photo],
        plugin_dirs=[plugin],
        pythonpath=[SCRIPTS],
        env=env,
        binds=binds,
        **kw,
    ).check()
    assert run.result is not None, run.output[-4000:]
    return run


def _generate(gimp, plugin, photo, client_json, case: dict):
    env = {"SKETCHFILL_CASE": json.dumps(case)}
    return _run(gimp, "generate_case.py", plugin, photo, client_json, env=env)


# -- checks --------------------------------------------------------------------------------


def _pixels(run, name: str, box: list[int], channels: int = 4) -> np.ndarray:
    data = np.frombuffer((run.workdir / f"{name}.bin").read_bytes(), np.uint8)
    return data.reshape(box[3], box[2], channels)


def _bbox(mask: np.ndarray) -> list[int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return [int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)]


def _grow(mask: np.ndarray, r: int) -> np.ndarray:
    """mask dilated by r pixels (square neighbourhood)."""
    out = mask.copy()
    for _ in range(r):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def check_one_new_layer(r: dict, name: re.Pattern = RESULT_NAME, above: str = "") -> dict:
    """Exactly one new layer, named for its seed (or as `name` says), directly above the
    layer named `above` in the same parent (default: on top of the whole stack, above the
    photo and every guide, where it is seen); every other layer and the selection exactly
    as before; the status line's sentence names it."""
    assert r["call"]["success"], r["call"]
    assert len(r["added"]) == 1, r["added"]
    new = r["added"][0]
    assert name.match(new["name"]), new["name"]
    after = r["after"]["layers"]
    ids = [layer["id"] for layer in after]
    if above:
        below = next(layer for layer in after if layer["name"] == above)
        assert ids.index(new["id"]) + 1 == ids.index(below["id"]), [x["name"] for x in after]
        assert new["parent"] == below["parent"]
    else:
        assert ids.index(new["id"]) == 0 and new["parent"] is None, [x["name"] for x in after]
    if r["call"].get("message") is not None:
        said = r["call"]["message"]
        assert said.startswith(f"SketchFill: Added the layer '{new['name']}'"), said
    assert [x for x in after if x["id"] != new["id"]] == r["before"]["layers"]
    assert r["after"]["selection_sha256"] == r["before"]["selection_sha256"]
    return new


def check_pixels(run, result: dict, prefix: str = "") -> np.ndarray:
    """Offset and size = the mask's bounding box; outside the mask the photo's pixels
    exactly; inside, the echo generator's answer: the colour, darkened on the strokes.
    Returns the new layer's pixels."""
    cw, ch = result["canvas"]
    mask = _pixels(run, prefix + "mask", [0, 0, cw, ch], 1)[..., 0] >= 128
    box = result["box"]
    assert box == _bbox(mask), (box, _bbox(mask))
    x, y, w, h = box
    inside = mask[y : y + h, x : x + w]
    new, photo = _pixels(run, prefix + "new", box), _pixels(run, prefix + "photo", box)
    sketch, color = _pixels(run, prefix + "sketch", box), _pixels(run, prefix + "color", box)
    assert np.array_equal(new[~inside], photo[~inside])
    assert (new[inside][:, 3] == 255).all()
    # Away from the mask's edge (where the low-resolution generator blends in the photo)
    # and from the strokes, the echo returns the painted colour.
    core = inside & ~_grow(~inside, 10)
    strokes = sketch[..., 3] > 0
    plain = core & ~_grow(strokes, 12) & (color[..., 3] == 255)
    assert plain.sum() > 500, plain.sum()
    diff = np.abs(new[plain].astype(int) - PAINT).max(axis=1)
    assert np.mean(diff <= 6) > 0.95, np.percentile(diff, [50, 90, 99])
    on_strokes = core & strokes
    assert on_strokes.sum() > 50, on_strokes.sum()
    darkening = PAINT[:3].sum() - new[on_strokes][:, :3].astype(int).sum(axis=1)
    assert darkening.mean() > 45, darkening.mean()
    return new


def _depth(fmt: str) -> tuple[str, bool]:
    """A Babl format's component type and whether it is perceptual (R'G'B' or Y')."""
    return fmt.split()[-1], "'" in fmt


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["u8-non-linear", "float-linear"])
def test_generate_from_selection(gimp, plugin, photo, config, engine_endpoint, precision):
    """A face photo with sketch and colour layers (offset, smaller than the canvas) and an
    ellipse selection: one call adds exactly one layer, right where the mask is; the
    user's layers are untouched; a 32-bit float image works as well as an 8-bit one."""
    client_json = config(endpoint=engine_endpoint)
    run = _generate(gimp, plugin, photo, client_json, {"precision": precision})
    r = run.result
    assert r["precision"] == precision
    new = check_one_new_layer(r)
    check_pixels(run, r["result"])
    photo_fmt = next(x for x in r["after"]["layers"] if x["name"] == "photo")["format"]
    assert _depth(new["format"]) == _depth(photo_fmt), (new["format"], photo_fmt)
    assert r["menus"] == {
        "plug-in-sketchfill-generate": ["<Image>/Filters/SketchFill/[1]"],
        "plug-in-sketchfill-generate-again": ["<Image>/Filters/SketchFill/[2]"],
    }
    assert r["labels"] == {
        "plug-in-sketchfill-generate": "_Generate...",
        "plug-in-sketchfill-generate-again": "Generate _again",
    }
    assert r["arguments"][3:] == [
        "image-layer",
        "sketch-layer",
        "color-layer",
        "mask-source",
        "mask-layer",
        "seed",
        "feather",
        "strength",
        "endpoint",
    ]


def test_generate_from_mask_layer(gimp, plugin, photo, config, engine_endpoint):
    """No selection, a layer named "mask" (offset, smaller than the canvas, painted on
    transparency); a 16-bit linear image; the photo layer itself moved off the canvas
    corner; the sketch layer inside a layer group."""
    client_json = config(endpoint=engine_endpoint)
    case = {"mask": "layer", "precision": "u16-linear", "photo_offset": [-16, 12], "group": True}
    run = _generate(gimp, plugin, photo, client_json, case)
    r = run.result
    new = check_one_new_layer(r)
    check_pixels(run, r["result"])
    assert _depth(new["format"]) == ("u16", False), new["format"]
    sketch = next(x for x in r["after"]["layers"] if x["name"] == "sketch")
    assert sketch["parent"] == "guides"


def test_errors_are_plain_messages(gimp, plugin, photo, config, odd_engines, dead_endpoint):
    """Engine down (auto-start off), no model, image too large, no mask, missing layers and
    a grayscale image: each call fails with one plain message (shown once by GIMP), adds
    no layer and changes nothing; GIMP carries on and exits 0."""
    client_json = config(endpoint=dead_endpoint, connect_timeout=1.0)
    env = {"SKETCHFILL_CASE": json.dumps(odd_engines)}
    run = _run(gimp, "errors.py", plugin, photo, client_json, env=env)
    r = run.result
    expected = {
        "engine_down": f"no SketchFill engine answers at {dead_endpoint}",
        "engine_down_again": f"no SketchFill engine answers at {dead_endpoint}",
        "no_model": "has no usable model",
        "too_large": "image too large for the engine",
        "no_layer_named": "there is no layer named 'nope'",
        "mask_layer_missing": "no mask: the area to regenerate is given by a layer named 'mask'",
        "empty_selection": "no mask: the area to regenerate is given by a selection,",
        "no_mask_at_all": "no mask: the area to regenerate is given by a selection or a layer",
        "grayscale": "SketchFill works on RGB images and this one is gray",
    }
    for label, text in expected.items():
        outcome = r[label]
        assert not outcome["success"], (label, outcome)
        assert outcome["status"] == "execution-error", (label, outcome)
        assert text in outcome["error"], (label, outcome["error"])
        assert outcome["error"].startswith("SketchFill"), outcome["error"]
        assert outcome["unchanged"], label
    # GIMP shows each failure once: twice in all for the two engine-down calls.
    assert run.output.count(expected["engine_down"]) == 2, run.output[-4000:]
    assert "Traceback" not in run.output


def test_without_pyzmq_the_menu_stays_and_runs_say_why(gimp, photo, config, tmp_path):
    """GIMP's Python without a loadable pyzmq (a host update, a half-done install): the
    plug-in still registers both procedures, and running one fails with a message that
    names the problem instead of the menu silently vanishing."""
    broken = tmp_path / "broken-zmq"
    (broken / "zmq").mkdir(parents=True)
    (broken / "zmq" / "__init__.py").write_text('raise ImportError("no pyzmq for this test")\n')
    fresh = stage_gimp(tmp_path / "plug-ins")
    os.utime(fresh / "sketchfill.py")  # a new mtime: GIMP queries it again, without pyzmq
    run = gimp(
        (SCRIPTS / "no_pyzmq.py").read_text(),
        files=[photo],
        plugin_dirs=[fresh],
        pythonpath=[SCRIPTS, broken],
        env={"SKETCHFILL_CLIENT_CONFIG": str(config())},
        binds=[tmp_path],
    ).check()
    r = run.result
    assert r is not None, run.output[-4000:]
    assert r["exists"] == [True, True], run.output[-4000:]
    for outcome in (r["generate"], r["again"]):
        assert not outcome["success"]
        assert outcome["error"].startswith("SketchFill"), outcome["error"]
        assert "zmq" in outcome["error"], outcome["error"]
    assert r["unchanged"]


def test_dialog_undo_and_generate_again(gimp, plugin, photo, config, engine_endpoint):
    """In the GUI (Xvfb): Generate... shows its dialog with the remembered settings (guide
    layers "lines" and "paint", seed 4242, feather 2) and OK runs them; ONE Ctrl+Z removes
    exactly the new layer and leaves the image clean; Generate again then reuses those
    settings with new seeds and no dialog, newest result on top of the earlier ones."""
    client_json = config(endpoint=engine_endpoint)
    run = _run(gimp, "dialog_undo_again.py", plugin, photo, client_json, gui=True, timeout=150)
    r = run.result
    assert r["dialog_helper_rc"] == 0, "the SketchFill dialog never showed"
    first = check_one_new_layer({**r, "call": r["dialog_call"], "after": r["after_dialog"]})
    assert first["name"] == "SF 4242 fill"
    first_px = check_pixels(run, r["first"], "first_")
    assert r["dirty"]
    assert r["undone"], "Ctrl+Z did not remove the layer"
    assert r["after_undo"] == r["before"]
    assert not r["dirty_after_undo"], "one Ctrl+Z should return to the clean image"

    seeds = [4242]
    for i, again in enumerate(r["again"]):
        assert again["call"]["success"], again["call"]
        assert len(again["added"]) == 1, again["added"]
        seed = int(RESULT_NAME.match(again["added"][0]["name"]).group(1))
        assert seed not in seeds, (seed, seeds)
        seeds.append(seed)
        px = check_pixels(run, again["result"], f"again{i}_")
        # The echo generator ignores the seed: equal pixels mean the same settings.
        assert np.array_equal(px, first_px)
    names = [x["name"] for x in r["final"]["layers"]]
    assert names == [*(f"SF {s} fill" for s in seeds[:0:-1]), "lines", "paint", "photo"]


def test_autostart_starts_a_real_engine(gimp, plugin, photo, config, tmp_path):
    """No engine answers and auto-start is on: the plug-in runs the configured
    engine_command (this checkout's `sketchfill`, on a free port), waits for it and
    edits through it. The engine outlives GIMP (other windows may use it): stop it."""
    from onnx_fixtures import build_model

    base = Path(sys.base_prefix)
    if base == Path("/usr") or Path("/usr") in base.parents:
        pytest.skip(f"this venv's Python lives in {base}, which the GIMP chroot cannot show")
    models = tmp_path / "models"
    build_model(models / "sketchfill-face", resolution=64)  # the default model's name
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    sketchfill = str(Path(sys.executable).with_name("sketchfill"))
    client_json = config(
        endpoint=endpoint,
        autostart=True,
        engine_command=[sketchfill],
        connect_timeout=0.5,
        start_timeout=90.0,
    )
    env = {"SKETCHFILL_MODELS": str(models)}
    # The engine runs inside the chroot: it needs the venv's base interpreter there too.
    run = _run(gimp, "autostart.py", plugin, photo, client_json, env=env, binds=[base])
    hello = _hello(endpoint, 2.0)
    try:
        r = run.result
        check_one_new_layer(r)
        assert hello is not None, f"no engine at {endpoint} after GIMP exited"
        assert hello["model"]["name"] == "echo"
    finally:
        if hello is not None:
            _stop(hello["engine"]["pid"])


def _stop(pid: int) -> None:
    """End the engine the plug-in started (by its pid, from its hello)."""
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("selection", [True, False])
def test_auto_tone(gimp, plugin, photo, config, engine_endpoint, selection):
    """Filters > SketchFill > Auto tone on a photo layer moved off the canvas corner: one
    new layer "SF tone" above the photo, holding exactly what the engine's own
    pipeline makes with the shipped tone model from the photo's part of the canvas (the
    whole layer, or softly just the ellipse selection); nothing else changes."""
    from sketchfill.pipeline.runtime import load_model
    from sketchfill.tools.tone.infer import run_tone

    client_json = config(endpoint=engine_endpoint)
    case = {"selection": selection, "photo_offset": [-16, 12]}
    env = {"SKETCHFILL_CASE": json.dumps(case)}
    run = _run(gimp, "tone_case.py", plugin, photo, client_json, env=env)
    r = run.result
    check_one_new_layer(r, re.compile(r"SF tone$"))  # on top of the guides too
    assert r["menu"] == ["<Image>/Filters/SketchFill/[5]"] and r["label"] == "Auto _tone"
    x, y = r["region"][:2]
    assert (x, y) == (0, 12)
    photo_px = _pixels(run, "photo", r["region"])
    sel = _pixels(run, "selection", r["region"], 1)[..., 0]
    assert sel.any() == selection
    model = load_model("sketchfill-tone", task="tone", warmup=0)
    want = run_tone(model, photo_px, sel if selection else None)
    assert r["box"] == [x + want.x, y + want.y, *want.patch.shape[1::-1]]
    new = _pixels(run, "new", r["box"])
    assert np.abs(new.astype(int) - want.patch).max() <= 1
    if selection:
        outside = sel[want.box.y : want.box.y1, want.box.x : want.box.x1] == 0
        inside = photo_px[want.box.y : want.box.y1, want.box.x : want.box.x1]
        assert outside.any() and np.array_equal(new[outside], inside[outside])
    else:
        assert r["box"] == r["region"]
        assert np.abs(new[..., :3].astype(int) - photo_px[..., :3]).mean() > 2  # it did tone


@pytest.mark.parametrize("selection", [False, True], ids=["face-alpha", "selection"])
def test_composite_face(gimp, plugin, photo, config, engine_endpoint, selection):
    """Filters > SketchFill > Composite face, in the GUI (Xvfb), on a face cut from the
    photo, recoloured, moved and pasted as its own layer (offset, smaller than the canvas)
    over the photo layer (itself moved off the canvas corner), under an unrelated layer:
    one new layer "SF composite" directly above the face layer; every layer as it
    was; the new pixels are what the engine's own pipeline makes with the shipped
    composite model (whatever its weights), differ from a plain paste inside the face and
    are the photo's own away from it (or from the selection that limits it); one Ctrl+Z
    removes the layer and leaves the image clean."""
    from sketchfill.pipeline.runtime import load_model
    from sketchfill.tools.composite.infer import pasted, run_composite

    client_json = config(endpoint=engine_endpoint)
    case = {"selection": selection, "photo_offset": [-16, 12]}
    env = {"SKETCHFILL_CASE": json.dumps(case)}
    run = _run(gimp, "composite_case.py", plugin, photo, client_json, env=env, gui=True)
    r = run.result
    new_info = check_one_new_layer(r, re.compile(r"SF composite$"), above="face")
    names = [x["name"] for x in r["after"]["layers"]]
    assert names == ["notes", "SF composite", "face", "photo"], names
    assert new_info["mode"] == "normal" and new_info["opacity"] == 100.0
    assert r["menu"] == ["<Image>/Filters/SketchFill/[6]"] and r["label"] == "_Composite face"
    assert r["arguments"][3:] == ["endpoint"]

    canvas = r["canvas"]
    photo_px, face = _pixels(run, "photo", canvas), _pixels(run, "face", canvas)
    sel = _pixels(run, "selection", canvas, 1)[..., 0]
    assert sel.any() == selection
    region = (sel if selection else face[..., 3]) > 0
    model = load_model("sketchfill-composite", task="composite", warmup=0)
    want = run_composite(model, photo_px, face, sel if selection else None)
    box = r["box"]
    assert box == [want.x, want.y, *want.patch.shape[1::-1]], (box, want.box)
    x, y, w, h = box
    new = _pixels(run, "new", canvas)[y : y + h, x : x + w]
    # The engine got only the region around the face: the same pixels as from the canvas.
    assert np.abs(new.astype(int) - want.patch).max() <= 1

    # Inside the face (and the selection), away from its soft edge: not a plain paste.
    core = (region & (face[..., 3] == 255) & ~_grow(~region, 4))[y : y + h, x : x + w]
    assert core.sum() > 2000, core.sum()
    plain = pasted(photo_px, face)[y : y + h, x : x + w]
    change = np.abs(new[..., :3].astype(int) - plain).mean(axis=-1)
    assert change[core].mean() > 2, change[core].mean()
    # Away from the face (or selection) by a few of the network's pixels: the photo.
    side = max(_bbox(region)[2:])
    far = ~_grow(region, 3 * -(-2 * side // model.resolution))[y : y + h, x : x + w]
    assert far.sum() > 500, far.sum()
    under = photo_px[y : y + h, x : x + w]
    assert np.array_equal(new[far], under[far])

    assert r["dirty"]
    assert r["undone"], "Ctrl+Z did not remove the layer"
    assert r["after_undo"] == r["before"]
    assert not r["dirty_after_undo"], "one Ctrl+Z should return to the clean image"


def test_composite_face_errors(gimp, plugin, photo, config, engine_endpoint):
    """Composite face refuses, with one plain message that names the problem, and changes
    nothing: the photo (bottom layer) selected, a single-layer image, an empty face layer,
    an opaque one without a selection, a selection away from the face."""
    client_json = config(endpoint=engine_endpoint)
    run = _run(gimp, "composite_errors.py", plugin, photo, client_json)
    r = run.result
    below = "select the face layer; the photo must be the layer right below it, and"
    expected = {
        "photo_selected": f"{below} 'photo' has no layer below it",
        "single_layer": f"{below} 'face' has no layer below it",
        "empty_face": "the face layer 'empty face' is empty (fully transparent)",
        "opaque_face": "the face layer 'pasted' has no transparency",
        "selection_elsewhere": "the selection does not touch the face",
    }
    for label, text in expected.items():
        outcome = r[label]
        assert not outcome["success"], (label, outcome)
        assert outcome["status"] == "execution-error", (label, outcome)
        assert outcome["error"].startswith("SketchFill: Composite face: "), outcome["error"]
        assert text in outcome["error"], (label, outcome["error"])
        assert outcome["unchanged"], label
    assert "Traceback" not in run.output


@pytest.mark.parametrize(
    "case",
    [{"mask": "selection", "seed": 7}, {"mask": "layer", "seed": 11, "photo_offset": [-16, 12]}],
    ids=["selection", "mask-layer"],
)
def test_restore_face(gimp, plugin, config, engine_endpoint, case):
    """Filters > SketchFill > Restore face, in the GUI (Xvfb), on the public-domain
    portrait with an ellipse over part of the face, as a selection or as a layer named
    "mask" (offset, smaller than the canvas; the photo itself moved off the canvas corner):
    one new layer "SF <seed> restore" directly above the photo; every layer as it was;
    the layer covers the mask's bounding box, holds the photo's own pixels outside the
    mask and new ones inside it, exactly what the engine's own restore pipeline makes with
    the installed restore model for the same seed (whatever its quality); one Ctrl+Z
    removes the layer and leaves the image clean."""
    from sketchfill.pipeline.runtime import load_model
    from sketchfill.tools.restore.infer import DEFAULT_RESTORE_MODEL, run_restore

    client_json = config(endpoint=engine_endpoint)
    env = {"SKETCHFILL_CASE": json.dumps(case)}
    run = _run(gimp, "restore_case.py", plugin, ASTRONAUT, client_json, env=env, gui=True)
    r = run.result
    restored = f"SF {case['seed']} restore"
    if case["mask"] == "layer":  # on top of the mask layer it was made with, to be seen
        new_info = check_one_new_layer(r, re.compile(restored))
        expected = [restored, "mask", "notes", "photo"]
    else:
        new_info = check_one_new_layer(r, re.compile(restored), above="photo")
        expected = ["notes", restored, "photo"]
    names = [x["name"] for x in r["after"]["layers"]]
    assert names == expected, names
    assert new_info["mode"] == "normal" and new_info["opacity"] == 100.0
    assert r["menu"] == ["<Image>/Filters/SketchFill/[7]"] and r["label"] == "_Restore face"
    assert r["arguments"][3:] == [
        "image-layer",
        "mask-source",
        "mask-layer",
        "seed",
        "feather",
        "strength",
        "endpoint",
    ]

    canvas = r["canvas"]
    photo_px = _pixels(run, "photo", canvas)
    mask = _pixels(run, "mask", canvas, 1)[..., 0]
    on = mask >= 128
    box = r["box"]
    assert box == _bbox(on), (box, _bbox(on))
    x, y, w, h = box
    assert np.abs(np.array(box) - [183, 90, 44, 70]).max() <= 3, box  # the ellipse's
    inside = on[y : y + h, x : x + w]
    new = _pixels(run, "new", canvas)
    # Outside the layer (the mask's bounding box): nothing, transparent.
    outside = np.ones(on.shape, bool)
    outside[y : y + h, x : x + w] = False
    assert not new[outside].any()
    new, under = new[y : y + h, x : x + w], photo_px[y : y + h, x : x + w]
    # In the box but outside the mask: the photo's own pixels, exactly.
    assert (~inside).sum() > 200 and np.array_equal(new[~inside], under[~inside])
    # Inside the mask: opaque, new pixels.
    assert (new[inside][:, 3] == 255).all()
    change = np.abs(new[inside][:, :3].astype(int) - under[inside][:, :3]).mean()
    assert change > 2, change
    # The engine was sent the whole (small) canvas: its own pipeline, same seed, same pixels.
    model = load_model(DEFAULT_RESTORE_MODEL, task="restore", warmup=0)
    from sketchfill.wire.roles import auto_feather

    feather = auto_feather(w, h, *canvas[2:])  # the default: scaled with the mask and the photo
    want = run_restore(model, photo_px, mask, case["seed"], feather)
    assert [want.x, want.y, *want.patch.shape[1::-1]] == box
    assert np.abs(new.astype(int) - want.patch).max() <= 1

    assert r["dirty"]
    assert r["undone"], "Ctrl+Z did not remove the layer"
    assert r["after_undo"] == r["before"]
    assert not r["dirty_after_undo"], "one Ctrl+Z should return to the clean image"


def test_restore_face_errors(gimp, plugin, config, engine_endpoint):
    """Restore face refuses, with one plain message that names the problem, and changes
    nothing: no mask at all, an empty selection, a selection under half everywhere (the
    engine finds the mask empty), and pictures without a face (the engine's no_face)."""
    client_json = config(endpoint=engine_endpoint)
    run = _run(gimp, "restore_errors.py", plugin, ASTRONAUT, client_json)
    r = run.result
    assert 0 < r["soft_max"] < 128, r["soft_max"]  # a selection, under half everywhere
    no_face = "SketchFill: no face found in the picture"
    expected = {
        "no_mask_at_all": "SketchFill: no mask: what hides the face is given by a selection or "
        "a layer named 'mask', and there is none",
        "empty_selection": "SketchFill: no mask: what hides the face is given by a selection,",
        "soft_selection": "SketchFill: the mask selects nothing",
        "no_face_grey": no_face,
        "no_face_gradient": no_face,
    }
    for label, text in expected.items():
        outcome = r[label]
        assert not outcome["success"], (label, outcome)
        assert outcome["status"] == "execution-error", (label, outcome)
        assert outcome["error"].startswith(text), (label, outcome["error"])
        assert outcome["unchanged"], label
    assert "what hides the face more firmly" in r["soft_selection"]["error"]
    assert "mark only what covers part of a face" in r["no_face_grey"]["error"]
    assert "Traceback" not in run.output


# -- a new user's first hour (issue #19) ---------------------------------------------------


def test_first_hour(gimp, plugin, photo, config, engine_endpoint):
    """Create SketchFill layers on a bare photo adds transparent canvas-sized 'sketch',
    'color' and 'mask' above it with 'mask' selected, and a second run adds nothing.
    Guides the user named "Lines" and "Colour" are found with the default settings; the
    result lands ON TOP of them (seen, not hidden under the guides) and the status sentence
    says so; Before/after hides it, then shows it again. A sketch layer named but absent,
    no colour layer at all, and Mask layer set to None are refused before anything is
    sent, each with a message that says how to go on."""
    client_json = config(endpoint=engine_endpoint)
    run = _run(gimp, "first_hour.py", plugin, photo, client_json)
    r = run.result

    create = r["create"]
    assert create["success"], create
    names = [x["name"] for x in r["after_create"]["layers"]]
    assert names == ["sketch", "color", "mask", "photo"], names
    for layer in r["after_create"]["layers"][:3]:
        assert layer["size"] == r["canvas"] and layer["offsets"] == [0, 0], layer
    assert r["create_alpha_max"] == {"sketch": 0, "color": 0, "mask": 0}  # transparent
    assert r["selected_after_create"] == ["mask"]
    assert create["message"] == (
        "SketchFill: Added the layers 'sketch', 'color' and 'mask' above 'photo'. Then paint "
        "the area to regenerate in white on 'mask'; draw the new shape with a thin dark brush "
        "on 'sketch'; dab the wanted colours on 'color'; then Generate."
    )
    again = r["create_again"]
    assert again["success"] and again["message"].startswith(
        "SketchFill: Kept the layers 'sketch', 'color' and 'mask', already there."
    ), again
    assert r["after_create_again"] == ["sketch", "color", "mask", "photo"]

    new = check_one_new_layer({**r, "call": r["generate"], "after": r["after_generate"]})
    assert new["name"] == "SF 77 fill"
    assert r["generate"]["message"] == added_message("SF 77 fill")
    names = [x["name"] for x in r["after_generate"]["layers"]]
    assert names == ["SF 77 fill", "Lines", "Colour", "photo"], names
    assert r["selected_after_generate"] == ["SF 77 fill"]  # GIMP's status bar names it
    assert r["toggle_off"]["message"] == "SketchFill: Before: 'SF 77 fill' hidden."
    assert r["visible_after_off"] is False
    assert r["toggle_on"]["message"] == "SketchFill: After: 'SF 77 fill' shown."
    assert r["visible_after_on"] is True

    expected = {
        "sketch_named_missing": "SketchFill: No sketch layer: this image has no layer named "
        "'Strokes 2'. Pick the sketch layer, or set the sketch layer to None to generate "
        "without one.",
        "color_missing": "SketchFill: No colour layer: this image has no layer named 'color', "
        "'colour', 'colors' or 'colours'. Pick the colour layer, or set the colour layer to "
        "None to generate without one.",
        "mask_none": "SketchFill: no mask: the area to regenerate is given by a selection or a "
        "mask layer (Mask layer is set to None: pick the mask layer), and there is none.",
    }
    for label, text in expected.items():
        outcome = r[label]
        assert not outcome["success"] and outcome["status"] == "execution-error", outcome
        assert outcome["error"].startswith(text), (label, outcome["error"])
        assert outcome["unchanged"], label
    assert "''" not in r["mask_none"]["error"]
    check_pixels(run, r["result"])  # last: the strokes and the colour were used


def test_menu_order(gimp, plugin, photo, config):
    """GIMP's GUI builds Filters > SketchFill in the order the plug-in asks for, not by
    label: Generate... first, Generate again second (GIMP's own menus log, GIMP_LOG=menus,
    records the order it adds the items in; a screenshot of the open menu showed the
    same order)."""
    script = "import sketchfill_hostkit as kit\nkit.write_result({'ok': True})\n"
    run = gimp(
        script, plugin_dirs=[plugin], gui=True, env={"GIMP_LOG": "menus"}, files=[photo]
    ).check()
    added = re.findall(
        r"adding menu item for '(plug-in-sketchfill-[a-z-]+)' \(@ /Filters/", run.output
    )
    order = list(dict.fromkeys(added))
    assert order == [
        "plug-in-sketchfill-generate",
        "plug-in-sketchfill-generate-again",
        "plug-in-sketchfill-create-layers",
        "plug-in-sketchfill-before-after",
        "plug-in-sketchfill-tone",
        "plug-in-sketchfill-composite",
        "plug-in-sketchfill-restore",
    ], added


def test_gimp_starts_the_engine_when_it_starts(gimp, plugin, tmp_path):
    """With auto-start on, GIMP starting is enough: the plug-in's init hook starts the
    engine in the background (here a stand-in command that records how it was called),
    so the first Generate finds it loaded. With start_with_host off it does not."""
    started = tmp_path / "started.txt"
    engine = tmp_path / "engine.sh"
    engine.write_text(f'#!/bin/sh\necho "$@" >> {started}\n')
    engine.chmod(0o755)
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    script = "import sketchfill_hostkit as kit\nkit.write_result({'ok': True})\n"
    for start_with_host in (True, False):
        client_json = tmp_path / f"client-{start_with_host}.json"
        fields = {"endpoint": endpoint, "engine_command": [str(engine)]}
        client_json.write_text(json.dumps({**fields, "start_with_host": start_with_host}))
        os.utime(plugin / "sketchfill.py")  # the init hook runs whether queried or not
        gimp(
            script,
            plugin_dirs=[plugin],
            env={"SKETCHFILL_CLIENT_CONFIG": str(client_json)},
            binds=[tmp_path],
        ).check()
        deadline = time.monotonic() + 10
        while start_with_host and not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.read_text().split() == ["serve", "--endpoint", endpoint]
