"""The Krita plug-in's Composite face against a small fake of Krita's API (and of the bits
of PyQt5 the controller uses): which layers it takes, what it refuses and how it says so,
which rectangle it reads and sends, where the result goes. These run in milliseconds;
tests/hosts/test_krita_plugin.py proves the same code in the real Krita 5.1 and 5.2."""

from __future__ import annotations

import json
import types

import pytest
from krita_fakes import Document, H, Node, Selection, W, block_bgra, cut, photo_bgra, staged_plugin

HELLO = {
    "context": {"margin": 0.5, "min_side": 64},
    "limits": {"max_pixels": 1_000_000},
    "tools": {
        "composite": {
            "model": {"name": "sketchfill-composite", "resolution": 32},
            "context": {"margin": 0.5, "min_side": 32},
        }
    },
}


def face_bgra(x0, y0, x1, y1, alpha=255):
    """Transparent but for a block [x0, x1) x [y0, y1) of colour (B 10, G 20, R 30)."""
    return block_bgra(x0, y0, x1, y1, alpha)


def scene(selection=None, face_extent=(0, 0, W, H)):
    """photo, face (a block at x 20-29, y 10-24 on a layer whose extent is the canvas),
    notes on top; the face layer is the active one."""
    photo = Node("photo", bgra=photo_bgra())
    face = Node("face", bgra=face_bgra(20, 10, 30, 25), extent=face_extent)
    notes = Node("notes", bgra=face_bgra(0, 0, 2, 2))
    doc = Document(photo, face, notes, active=face, selection=selection)
    return doc, photo, face, notes


# -- the plug-in, staged as users get it (krita_fakes.py) --------------------------------


@pytest.fixture(scope="module")
def kp(tmp_path_factory):
    yield from staged_plugin(tmp_path_factory)


def controller(kp, tmp_path):
    return kp.job.Controller(tmp_path)


# -- which layers --------------------------------------------------------------------------


def test_face_is_the_active_layer_and_the_photo_the_paint_layer_below(kp):
    """The face's extent covers the canvas, but the rectangle to composite is where its
    alpha is above 0; a global selection mask among the root's children does not count as
    a layer between them."""
    doc, photo, face, _ = scene()
    doc.root.children.insert(1, Node("Selection Mask", "selectionmask"))
    layers = kp.document.face_layers(doc, face)
    assert layers.face is face and layers.photo is photo
    assert layers.bbox == kp.protocol.Box(20, 10, 10, 15)


def test_faint_pixels_count_and_the_canvas_clips(kp):
    """alpha 1 is part of the face; a layer reaching past the canvas is cut to it."""
    photo = Node("photo", bgra=photo_bgra())
    bgra = bytearray(face_bgra(60, 40, 64, 48, alpha=1))
    face = Node("face", bgra=bytes(bgra), extent=(50, 30, 40, 40))
    doc = Document(photo, face)
    assert kp.document.face_layers(doc, face).bbox == kp.protocol.Box(60, 40, 4, 8)


def test_with_a_selection_the_selection_is_the_region(kp):
    doc, _, face, _ = scene(selection=Selection(25, 5, 20, 10))
    assert kp.document.face_layers(doc, face).bbox == kp.protocol.Box(25, 5, 20, 10)


PICK = "Select the face layer; the photo must be the paint layer right below it."


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "no_active_layer",
            "Composite face: select the face layer first; the photo must be the paint layer "
            "right below it.",
        ),
        (
            "a_mask",
            "Composite face: select the face layer first; the photo must be the paint layer "
            "right below it.",
        ),
        ("bottom", f"Composite face: there is no layer below 'face'. {PICK}"),
        (
            "group_below",
            "Composite face: the layer below 'face' is 'group', a group layer, not a paint "
            f"layer. {PICK}",
        ),
        (
            "empty",
            "Composite face: the layer 'face' is empty inside the canvas. Paste the face on it "
            "(transparent around the face) and move it into place.",
        ),
        (
            "off_canvas",
            "Composite face: the layer 'face' is empty inside the canvas. Paste the face on it "
            "(transparent around the face) and move it into place.",
        ),
        (
            "selection_elsewhere",
            "Composite face: the selection does not touch the face on 'face'. Select part of "
            "the face, or select nothing to composite all of it.",
        ),
    ],
)
def test_layers_that_do_not_fit_are_refused_plainly(kp, tmp_path, case, message):
    """Refused before any connection: the controller stays idle and says why."""
    doc, photo, face, _ = scene()
    if case == "no_active_layer":
        doc.active = None
    elif case == "a_mask":
        mask = Node("Transparency Mask", "transparencymask")
        face.addChildNode(mask, None)
        doc.active = mask
    elif case == "bottom":
        doc.root.children.remove(photo)
    elif case == "group_below":
        doc.root.children[0] = Node("group", "grouplayer")
        doc.root.children[0].parent = doc.root
    elif case == "empty":
        face.bgra = bytearray(4 * W * H)
    elif case == "off_canvas":
        face.extent = (W + 5, 0, 10, 10)
    elif case == "selection_elsewhere":
        doc.sel = Selection(40, 30, 10, 10)
    ctrl = controller(kp, tmp_path)
    seen = []
    ctrl.notice.connect(lambda text, error: seen.append((text, error)))
    ctrl.stateChanged.connect(lambda state: seen.append(state))
    assert ctrl.composite(doc) is False
    assert seen == [(message, True)] and ctrl.state == "idle" and not ctrl.busy
    assert [n.name() for n in doc.root.children][-1] == "notes"  # nothing added


# -- what is sent ----------------------------------------------------------------------------


def _request(kp, tmp_path, doc, hello=HELLO):
    ctrl = controller(kp, tmp_path)
    layers = kp.document.face_layers(doc, doc.activeNode())
    job = kp.job._Job(doc, layers.face, [None], "composite", face=layers)
    ctrl._hello = hello
    return ctrl._request(job, None)


def _header(request):
    frames = request.frames("r1")
    return json.loads(bytes(frames[0])), [bytes(f) for f in frames[1:]]


def test_request_sends_only_the_composite_region(kp, tmp_path):
    """The face's box (20, 10, 10x15) grown by the composite tool's context (margin 0.5,
    at least 32): a 32x32 square, photo and face read there only, as B,G,R,A; no mask."""
    doc, photo, face, _ = scene()
    request = _request(kp, tmp_path, doc)
    region = kp.protocol.Box(9, 1, 32, 32)
    assert request.region == region
    assert photo.reads == [(9, 1, 32, 32)] and face.reads[-1] == (9, 1, 32, 32)
    header, buffers = _header(request)
    assert header["op"] == "composite" and header["reply_layout"] == "BGRA"
    assert header["canvas"] == {"width": W, "height": H}
    assert header["region"] == {"x": 9, "y": 1, "width": 32, "height": 32}
    described = [(b["name"], b["layout"], b["width"], b["height"]) for b in header["buffers"]]
    assert described == [("image", "BGRA", 32, 32), ("face", "BGRA", 32, 32)]
    assert buffers[0] == cut(photo.bgra, 9, 1, 32, 32, 4)
    assert buffers[1] == cut(face.bgra, 9, 1, 32, 32, 4)


def test_request_with_a_selection_sends_it_as_the_mask(kp, tmp_path):
    sel = Selection(25, 5, 20, 10)
    doc, *_ = scene(selection=sel)
    request = _request(kp, tmp_path, doc)
    r = request.region
    header, buffers = _header(request)
    assert [b["name"] for b in header["buffers"]] == ["image", "face", "mask"]
    assert header["buffers"][2]["layout"] == "L"
    assert buffers[2] == cut(sel.mask, r.x, r.y, r.width, r.height, 1)
    assert r.x <= 25 and r.x + r.width >= 45 and r.y <= 5 and r.y + r.height >= 15


def test_an_engine_without_the_tool_or_its_model_or_room_says_what_to_do(kp, tmp_path):
    doc, *_ = scene()
    error = kp.document.DocumentError
    with pytest.raises(error) as exc:
        _request(kp, tmp_path, doc, {**HELLO, "tools": {}})
    assert str(exc.value) == kp.messages.NO_COMPOSITE_TOOL
    missing = {"composite": {"model": None, "model_error": {"message": "no model in /m"}}}
    with pytest.raises(error) as exc:
        _request(kp, tmp_path, doc, {**HELLO, "tools": missing})
    assert str(exc.value).startswith("no model in /m. Install a model")
    with pytest.raises(error) as exc:
        _request(kp, tmp_path, doc, {**HELLO, "limits": {"max_pixels": 1000}})
    assert str(exc.value).startswith(
        "Composite face: the face with the context around it is 32x32 pixels, over the "
        "engine's limit of 1000"
    )


# -- what comes back -------------------------------------------------------------------------


def test_the_result_is_one_layer_right_above_the_face(kp, tmp_path):
    """The reply becomes "SF composite" right above the face layer (above earlier results
    stacked on it, an older version's name too), in the history as "composite"; no layer
    is modified."""
    doc, photo, face, notes = scene()
    earlier = Node("SketchFill composite")
    doc.root.addChildNode(earlier, face)
    before = {n.name(): bytes(n.bgra) for n in doc.root.children}
    ctrl = controller(kp, tmp_path)
    layers = kp.document.face_layers(doc, face)
    job = kp.job._Job(doc, layers.face, [None], "composite", face=layers)
    ctrl._job = job
    data = bytes((1, 2, 3, 255)) * (4 * 3)
    result = types.SimpleNamespace(x=21, y=11, width=4, height=3, layout="BGRA", data=data, seed=0)
    ctrl._add(job, result)
    names = [n.name() for n in doc.root.children]
    assert names == ["photo", "face", "SketchFill composite", "SF composite", "notes"]
    new = doc.root.children[3]
    assert new is not earlier and cut(new.bgra, 21, 11, 4, 3, 4) == data
    assert {n.name(): bytes(n.bgra) for n in (photo, face, notes)} == {
        k: before[k] for k in ("photo", "face", "notes")
    }
    assert ctrl.last_notice == (
        "Added the layer 'SF composite'. Before/after (the panel's button, or the action "
        "SketchFill: Before/After) hides and shows it."
    )
    assert not ctrl.busy
    assert ctrl.history[0].label().startswith("composite ")
    assert ctrl.history[0].patch.name() == "SF composite"
    assert kp.document.is_result(new)


def test_progress_names_the_tool(kp):
    job = types.SimpleNamespace(seeds=[None], done=0, tool="composite")
    stage = kp.job.Controller._stage_text(job, {"stage": "apply"})
    assert stage == "Composite face: blending the face in"


def test_the_action_exists_and_runs_the_active_document(kp, monkeypatch):
    assert ("sketchfill_composite", "SketchFill: Composite Face") in kp.ids.ACTIONS
    assert set(kp.extension.COMMANDS) == {action for action, _ in kp.ids.ACTIONS}
    calls = []
    fake = types.SimpleNamespace(composite=lambda doc: calls.append(doc))
    monkeypatch.setattr(kp.extension, "controller", lambda: fake)
    monkeypatch.setattr(kp.extension, "_active_document", lambda: "the document")
    kp.extension.COMMANDS["sketchfill_composite"]()
    assert calls == ["the document"]
