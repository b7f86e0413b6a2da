"""The Krita plug-in's Restore face against the fake Krita API of krita_fakes.py: which
layers it reads (the image and the mask, as Generate does; never sketch or colour), what it
refuses before asking the engine and how it says so, which rectangle it sends (the restore
tool's wide context), how it shows the engine's refusals (empty mask, no face, no model),
and where the one result goes. These run in milliseconds; tests/hosts/test_krita_plugin.py
proves the same code in the real Krita 5.1 and 5.2 against a real engine."""

from __future__ import annotations

import json
import types

import pytest
from krita_fakes import (
    Document,
    H,
    Node,
    Selection,
    W,
    block_bgra,
    cut,
    layer_names,
    photo_bgra,
    pixels,
    staged_plugin,
)

# The restore tool's context is wide (the engine must find the whole face): here, as with
# the real {"margin": 2.0, "min_side": 2048}, the whole 64x48 canvas.
HELLO = {
    "context": {"margin": 0.5, "min_side": 8},
    "limits": {"max_pixels": 1_000_000},
    "tools": {
        "restore": {
            "model": {"name": "sketchfill-restore", "resolution": 512},
            "context": {"margin": 2.0, "min_side": 2048},
        }
    },
}
# A narrower context, to see that the rectangle sent is the restore tool's.
NARROW = {**HELLO, "tools": {"restore": {**HELLO["tools"]["restore"], "context": {"margin": 0.5}}}}
MASK_BOX = (20, 10, 10, 16)  # x, y, w, h: what the mask covers (the "hand")
EMPTY_MASK_MESSAGE = "the mask selects nothing: mark what hides the face"
NO_FACE_MESSAGE = (
    "no face found in the picture: the restore tool needs a face seen from the front or "
    "side, at least about a tenth of the picture's width"
)


@pytest.fixture(scope="module")
def kp(tmp_path_factory):
    yield from staged_plugin(tmp_path_factory)


TOGGLE = "the panel's button, or the action SketchFill: Before/After"


def scene(mask="selection", notes=True):
    """photo; with mask="layer" a layer 'mask' painted over MASK_BOX, with "selection" the
    same rectangle selected, with None neither; sketch and colour layers (restore must
    ignore them) and notes on top."""
    x, y, w, h = MASK_BOX
    photo = Node("photo", bgra=photo_bgra())
    layers = [photo]
    if mask == "layer":
        layers.append(Node("mask", bgra=block_bgra(x, y, x + w, y + h, colour=(255, 255, 255))))
    layers.append(Node("sketch", bgra=block_bgra(0, 0, W, H, colour=(0, 0, 0))))
    layers.append(Node("color", bgra=block_bgra(5, 5, 15, 15, colour=(0, 0, 255))))
    if notes:
        layers.append(Node("notes", bgra=block_bgra(0, 0, 2, 2)))
    selection = Selection(x, y, w, h) if mask == "selection" else None
    return Document(*layers, selection=selection), photo


def by_name(doc, name):
    return next(n for n in doc.root.children if n.name() == name)


class FakeClient:
    """The engine's side of one connection: records what was submitted; `reply(request)`
    gives the events poll() then returns."""

    endpoint = "tcp://127.0.0.1:5737"
    reply_timeout = 30.0

    def __init__(self, kp, reply):
        self.kp, self.reply = kp, reply
        self.submitted, self.inbox, self.closed = [], [], False

    def submit(self, request):
        self.submitted.append(request)
        self.inbox += self.reply(request)
        return "r1"

    def poll(self, timeout):
        events, self.inbox = self.inbox, []
        return events

    def cancel(self, request_id):
        pass

    def close(self):
        self.closed = True


def result_event(kp, request, colour=(1, 2, 3, 255)):
    """The engine's reply: a patch over the mask's bounding box."""
    x, y, w, h = MASK_BOX
    data = bytes(colour) * (w * h)
    result = kp.job.EditResult(x, y, w, h, "BGRA", data, request.seed, {})
    return [
        kp.job.Event("progress", "r1", {"stage": "generate", "fraction": 0.5}),
        kp.job.Event("result", "r1", {}, result),
    ]


def error_event(kp, code, message):
    return [kp.job.Event("error", "r1", {"code": code, "message": message})]


def run(kp, tmp_path, doc, reply, hello=HELLO, seed=7):
    """Controller.restore(doc) driven to the end through the real connect/submit/poll code
    (its timer ticked by hand), the connection faked; what it said and sent."""
    ctrl = kp.job.Controller(tmp_path)
    ctrl.options.seed = seed
    client = FakeClient(kp, reply)

    def start_connect():
        ctrl._connector = types.SimpleNamespace(
            status="", result=(client, hello), error=None, done=lambda: True
        )
        return True

    ctrl._start_connect = start_connect
    seen = {"notices": [], "states": [], "progress": []}
    ctrl.notice.connect(lambda text, error: seen["notices"].append((text, error)))
    ctrl.stateChanged.connect(seen["states"].append)
    ctrl.progressed.connect(lambda fraction, text: seen["progress"].append(text))
    seen["started"] = ctrl.restore(doc)
    for _ in range(10):
        if not ctrl.busy:
            break
        ctrl._tick()
    seen["busy"], seen["state"] = ctrl.busy, ctrl.state
    return ctrl, client, seen


def header(request):
    frames = request.frames("r1")
    return json.loads(bytes(frames[0])), [bytes(f) for f in frames[1:]]


# -- what is sent and what comes back -------------------------------------------------------


def test_restore_sends_image_and_selection_and_adds_one_layer_above_the_image(kp, tmp_path):
    """The selection is the mask; the region is the restore tool's context around it (the
    whole canvas here); image as B,G,R,A, mask as L, the panel's seed; sketch and colour
    are neither read nor sent. The result is ONE layer "SF 7 restore" right above the
    image layer; no layer changes."""
    doc, photo = scene("selection")
    before = pixels(*doc.root.children)
    ctrl, client, seen = run(kp, tmp_path, doc, lambda r: result_event(kp, r))
    (request,) = client.submitted
    head, buffers = header(request)
    assert head["op"] == "restore" and head["reply_layout"] == "BGRA"
    assert head["canvas"] == {"width": W, "height": H}
    assert head["region"] == {"x": 0, "y": 0, "width": W, "height": H}
    assert head["seed"] == 7 and head["feather"] == 1.0  # Auto: scaled with the mask
    described = [(b["name"], b["layout"], b["width"], b["height"]) for b in head["buffers"]]
    assert described == [("image", "BGRA", W, H), ("mask", "L", W, H)]
    assert buffers == [bytes(photo.bgra), bytes(doc.sel.mask)]
    assert by_name(doc, "sketch").reads == [] and by_name(doc, "color").reads == []

    assert seen["started"] and not seen["busy"] and seen["state"] == "idle"
    assert seen["states"] == ["connecting", "running", "idle"]
    assert "Restore face: generating" in seen["progress"]
    said = f"Added the layer 'SF 7 restore'. Before/after ({TOGGLE}) hides and shows it."
    assert seen["notices"] == [(said, False)]
    assert layer_names(doc) == ["photo", "SF 7 restore", "sketch", "color", "notes"]
    new = doc.root.children[1]
    x, y, w, h = MASK_BOX
    assert cut(new.bgra, x, y, w, h, 4) == bytes((1, 2, 3, 255)) * (w * h)
    assert kp.document.is_result(new)
    assert pixels(*[n for n in doc.root.children if n is not new]) == before
    entry = ctrl.history[0]
    assert entry.patch.name() == "SF 7 restore" and entry.patch.seed == 7
    assert entry.label().startswith("restore seed 7 ")
    assert client.closed


def test_restore_reads_the_mask_layer_as_generate_does(kp, tmp_path):
    """Without a selection the layer 'mask' is the mask, sent as B,G,R,A (the engine reads
    it by alpha); the result goes on top of the mask layer (to be seen), not under it next
    to an earlier restore (named by an older version) stacked on the photo."""
    doc, photo = scene("layer")
    earlier = Node("SketchFill restore")  # named by an older version
    doc.root.addChildNode(earlier, photo)
    _, client, seen = run(kp, tmp_path, doc, lambda r: result_event(kp, r))
    head, buffers = header(client.submitted[0])
    assert [(b["name"], b["layout"]) for b in head["buffers"]] == [
        ("image", "BGRA"),
        ("mask", "BGRA"),
    ]
    assert buffers[1] == bytes(by_name(doc, "mask").bgra)
    said = (
        f"Added the layer 'SF 7 restore' on top of the guides. Before/after ({TOGGLE}) "
        "hides and shows it."
    )
    assert seen["notices"] == [(said, False)]
    assert layer_names(doc) == [
        "photo",
        "SketchFill restore",
        "mask",
        "SF 7 restore",
        "sketch",
        "color",
        "notes",
    ]
    assert doc.root.children[1] is earlier


def test_the_region_is_the_restore_tools_context(kp, tmp_path):
    """The engine's restore context decides the rectangle (not the edit's): with margin
    0.5 around the 10x16 mask box, a 32x32 square cut to the canvas."""
    doc, photo = scene("selection")
    _, client, _ = run(kp, tmp_path, doc, lambda r: result_event(kp, r), hello=NARROW)
    request = client.submitted[0]
    assert request.region == kp.protocol.context_box(
        kp.protocol.Box(*MASK_BOX), W, H, margin=0.5, min_side=0
    )
    assert request.region == kp.protocol.Box(9, 2, 32, 32)
    assert photo.reads == [(9, 2, 32, 32)]


def test_roles_for_sketch_and_colour_play_no_part(kp, tmp_path):
    """A sketch role picked on the image layer would stop Generate ("both the image and
    the sketch"); Restore face ignores those roles."""
    doc, photo = scene("selection")
    ctrl = kp.job.Controller(tmp_path)
    layer = kp.document.Choice("layer", kp.document.node_id(photo))
    ctrl.options.roles = {**ctrl.options.roles, "image": layer, "sketch": layer}
    ctrl._start_connect = lambda: True
    assert ctrl.restore(doc) is True
    assert ctrl._job.tool == "restore" and ctrl._job.above is photo
    assert ctrl._job.bbox == kp.protocol.Box(*MASK_BOX)
    assert ctrl._job.roles.sketch is None and ctrl._job.roles.color is None


def test_random_seed_when_the_panel_has_none(kp, tmp_path):
    doc, _ = scene("selection")
    _, client, _ = run(kp, tmp_path, doc, lambda r: result_event(kp, r), seed=None)
    assert 0 <= client.submitted[0].seed < kp.job.SEED_LIMIT


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            "nothing_marked",
            "Restore face: nothing marked. Select what hides the face (a hand, glasses, a "
            "strand of hair, text), or paint over it on a layer named 'mask'.",
        ),
        (
            "empty_mask_layer",
            "The mask is empty inside the canvas: select the area to regenerate, or paint it "
            "on the mask layer.",
        ),
        ("selection_role_unselected", "The mask is set to the selection, but nothing is selected."),
        ("no_document", "Open an image first: SketchFill edits the active document."),
    ],
)
def test_refused_before_asking_the_engine(kp, tmp_path, case, message):
    doc, _ = scene("layer" if case == "empty_mask_layer" else None)
    if case == "empty_mask_layer":
        by_name(doc, "mask").bgra = bytearray(4 * W * H)
    ctrl = kp.job.Controller(tmp_path)
    if case == "selection_role_unselected":
        ctrl.options.roles = {**ctrl.options.roles, "mask": kp.document.SELECTION}
    connects = []
    ctrl._start_connect = lambda: connects.append(1) or True
    seen = []
    ctrl.notice.connect(lambda text, error: seen.append((text, error)))
    before = layer_names(doc)
    assert ctrl.restore(None if case == "no_document" else doc) is False
    assert seen == [(message, True)] and connects == []
    assert ctrl.state == "idle" and not ctrl.busy and layer_names(doc) == before


@pytest.mark.parametrize(
    ("code", "message", "shown"),
    [
        (
            "empty_mask",
            EMPTY_MASK_MESSAGE,
            f"{EMPTY_MASK_MESSAGE}. Select what hides the face (or paint over it on the mask "
            "layer, at least half opaque) and try again.",
        ),
        (
            "no_face",
            NO_FACE_MESSAGE,
            f"{NO_FACE_MESSAGE}. Restore face works on a photo of a face: check that the Image "
            "layer in the SketchFill panel is the photo, and mark only what covers the face.",
        ),
    ],
)
def test_engine_refusals_are_plain_messages_and_add_nothing(kp, tmp_path, code, message, shown):
    doc, _ = scene("selection")
    before = pixels(*doc.root.children)
    ctrl, client, seen = run(kp, tmp_path, doc, lambda r: error_event(kp, code, message))
    assert len(client.submitted) == 1
    assert seen["notices"] == [(shown, True)]
    assert not seen["busy"] and seen["state"] == "idle" and len(ctrl.history) == 0
    assert pixels(*doc.root.children) == before  # no layer added, none changed


def test_an_engine_without_the_tool_or_its_model_or_room_says_what_to_do(kp, tmp_path):
    """Checked from the hello, before any pixel is read or sent."""
    no_model = {
        "model": None,
        "model_error": {"message": "no restore model in /models"},
        "context": {"margin": 2.0, "min_side": 2048},
    }
    cases = {
        "old_engine": {**HELLO, "tools": {}},
        "no_model": {**HELLO, "tools": {"restore": no_model}},
        "too_large": {**HELLO, "limits": {"max_pixels": 1000}},
    }
    shown = {}
    for key, hello in cases.items():
        doc, photo = scene("selection")
        before = pixels(*doc.root.children)
        _, client, seen = run(kp, tmp_path, doc, lambda r: result_event(kp, r), hello=hello)
        assert client.submitted == [] and photo.reads == [], key
        assert not seen["busy"] and pixels(*doc.root.children) == before, key
        ((text, error),) = seen["notices"]
        assert error, key
        shown[key] = text
    assert shown["old_engine"] == kp.messages.NO_RESTORE_TOOL
    assert shown["old_engine"].startswith("The running SketchFill engine cannot restore faces")
    assert shown["no_model"] == (
        "no restore model in /models. Install a model with the SketchFill installer, then "
        "restart the engine."
    )
    assert shown["too_large"] == (
        f"Restore face: the area around the mask is {W}x{H} pixels, over the engine's limit "
        "of 1000: scale the image down, or start the engine with a larger --max-pixels."
    )


# -- the action ------------------------------------------------------------------------------


def test_the_action_exists_and_runs_the_active_document(kp, monkeypatch):
    assert ("sketchfill_restore", "SketchFill: Restore Face") in kp.ids.ACTIONS
    assert set(kp.extension.COMMANDS) == {action for action, _ in kp.ids.ACTIONS}
    calls = []
    fake = types.SimpleNamespace(restore=lambda doc: calls.append(doc))
    monkeypatch.setattr(kp.extension, "controller", lambda: fake)
    monkeypatch.setattr(kp.extension, "_active_document", lambda: "the document")
    kp.extension.COMMANDS["sketchfill_restore"]()
    assert calls == ["the document"]


def test_progress_names_the_tool_and_its_stages(kp):
    job = types.SimpleNamespace(seeds=[7], done=0, tool="restore")
    stages = ("face", "prior", "generate", "composite")
    texts = [kp.job.Controller._stage_text(job, {"stage": stage}) for stage in stages]
    assert texts == [
        "Restore face: finding the face",
        "Restore face: mapping the visible face",
        "Restore face: generating",
        "Restore face: blending the result in",
    ]
