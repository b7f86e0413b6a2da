"""A small fake of Krita's API (and of the bits of PyQt5 the controller uses) for fast
tests of the Krita plug-in's decisions, plus the plug-in staged as users get it and
imported against the fakes. Shared by tests/test_krita_plugin_*.py; the real Krita 5.1 and
5.2 run the same code in tests/hosts/test_krita_plugin.py.

    @pytest.fixture(scope="module")
    def kp(tmp_path_factory):
        yield from staged_plugin(tmp_path_factory)

    kp.job.Controller(tmp_path), kp.document, kp.messages, kp.protocol, ...
"""

from __future__ import annotations

import importlib
import shutil
import sys
import types
from itertools import count

from sketchfill.install.plugins import stage_krita

W, H = 64, 48  # every fake document's canvas
PACKAGE = "sketchfill_krita_under_test"  # the engine is `sketchfill` too: stage it aside
MODULES = ("document", "job", "history", "messages", "ids", "extension")
_ids = count(1)


# -- PyQt5 and krita ---------------------------------------------------------------------


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


def fake_modules() -> dict[str, types.ModuleType]:
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


# -- documents ---------------------------------------------------------------------------


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


def cut(canvas, x, y, w, h, depth):
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
        return cut(self.bgra, x, y, w, h, 4)

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
    """The global selection: fully selected in the rectangle, or `mask` (canvas-sized,
    0-255) with the rectangle as its bounds."""

    def __init__(self, x, y, w, h, mask=None):
        self.box = (x, y, w, h)
        if mask is None:
            mask = bytearray(W * H)
            for row in range(y, y + h):
                mask[row * W + x : row * W + x + w] = b"\xff" * w
        self.mask = bytearray(mask)

    def x(self):
        return self.box[0]

    def y(self):
        return self.box[1]

    def width(self):
        return self.box[2]

    def height(self):
        return self.box[3]

    def pixelData(self, x, y, w, h):
        return cut(self.mask, x, y, w, h, 1)


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


def block_bgra(x0, y0, x1, y1, alpha=255, colour=(10, 20, 30)):
    """Transparent but for a block [x0, x1) x [y0, y1) of `colour` (B, G, R)."""
    out = bytearray(4 * W * H)
    for y in range(y0, y1):
        for x in range(x0, x1):
            out[4 * (y * W + x) : 4 * (y * W + x) + 4] = bytes((*colour, alpha))
    return bytes(out)


def layer_names(doc) -> list[str]:
    return [n.name() for n in doc.root.children]


def pixels(*nodes) -> dict[str, bytes]:
    return {n.name(): bytes(n.bgra) for n in nodes}


# -- the plug-in, staged as users get it -------------------------------------------------


def staged_plugin(tmp_path_factory):
    """Yields the staged plug-in's modules (MODULES, and its client's `protocol`), imported
    with Krita and PyQt5 faked; cleans up after. The package's own __init__ (which
    registers with a running Krita) is left out. For a module-scoped fixture."""
    staged = stage_krita(tmp_path_factory.mktemp("krita") / "pykrita")
    root = tmp_path_factory.mktemp("pkg")
    shutil.copytree(staged, root / PACKAGE)
    (root / PACKAGE / "__init__.py").write_text('"""The Krita plug-in, under test."""\n')
    fakes = {k: v for k, v in fake_modules().items() if k not in sys.modules}
    sys.modules.update(fakes)
    sys.path.insert(0, str(root))
    try:
        yield types.SimpleNamespace(
            **{n: importlib.import_module(f"{PACKAGE}.{n}") for n in MODULES},
            protocol=importlib.import_module(f"{PACKAGE}.sketchfill_client.protocol"),
        )
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.startswith(PACKAGE) or m in fakes]:
            del sys.modules[name]
