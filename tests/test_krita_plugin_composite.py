"""The Krita plug-in's Composite face against a small fake of Krita's API (and of the bits
of PyQt5 the controller uses): which layers it takes, what it refuses and how it says so,
which rectangle it reads and sends, where the result goes. These run in milliseconds;
tests/hosts/test_krita_plugin.py proves the same code in the real Krita 5.1 and 5.2."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import types
from itertools import count

import pytest
from sketchfill.plugins import stage_krita

W, H = 64, 48
PACKAGE = "sketchfill_krita_under_test"  # the engine is `sketchfill` too: stage it aside
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
_ids = count(1)


# -- fakes -------------------------------------------------------------------------------


class _Bound:
    def __init__(self):
        self.slots = []

    def connect(self, slot):
        self.slots.append(slot)

    def emit(self, *args):
        for slot in list(self.slots):
            slot(*args)


class _Signal:
    """pyqtSignal: one list of slots per object."""

    def __init__(self, *types):
        self.name = ""

    def __set_name__(self, owner, name):
        self.name = f"_signal_{name}"

    def __get__(self, obj, owner):
        if obj is None:
            return self
        return obj.__dict__.setdefault(self.name, _Bound())


class _QObject:
    def __init__(self, parent=None):
        self._parent = parent


class _QTimer(_QObject):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.timeout = _Bound()
        self.active = False

    def setInterval(self, ms):
        pass

    def start(self):
        self.active = True

    def stop(self):
        self.active = False


def _fake_modules() -> dict[str, types.ModuleType]:
    krita = types.ModuleType("krita")
    krita.Krita = type("Krita", (), {"instance": staticmethod(lambda: None)})
    krita.Extension = type("Extension", (), {"__init__": lambda self, parent=None: None})
    qt = types.ModuleType("PyQt5")
    core = types.ModuleType("PyQt5.QtCore")
    core.QObject, core.QTimer, core.pyqtSignal = _QObject, _QTimer, _Signal
    gui = types.ModuleType("PyQt5.QtGui")
    gui.QIcon = type("QIcon", (), {})
    qt.QtCore, qt.QtGui = core, gui
    return {"krita": krita, "PyQt5": qt, "PyQt5.QtCore": core, "PyQt5.QtGui": gui}


class Rect:
    def __init__(self, x, y, w, h):
        self._r = (x, y, w, h)

    def x(self):
        return self._r[0]

    def y(self):
        return self._r[1]

    def width(self):
        return self._r[2]

    def height(self):
        return self._r[3]


class Uid:
    def __init__(self):
        self.value = f"{{{next(_ids)}}}"

    def toString(self):
        return self.value


def _cut(canvas, x, y, w, h, depth):
    """Rows of a canvas-sized buffer (`depth` bytes a pixel); zeros outside the canvas."""
    out = bytearray()
    for row in range(y, y + h):
        for col in range(x, x + w):
            inside = 0 <= row < H and 0 <= col < W
            i = depth * (row * W + col)
            out += canvas[i : i + depth] if inside else bytes(depth)
    return bytes(out)


class Node:
    """A layer (or mask) with canvas-sized B,G,R,A pixels. `extent` is what bounds() says:
    Krita's may be larger than the painted pixels."""

    def __init__(self, name, kind="paintlayer", bgra=None, extent=None):
        self._name, self._type = name, kind
        self.bgra = bytearray(bgra if bgra is not None else bytes(4 * W * H))
        self.extent = extent
        self.parent = None
        self.children = []
        self.uid = Uid()
        self.reads = []

    def name(self):
        return self._name

    def type(self):
        return self._type

    def uniqueId(self):
        return self.uid

    def parentNode(self):
        return self.parent

    def childNodes(self):
        return list(self.children)  # bottom to top, like Krita

    def bounds(self):
        if self.extent is not None:
            return Rect(*self.extent)
        painted = [i // 4 for i in range(3, len(self.bgra), 4) if self.bgra[i]]
        if not painted:
            return Rect(0, 0, 0, 0)
        xs, ys = [i % W for i in painted], [i // W for i in painted]
        return Rect(min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)

    def projectionPixelData(self, x, y, w, h):
        self.reads.append((x, y, w, h))
        return _cut(self.bgra, x, y, w, h, 4)

    pixelData = projectionPixelData

    def setPixelData(self, data, x, y, w, h):
        for row in range(h):
            i = 4 * ((y + row) * W + x)
            self.bgra[i : i + 4 * w] = data[4 * w * row : 4 * w * (row + 1)]

    def addChildNode(self, node, above):
        node.parent = self
        at = 0 if above is None else self.children.index(above) + 1
        self.children.insert(at, node)
        return True


class Selection:
    def __init__(self, x, y, w, h):
        self.box = (x, y, w, h)
        self.mask = bytearray(W * H)
        for row in range(y, y + h):
            self.mask[row * W + x : row * W + x + w] = b"\xff" * w

    def x(self):
        return self.box[0]

    def y(self):
        return self.box[1]

    def width(self):
        return self.box[2]

    def height(self):
        return self.box[3]

    def pixelData(self, x, y, w, h):
        return _cut(self.mask, x, y, w, h, 1)


class Document:
    def __init__(self, *layers, active=None, selection=None):
        self.root = Node("root", "grouplayer")
        for layer in layers:
            self.root.addChildNode(layer, self.root.children[-1] if self.root.children else None)
        self.active = active
        self.sel = selection

    def name(self):
        return "fake"

    def width(self):
        return W

    def height(self):
        return H

    def colorModel(self):
        return "RGBA"

    def colorDepth(self):
        return "U8"

    def colorProfile(self):
        return "sRGB"

    def rootNode(self):
        return self.root

    def activeNode(self):
        return self.active

    def selection(self):
        return self.sel

    def createNode(self, name, kind):
        return Node(name, kind)

    def waitForDone(self):
        pass


def photo_bgra():
    """Every pixel distinct enough to tell regions apart: B = x, G = y, R = 200, opaque."""
    return bytes(b for y in range(H) for x in range(W) for b in (x, y, 200, 255))


def face_bgra(x0, y0, x1, y1, alpha=255):
    """Transparent but for a block [x0, x1) x [y0, y1) of colour (B 10, G 20, R 30)."""
    out = bytearray(4 * W * H)
    for y in range(y0, y1):
        for x in range(x0, x1):
            out[4 * (y * W + x) : 4 * (y * W + x) + 4] = bytes((10, 20, 30, alpha))
    return bytes(out)


def scene(selection=None, face_extent=(0, 0, W, H)):
    """photo, face (a block at x 20-29, y 10-24 on a layer whose extent is the canvas),
    notes on top; the face layer is the active one."""
    photo = Node("photo", bgra=photo_bgra())
    face = Node("face", bgra=face_bgra(20, 10, 30, 25), extent=face_extent)
    notes = Node("notes", bgra=face_bgra(0, 0, 2, 2))
    doc = Document(photo, face, notes, active=face, selection=selection)
    return doc, photo, face, notes


# -- the plug-in, staged as users get it -------------------------------------------------


@pytest.fixture(scope="module")
def kp(tmp_path_factory):
    """The staged plug-in's modules, imported with Krita and PyQt5 faked. The package's own
    __init__ (which registers with a running Krita) is left out."""
    staged = stage_krita(tmp_path_factory.mktemp("krita") / "pykrita")
    root = tmp_path_factory.mktemp("pkg")
    shutil.copytree(staged, root / PACKAGE)
    (root / PACKAGE / "__init__.py").write_text('"""The Krita plug-in, under test."""\n')
    fakes = {k: v for k, v in _fake_modules().items() if k not in sys.modules}
    sys.modules.update(fakes)
    sys.path.insert(0, str(root))
    try:
        names = ("document", "job", "history", "messages", "ids", "extension")
        yield types.SimpleNamespace(
            **{n: importlib.import_module(f"{PACKAGE}.{n}") for n in names},
            protocol=importlib.import_module(f"{PACKAGE}.sketchfill_client.protocol"),
        )
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith(PACKAGE) or m in fakes]:
            del sys.modules[name]


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
    assert buffers[0] == _cut(photo.bgra, 9, 1, 32, 32, 4)
    assert buffers[1] == _cut(face.bgra, 9, 1, 32, 32, 4)


def test_request_with_a_selection_sends_it_as_the_mask(kp, tmp_path):
    sel = Selection(25, 5, 20, 10)
    doc, *_ = scene(selection=sel)
    request = _request(kp, tmp_path, doc)
    r = request.region
    header, buffers = _header(request)
    assert [b["name"] for b in header["buffers"]] == ["image", "face", "mask"]
    assert header["buffers"][2]["layout"] == "L"
    assert buffers[2] == _cut(sel.mask, r.x, r.y, r.width, r.height, 1)
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
    """The reply becomes "SketchFill composite" right above the face layer (above earlier
    results stacked on it), in the history as "composite"; no layer is modified."""
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
    assert names == ["photo", "face", "SketchFill composite", "SketchFill composite", "notes"]
    new = doc.root.children[3]
    assert new is not earlier and _cut(new.bgra, 21, 11, 4, 3, 4) == data
    assert {n.name(): bytes(n.bgra) for n in (photo, face, notes)} == {
        k: before[k] for k in ("photo", "face", "notes")
    }
    assert ctrl.last_notice == "Added the layer 'SketchFill composite'." and not ctrl.busy
    assert ctrl.history[0].label().startswith("composite ")
    assert ctrl.history[0].patch.name() == "SketchFill composite"
    assert kp.document.is_result(new)


def test_progress_names_the_tool(kp):
    job = types.SimpleNamespace(seeds=[None], done=0, tool="composite")
    stage = kp.job.Controller._stage_text(job, {"stage": "apply"})
    assert stage == "Composite face: apply"


def test_the_action_exists_and_runs_the_active_document(kp, monkeypatch):
    assert ("sketchfill_composite", "SketchFill: Composite Face") in kp.ids.ACTIONS
    assert set(kp.extension.COMMANDS) == {action for action, _ in kp.ids.ACTIONS}
    calls = []
    fake = types.SimpleNamespace(composite=lambda doc: calls.append(doc))
    monkeypatch.setattr(kp.extension, "controller", lambda: fake)
    monkeypatch.setattr(kp.extension, "_active_document", lambda: "the document")
    kp.extension.COMMANDS["sketchfill_composite"]()
    assert calls == ["the document"]
