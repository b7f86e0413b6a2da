"""Scenarios run inside Krita (kritarunner, or the GUI driver) against the staged SketchFill
plug-in, through the same Controller the Generate button and the actions use.

Each scenario takes kritarunner's argument list and returns a JSON-able dict; raw pixels go
to files in the run folder (SKETCHFILL_WORKDIR). test_krita_plugin.py makes the assertions.
"""

import hashlib
import os
import time
from pathlib import Path

from krita import Krita, Selection
from PyQt5.QtCore import QEventLoop, QTimer
from PyQt5.QtGui import QImage

DEMO = Path(os.environ.get("SKETCHFILL_REPO", ".")) / "engine" / "assets" / "demo"
FACE_SEED = 1234


def workdir():
    return Path(os.environ["SKETCHFILL_WORKDIR"])


def use_config(path):
    """Point the plug-in at a client.json (the env var is read at every connect)."""
    os.environ["SKETCHFILL_CLIENT_CONFIG"] = str(path)


# -- documents ---------------------------------------------------------------------------


def png_bgra(path):
    """A PNG as 8-bit B,G,R,A bytes (QImage's ARGB32 is B,G,R,A in memory on x86)."""
    img = QImage(str(path))
    if img.isNull():
        raise RuntimeError(f"Qt cannot read {path} (exists: {Path(path).exists()})")
    img = img.convertToFormat(QImage.Format_ARGB32)
    assert img.bytesPerLine() == 4 * img.width(), "padded rows"
    return img.width(), img.height(), bytes(img.constBits().asstring(img.sizeInBytes()))


def png_gray(path):
    img = QImage(str(path)).convertToFormat(QImage.Format_Grayscale8)
    w, h, stride = img.width(), img.height(), img.bytesPerLine()
    raw = bytes(img.constBits().asstring(img.sizeInBytes()))
    return b"".join(raw[y * stride : y * stride + w] for y in range(h))


def new_document(width, height, name="sketchfill-test"):
    doc = Krita.instance().createDocument(width, height, name, "RGBA", "U8", "", 300.0)
    root = doc.rootNode()
    for node in root.childNodes():  # start from no layers at all
        node.remove()
    return doc


def add_layer(doc, name, bgra):
    node = doc.createNode(name, "paintlayer")
    node.setPixelData(bgra, 0, 0, doc.width(), doc.height())
    root = doc.rootNode()
    children = root.childNodes()
    root.addChildNode(node, children[-1] if children else None)
    doc.waitForDone()
    return node


def face_document(selection=True):
    """The demo portrait as layers face, sketch, color, and its mask as the selection."""
    w, h, face = png_bgra(DEMO / "astronaut.png")
    doc = new_document(w, h, "face")
    add_layer(doc, "face", face)
    add_layer(doc, "sketch", png_bgra(DEMO / "sketch.png")[2])
    add_layer(doc, "color", png_bgra(DEMO / "color.png")[2])
    if selection:
        sel = Selection()
        sel.setPixelData(png_gray(DEMO / "mask.png"), 0, 0, w, h)
        doc.setSelection(sel)
    return doc


def top_layers(doc):
    """The root's layers, bottom to top (not the global selection's "Selection Mask")."""
    return [n for n in doc.rootNode().childNodes() if not n.type().endswith("mask")]


def names(doc):
    return [n.name() for n in top_layers(doc)]


def snapshot(doc):
    """Every layer (bottom to top): name, type, sha256 of its pixels over the canvas."""
    w, h = doc.width(), doc.height()
    out = []
    for node in top_layers(doc):
        data = bytes(node.pixelData(0, 0, w, h))
        out.append([node.name(), node.type(), hashlib.sha256(data).hexdigest()])
    sel = doc.selection()
    if sel is not None:
        data = bytes(sel.pixelData(0, 0, w, h))
        out.append(["(selection)", "selection", hashlib.sha256(data).hexdigest()])
    return out


def dump(name, data):
    (workdir() / name).write_bytes(data)


def bounds(node):
    r = node.bounds()
    return [r.x(), r.y(), r.width(), r.height()]


def rgba_at(doc, name, points):
    """Krita's own reading (a QImage of the projection) of pixels of one layer, shown
    alone in a copy of the document: independent of any assumption about byte order."""
    alone = doc.clone()
    for node in top_layers(alone):
        if node.name() != name:
            node.remove()
    alone.refreshProjection()
    alone.waitForDone()
    image = alone.projection(0, 0, alone.width(), alone.height())
    colors = [image.pixelColor(x, y) for x, y in points]
    alone.close()
    return [[c.red(), c.green(), c.blue(), c.alpha()] for c in colors]


# -- driving the controller like the event loop does ---------------------------------------


def new_controller():
    """A fresh Controller of the staged plug-in (what job.controller() makes for Krita)."""
    from sketchfill import job

    return job.Controller(Path(job.__file__).parent)


def run_until_finished(ctrl, start, timeout=60.0, on_progress=None):
    """Call start() (which begins an edit) and run a Qt event loop until the controller
    finishes, recording what it told the user and how smoothly the loop kept turning."""
    record = {"progress": [], "notices": [], "states": [], "ticks": 0, "max_gap_ms": 0.0}
    loop = QEventLoop()
    last = [time.monotonic()]

    def tick():
        now = time.monotonic()
        record["max_gap_ms"] = max(record["max_gap_ms"], (now - last[0]) * 1000)
        last[0] = now
        record["ticks"] += 1

    def progressed(fraction, text):
        record["progress"].append([round(fraction, 3), text])
        if on_progress is not None:
            on_progress(fraction, text)

    def finished(outcome):
        record["outcome"] = outcome
        loop.quit()

    # An independent timer: if anything blocked the GUI thread, its ticks would stall.
    beat = QTimer()
    beat.setInterval(20)
    beat.timeout.connect(tick)
    connections = [
        (ctrl.progressed, progressed),
        (ctrl.notice, lambda text, error: record["notices"].append([text, error])),
        (ctrl.stateChanged, lambda state: record["states"].append(state)),
        (ctrl.finished, finished),
    ]
    for signal, slot in connections:
        signal.connect(slot)
    t0 = time.monotonic()
    beat.start()
    try:
        started = start()
        record["started"] = started
        if ctrl.busy:
            QTimer.singleShot(int(timeout * 1000), loop.quit)
            loop.exec_()
    finally:
        beat.stop()
        for signal, slot in connections:
            signal.disconnect(slot)
    record["seconds"] = round(time.monotonic() - t0, 3)
    record["state_after"] = ctrl.state
    record["busy_after"] = ctrl.busy
    record["outcome"] = record.get("outcome", "timeout" if ctrl.busy else None)
    record["last_notice"] = ctrl.last_notice
    return record


def _new_layers(before, doc):
    known = {n for n, _, _ in before}
    return [n for n in top_layers(doc) if n.name() not in known]


# -- scenarios -----------------------------------------------------------------------------


def face_edit(args):
    """args: [model, depth]: the document is converted to that colour space before the
    edit (RGBA keeps its sRGB curve, so 8 -> 16 bit -> 8 is exact)."""
    model, depth = args
    doc = face_document()
    w, h = doc.width(), doc.height()
    for node in top_layers(doc):  # the inputs, for the reference edit in pytest
        dump(f"{node.name()}.bgra", bytes(node.pixelData(0, 0, w, h)))
    dump("selection.l", bytes(doc.selection().pixelData(0, 0, w, h)))
    profile8 = doc.colorProfile()
    converted = (model, depth) != ("RGBA", "U8")
    if converted:
        doc.setColorSpace(model, depth, profile8 if model == "RGBA" else "")
        doc.waitForDone()
    before = snapshot(doc)
    ctrl = new_controller()
    ctrl.options.seed = FACE_SEED
    record = run_until_finished(ctrl, lambda: ctrl.generate(doc))
    after = snapshot(doc)
    new = _new_layers(before, doc)
    info = {
        "depth": [doc.colorModel(), doc.colorDepth()],
        "before": before,
        "after": after,
        "layers_after": names(doc),
        "new": [[n.name(), n.type(), n.colorModel(), n.colorDepth(), bounds(n)] for n in new],
        "record": record,
        "history": [e.label() for e in ctrl.history.entries],
    }
    if len(new) == 1:
        x, y, bw, bh = bounds(new[0])
        read = doc
        if converted:  # read the result back through an 8-bit RGBA copy
            read = doc.clone()
            read.setColorSpace("RGBA", "U8", profile8)
            read.waitForDone()
        node = read.nodeByName(new[0].name())
        dump("result.bgra", bytes(node.pixelData(x, y, bw, bh)))
        patch = ctrl.history[0].patch
        info["history_patch"] = [patch.x, patch.y, patch.width, patch.height, patch.seed]
        dump("history.bgra", patch.bgra)
        if read is not doc:
            read.close()
    doc.close()
    return info


def auto_tone(args):
    """args: ["selection"] or []: Auto tone of the demo portrait's face layer, with the
    demo mask as the selection or without a selection."""
    doc = face_document(selection=bool(args))
    w, h = doc.width(), doc.height()
    dump("face.bgra", bytes(doc.nodeByName("face").pixelData(0, 0, w, h)))
    if args:
        dump("selection.l", bytes(doc.selection().pixelData(0, 0, w, h)))
    before = snapshot(doc)
    ctrl = new_controller()
    record = run_until_finished(ctrl, lambda: ctrl.tone(doc))
    after = snapshot(doc)
    new = _new_layers(before, doc)
    info = {
        "before": before,
        "after": after,
        "layers_after": names(doc),
        "new": [[n.name(), bounds(n)] for n in new],
        "record": record,
        "history": [e.label().split()[0] for e in ctrl.history.entries],
    }
    if len(new) == 1:
        x, y, bw, bh = bounds(new[0])
        dump("result.bgra", bytes(new[0].pixelData(x, y, bw, bh)))
    doc.close()
    return info


# The face the composite scenarios paste: an ellipse around the portrait's face, cut from
# the photo itself and recoloured (redder, less blue), with a soft edge.
FACE_CENTRE, FACE_RADII, FACE_EDGE = (225, 128), (46, 58), 0.15
SELECTED = (170, 125, 110, 80)  # x, y, width, height: the lower half of the face and beyond


def _face_layer_bgra(photo, width, height):
    """Canvas-sized B,G,R,A: the recoloured ellipse on transparency."""
    (cx, cy), (rx, ry) = FACE_CENTRE, FACE_RADII
    out = bytearray(len(photo))
    for y in range(cy - ry, cy + ry + 1):
        for x in range(cx - rx, cx + rx + 1):
            d = (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2) ** 0.5
            alpha = round(255 * min(1.0, (1.0 - d) / FACE_EDGE))
            if alpha <= 0:
                continue
            i = 4 * (y * width + x)
            b, g, r = photo[i : i + 3]
            out[i : i + 4] = bytes((max(b - 40, 0), min(g + 10, 255), min(r + 50, 255), alpha))
    return bytes(out)


def composite_document(selection=False, notes=True):
    """Layers photo (the demo portrait), face (a recoloured part of it, pasted in place on
    a transparent layer) and notes (a small dab on top, so "right above the face" means
    something); with selection=True a rectangle over the lower half of the face."""
    w, h, photo = png_bgra(DEMO / "astronaut.png")
    doc = new_document(w, h, "composite")
    add_layer(doc, "photo", photo)
    add_layer(doc, "face", _face_layer_bgra(photo, w, h))
    if notes:
        dab = bytearray(4 * w * h)
        for y in range(20, 30):
            dab[4 * (y * w + 20) : 4 * (y * w + 30)] = bytes((0, 0, 255, 255)) * 10
        add_layer(doc, "notes", bytes(dab))
    if selection:
        x, y, sw, sh = SELECTED
        mask = bytearray(w * h)
        for row in range(y, y + sh):
            mask[row * w + x : row * w + x + sw] = b"\xff" * sw
        sel = Selection()
        sel.setPixelData(bytes(mask), 0, 0, w, h)
        doc.setSelection(sel)
    return doc


def composite_face(args):
    """args: ["selection"] or []: Composite face with the face layer given as the active
    one (kritarunner has no view, so no active layer), with or without a selection. Then
    the cases refused before any engine is asked: no layer below the face, a group below
    it, an empty face layer, no active layer, a selection away from the face."""
    doc = composite_document(selection=bool(args))
    w, h = doc.width(), doc.height()
    dump("photo.bgra", bytes(doc.nodeByName("photo").pixelData(0, 0, w, h)))
    dump("face.bgra", bytes(doc.nodeByName("face").pixelData(0, 0, w, h)))
    if args:
        dump("selection.l", bytes(doc.selection().pixelData(0, 0, w, h)))
    before = snapshot(doc)
    ctrl = new_controller()
    face = doc.nodeByName("face")
    record = run_until_finished(ctrl, lambda: ctrl.composite(doc, face))
    after = snapshot(doc)
    new = _new_layers(before, doc)
    info = {
        "before": before,
        "after": after,
        "layers_after": names(doc),
        "new": [[n.name(), n.type(), bounds(n)] for n in new],
        "record": record,
        "history": [e.label().split()[0] for e in ctrl.history.entries],
    }
    if len(new) == 1:
        x, y, bw, bh = bounds(new[0])
        dump("result.bgra", bytes(new[0].pixelData(x, y, bw, bh)))
    doc.close()
    if not args:
        info["refused"] = _composite_refusals(ctrl)
    return info


def _composite_refusals(ctrl):
    """What Composite face says (and leaves) when the layers are not right for it."""
    out = {}

    def attempt(key, doc, face):
        before = snapshot(doc)
        rec = run_until_finished(ctrl, lambda: ctrl.composite(doc, face))
        out[key] = {
            "started": rec["started"],
            "outcome": rec["outcome"],
            "notice": rec["last_notice"],
            "states": rec["states"],
            "unchanged": snapshot(doc) == before,
        }

    w, h, photo = png_bgra(DEMO / "astronaut.png")
    face = _face_layer_bgra(photo, w, h)
    doc = new_document(w, h, "refusals")
    alone = add_layer(doc, "face", face)
    attempt("nothing_below", doc, alone)
    attempt("no_active_layer", doc, None)  # kritarunner: doc.activeNode() is None
    doc.close()
    doc = new_document(w, h, "refusals")
    doc.rootNode().addChildNode(doc.createNode("group", "grouplayer"), None)
    attempt("group_below", doc, add_layer(doc, "face", face))
    doc.close()
    doc = composite_document()
    empty = doc.createNode("empty", "paintlayer")
    doc.rootNode().addChildNode(empty, doc.nodeByName("face"))
    doc.waitForDone()
    attempt("empty_face", doc, empty)
    sel = Selection()
    sel.select(400, 400, 50, 50, 255)
    doc.setSelection(sel)
    attempt("selection_elsewhere", doc, doc.nodeByName("face"))
    doc.close()
    return out


# What Restore face is told hides the face: an ellipse over the portrait's left eye and
# cheek (the face spans about x 180-272, y 69-177), as a hand or a strand of hair would.
RESTORE_CENTRE, RESTORE_RADII = (205, 125), (22, 35)
RESTORE_SEED = 99


def _ellipse_mask(width, height):
    """Canvas-sized 0-255 bytes: 255 inside RESTORE_CENTRE/RESTORE_RADII, else 0."""
    (cx, cy), (rx, ry) = RESTORE_CENTRE, RESTORE_RADII
    out = bytearray(width * height)
    for y in range(cy - ry, cy + ry + 1):
        for x in range(cx - rx, cx + rx + 1):
            if ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0:
                out[y * width + x] = 255
    return bytes(out)


def _mask_layer_bgra(mask, alpha=255):
    """White where mask is set, on transparency (alpha `alpha` there)."""
    return b"".join(bytes((255, 255, 255, alpha)) if m else bytes(4) for m in mask)


def _select(doc, mask):
    sel = Selection()
    sel.setPixelData(mask, 0, 0, doc.width(), doc.height())
    doc.setSelection(sel)


def restore_document(mask_as="selection", picture=None, alpha=255):
    """The demo portrait as layer 'photo' (or `picture`: canvas-sized B,G,R,A), and what
    hides the face as the selection (with a layer 'notes' on top) or as a layer 'mask'
    painted over it (at `alpha`); mask_as=None marks nothing."""
    w, h, photo = png_bgra(DEMO / "astronaut.png")
    doc = new_document(w, h, "restore")
    add_layer(doc, "photo", photo if picture is None else picture)
    mask = _ellipse_mask(w, h)
    if mask_as == "layer":
        add_layer(doc, "mask", _mask_layer_bgra(mask, alpha))
    else:
        dab = bytearray(4 * w * h)
        for y in range(20, 30):
            dab[4 * (y * w + 20) : 4 * (y * w + 30)] = bytes((0, 0, 255, 255)) * 10
        add_layer(doc, "notes", bytes(dab))
    if mask_as == "selection":
        _select(doc, mask)
    return doc


def restore_face(args):
    """args: ["selection"] or ["layer"]: Restore face on the demo portrait, what hides the
    face given as the selection or as the layer 'mask', with a fixed seed."""
    (mask_as,) = args
    doc = restore_document(mask_as)
    w, h = doc.width(), doc.height()
    dump("photo.bgra", bytes(doc.nodeByName("photo").pixelData(0, 0, w, h)))
    if mask_as == "selection":
        dump("mask.l", bytes(doc.selection().pixelData(0, 0, w, h)))
    else:
        dump("mask.bgra", bytes(doc.nodeByName("mask").pixelData(0, 0, w, h)))
    before = snapshot(doc)
    ctrl = new_controller()
    ctrl.options.seed = RESTORE_SEED
    record = run_until_finished(ctrl, lambda: ctrl.restore(doc))
    after = snapshot(doc)
    new = _new_layers(before, doc)
    info = {
        "before": before,
        "after": after,
        "layers_after": names(doc),
        "new": [[n.name(), n.type(), bounds(n)] for n in new],
        "record": record,
        "history": [e.label().split()[:3] for e in ctrl.history.entries],
    }
    if len(new) == 1:
        x, y, bw, bh = bounds(new[0])
        dump("result.bgra", bytes(new[0].pixelData(x, y, bw, bh)))
    doc.close()
    return info


def _gradient(width, height):
    """A picture with no face: a smooth colour gradient."""
    return b"".join(bytes((x // 2, y // 2, 128, 255)) for y in range(height) for x in range(width))


def restore_errors(args):
    """What Restore face says (and leaves) when it cannot restore: nothing marked, an
    empty mask layer (both refused before any engine is asked), a mask too faint for the
    engine (empty_mask), a picture with no face (no_face); args: [client.json of an engine
    whose hello has no restore model]."""
    out = {}

    def attempt(key, doc):
        before, layers = snapshot(doc), names(doc)
        ctrl = new_controller()
        rec = run_until_finished(ctrl, lambda: ctrl.restore(doc))
        out[key] = {
            "started": rec["started"],
            "outcome": rec["outcome"],
            "notice": rec["last_notice"],
            "states": rec["states"],
            "unchanged": snapshot(doc) == before and names(doc) == layers,
            "history": len(ctrl.history),
        }
        doc.close()

    attempt("nothing_marked", restore_document(None))
    empty = restore_document(None)  # a layer 'mask' with nothing painted on it
    empty.rootNode().addChildNode(empty.createNode("mask", "paintlayer"), None)
    empty.waitForDone()
    attempt("empty_mask_layer", empty)
    attempt("faint_mask", restore_document("layer", alpha=60))
    attempt("no_face", restore_document(picture=_gradient(512, 512)))
    (no_model,) = args
    use_config(no_model)
    attempt("no_model", restore_document())
    return out


def _pattern_document():
    """64x48, B,G,R,A built by hand so every channel is told apart:
    image: R = 40 + 3x, G = 100 + 2y, B = 220 - 2x (never equal to each other);
    mask: OPAQUE, black with an orange (R 255, G 110, B 0) block whose top-left 4x4 corner
    is cut out. The engine reads an opaque mask by brightness (luma 0.299 R + 0.587 G +
    0.114 B): orange is 141 (regenerate), the same bytes taken as R,G,B,A would be
    B 255, G 110, R 0 = 94 (keep) -- a wrong byte order leaves an empty mask;
    color: red (R 220, G 40, B 10) over the block, transparent elsewhere."""
    w, h = 64, 48
    bx, by, bw, bh = 20, 10, 16, 12
    image, mask, color = bytearray(), bytearray(), bytearray()
    for y in range(h):
        for x in range(w):
            image += bytes((220 - 2 * x, 100 + 2 * y, 40 + 3 * x, 255))
            inside = bx <= x < bx + bw and by <= y < by + bh
            corner = x < bx + 4 and y < by + 4
            mask += bytes((0, 110, 255, 255)) if inside and not corner else bytes((0, 0, 0, 255))
            dab = bx - 4 <= x < bx + bw + 4 and by - 4 <= y < by + bh + 4
            color += bytes((10, 40, 220, 255)) if dab else bytes(4)
    doc = new_document(w, h, "channels")
    add_layer(doc, "image", bytes(image))
    add_layer(doc, "mask", bytes(mask))
    add_layer(doc, "color", bytes(color))
    return doc


def channel_order(args):
    from sketchfill.document import NONE

    doc = _pattern_document()
    before = snapshot(doc)
    ctrl = new_controller()
    ctrl.options.roles["sketch"] = NONE  # this document has no sketch: go on without one
    record = run_until_finished(ctrl, lambda: ctrl.generate(doc))
    new = _new_layers(before, doc)
    info = {"record": record, "before": before, "after": snapshot(doc)}
    info["new"] = [[n.name(), bounds(n)] for n in new]
    info["layers_after"] = names(doc)
    if len(new) == 1:
        x, y, w, h = bounds(new[0])
        dump("result.bgra", bytes(new[0].pixelData(x, y, w, h)))
        image = doc.nodeByName("image")
        dump("image.bgra", bytes(image.pixelData(x, y, w, h)))
        inside, corner = rgba_at(doc, new[0].name(), [(30, 18), (21, 11)])
        info["qcolor_inside"], info["qcolor_corner"] = inside, corner
    doc.close()
    return info


def cancel_then_generate(args):
    """Against the slow engine (~2 s an edit): 2 variations cancelled mid-way through the
    first (no layer, idle again); then, on the same controller, 2 variations cancelled
    mid-way through the second: the first result stays."""
    doc = face_document()
    before = snapshot(doc)
    ctrl = new_controller()
    ctrl.options.variations = 2
    cancelled_at = []

    def cancel_when(marker):
        def on_progress(fraction, text):
            if marker in text and not cancelled_at:
                cancelled_at.append(time.monotonic())
                ctrl.cancel()

        return on_progress

    first = run_until_finished(
        ctrl, lambda: ctrl.generate(doc), on_progress=cancel_when("1/2: generating")
    )
    first["cancel_to_idle_s"] = round(time.monotonic() - cancelled_at[0], 3)
    info = {
        "cancel": first,
        "layers_after_cancel": names(doc),
        "unchanged_after_cancel": snapshot(doc) == before,
        "history_after_cancel": len(ctrl.history),
    }
    cancelled_at.clear()
    info["second"] = run_until_finished(
        ctrl, lambda: ctrl.generate(doc), on_progress=cancel_when("2/2: generating")
    )
    info["new_after_second"] = [n.name() for n in _new_layers(before, doc)]
    info["history_after_second"] = [e.patch.seed for e in ctrl.history.entries]
    doc.close()
    return info


def plain_errors(args):
    """args: client.json paths: [engine down + auto-start off, auto-start of a command that
    exits at once]. Also a document with nothing to regenerate."""
    out = {}
    doc = face_document()
    before = snapshot(doc)
    for name, config in zip(("down", "autostart_fails"), args):
        use_config(config)
        ctrl = new_controller()
        out[name] = run_until_finished(ctrl, lambda c=ctrl: c.generate(doc))
    out["unchanged"] = snapshot(doc) == before
    out["layers_after"] = names(doc)
    doc.close()
    bare = face_document(selection=False)
    ctrl = new_controller()
    out["no_mask"] = run_until_finished(ctrl, lambda: ctrl.generate(bare))
    out["no_mask_layers"] = names(bare)
    out["no_document"] = run_until_finished(ctrl, lambda: ctrl.generate(None))
    bare.close()
    return out


def edit_with_configs(args):
    """One face edit per client.json in args, each with a fresh controller."""
    doc = face_document()
    before = snapshot(doc)
    out = {"runs": []}
    for config in args:
        use_config(config)
        ctrl = new_controller()
        out["runs"].append(run_until_finished(ctrl, lambda c=ctrl: c.generate(doc)))
    out["unchanged"] = snapshot(doc) == before
    out["layers_after"] = names(doc)
    doc.close()
    return out


def variations_and_history(args):
    """Three variations from a fixed seed, two from random seeds, one more variation (the
    action's call), then the newest result put back."""
    doc = face_document()
    ctrl = new_controller()
    out = {}
    ctrl.options.seed, ctrl.options.variations = 500, 3
    out["fixed"] = run_until_finished(ctrl, lambda: ctrl.generate(doc))
    out["after_fixed"] = names(doc)
    ctrl.options.seed, ctrl.options.variations = None, 2
    out["random"] = run_until_finished(ctrl, lambda: ctrl.generate(doc))
    ctrl.options.seed, ctrl.options.variations = 500, 1
    out["one_more"] = run_until_finished(
        ctrl, lambda: ctrl.generate(doc, count=1, random_seed=True)
    )
    out["layers"] = names(doc)
    out["history"] = [e.patch.seed for e in ctrl.history.entries]
    newest = ctrl.history[0].patch
    layer = ctrl.put_back(doc)
    out["put_back"] = layer.name() if layer else None
    out["layers_after_put_back"] = names(doc)
    if layer is not None:
        twins = [n for n in top_layers(doc) if n.name() == layer.name()]
        box = (newest.x, newest.y, newest.width, newest.height)
        out["put_back_twins"] = len(twins)
        out["put_back_equal"] = len({bytes(n.pixelData(*box)) for n in twins}) == 1
        out["put_back_bounds"] = bounds(layer)
    doc.close()
    return out


def docker_smoke(args):
    """The docker panel built offscreen: its combos list the layers; clicking Generate runs
    an edit to the end."""
    from sketchfill.docker import SketchFillDocker

    doc = face_document()
    docker = SketchFillDocker()
    docker.document_source = lambda: doc
    docker.canvasChanged(None)
    docker.show()
    ctrl = docker.controller
    out = {
        "combos": {
            role: [combo.itemText(i) for i in range(combo.count())]
            for role, combo in docker.roles.items()
        },
        "title": docker.windowTitle(),
    }
    docker.fixed_seed.setChecked(True)
    docker.seed.setValue(42)
    sketch = docker.roles["sketch"]
    sketch.setCurrentIndex(sketch.findText("None"))
    out["options"] = {
        "seed": ctrl.options.seed,
        "variations": ctrl.options.variations,
        "sketch": ctrl.options.roles["sketch"].kind,
    }
    out["run"] = run_until_finished(ctrl, docker.generate_button.click)
    out["status"] = docker.status.text()
    out["progress"] = docker.progress.value()
    out["generate_enabled"] = docker.generate_button.isEnabled()
    out["cancel_enabled"] = docker.cancel_button.isEnabled()
    out["history_items"] = [docker.history.item(i).text() for i in range(docker.history.count())]
    out["layers"] = names(doc)
    docker.close()
    doc.close()
    return out


def autostart(args):
    """No engine runs; the config lets the plug-in start one, and the edit completes."""
    doc = face_document()
    ctrl = new_controller()
    out = {"run": run_until_finished(ctrl, lambda: ctrl.generate(doc), timeout=120)}
    out["layers"] = names(doc)
    doc.close()
    return out


# -- the full GUI (run by the sketchfill_gui_driver plug-in, not kritarunner) --------------


def wait(ms):
    loop = QEventLoop()
    QTimer.singleShot(ms, loop.quit)
    loop.exec_()


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        wait(50)
    return condition()


def noop(args):
    return "ok"


def gui_actions_undo(args):
    """Krita loaded the real plug-in from its .desktop: the actions exist, the docker is in
    the window, the Generate action edits the active document, one Edit > Undo removes the
    result and Redo brings it back; the toggle action hides and shows the panel; the
    panel's Auto tone, Composite face and Restore face buttons each add a layer that one
    Undo removes."""
    from sketchfill import job
    from sketchfill.ids import ACTIONS, DOCKER_ID

    app = Krita.instance()
    window = app.activeWindow()
    out = {"actions": {aid: app.action(aid) is not None for aid, _ in ACTIONS}}
    dockers = [d for d in app.dockers() if d.objectName() == DOCKER_ID]
    out["dockers"] = [type(d).__name__ for d in dockers]
    doc = face_document()
    window.addView(doc)
    out["active"] = wait_for(lambda: app.activeDocument() is not None)
    # notices also go over the canvas; an error in that slot would only show Krita's
    # Python error dialog, so call it here where an exception fails the scenario
    from sketchfill.extension import show_on_canvas

    out["floating_messages"] = hasattr(window.activeView(), "showFloatingMessage")
    show_on_canvas("SketchFill: test message", False)
    before, names_before = snapshot(doc), names(doc)
    ctrl = job.controller()
    ctrl.options.seed = 77
    out["record"] = run_until_finished(ctrl, app.action("sketchfill_generate").trigger)
    out["after_generate"] = names(doc)
    generated, names_generated = snapshot(doc), names(doc)

    app.action("edit_undo").trigger()
    wait_for(lambda: names(doc) == names_before)
    doc.waitForDone()
    out["after_undo"] = names(doc)
    out["undo_restores"] = snapshot(doc) == before

    app.action("edit_redo").trigger()
    wait_for(lambda: names(doc) == names_generated)
    doc.waitForDone()
    out["after_redo"] = names(doc)
    out["redo_restores"] = snapshot(doc) == generated

    if dockers:
        docker = dockers[0]
        out["docker_status"] = docker.status.text() if hasattr(docker, "status") else None
        out["docker_history"] = docker.history.count() if hasattr(docker, "history") else None
        shown = docker.isVisible()
        app.action("sketchfill_toggle_docker").trigger()
        wait(100)
        hidden = docker.isVisible()
        app.action("sketchfill_toggle_docker").trigger()
        wait(100)
        out["toggle"] = [shown, hidden, docker.isVisible()]
        # the panel's Auto tone button: one more layer, one more undo step
        before_tone, names_before_tone = snapshot(doc), names(doc)
        out["tone_record"] = run_until_finished(ctrl, docker.tone_button.click)
        out["after_tone"] = names(doc)
        app.action("edit_undo").trigger()
        wait_for(lambda: names(doc) == names_before_tone)
        doc.waitForDone()
        out["tone_undo_restores"] = snapshot(doc) == before_tone
        # the panel's Composite face button, in a second document whose active layer is
        # the face: one layer right above it, and one Undo removes it. A new view starts on
        # its top layer, so the face is on top.
        other = composite_document(notes=False)
        window.addView(other)
        out["composite_active_document"] = wait_for(
            lambda: app.activeDocument() is not None and app.activeDocument().name() == other.name()
        )
        wait_for(lambda: other.activeNode() is not None, 3)
        active = other.activeNode()
        out["composite_active_layer"] = active.name() if active is not None else None
        if active is None:  # Krita 5.2 under Xvfb: see WithActiveLayer
            face = other.nodeByName("face")
            docker.document_source = lambda: WithActiveLayer(app.activeDocument(), face)
        before_composite, names_before_composite = snapshot(other), names(other)
        out["composite_record"] = run_until_finished(ctrl, docker.composite_button.click)
        out["after_composite"] = names(other)
        app.action("edit_undo").trigger()
        wait_for(lambda: names(other) == names_before_composite)
        other.waitForDone()
        out["after_composite_undo"] = names(other)
        out["composite_undo_restores"] = snapshot(other) == before_composite
        docker.document_source = lambda: app.activeDocument()
        out.update(_gui_restore(app, window, docker, ctrl))
    return out


def _gui_restore(app, window, docker, ctrl):
    """The panel's Restore face button in a third document (the portrait, part of the face
    selected): one layer right above the photo, which one Undo removes; then the
    sketchfill_restore action does the same."""
    out = {}
    doc = restore_document("selection")
    window.addView(doc)
    out["restore_active_document"] = wait_for(
        lambda: app.activeDocument() is not None and app.activeDocument().name() == doc.name()
    )
    before, names_before = snapshot(doc), names(doc)
    out["restore_record"] = run_until_finished(ctrl, docker.restore_button.click)
    out["after_restore"] = names(doc)
    out["restore_status"] = docker.status.text()
    added = snapshot(doc)
    out["restore_keeps_layers"] = all(entry in added for entry in before)
    app.action("edit_undo").trigger()
    wait_for(lambda: names(doc) == names_before)
    doc.waitForDone()
    out["after_restore_undo"] = names(doc)
    out["restore_undo_restores"] = snapshot(doc) == before
    out["restore_action_record"] = run_until_finished(
        ctrl, app.action("sketchfill_restore").trigger
    )
    out["after_restore_action"] = names(doc)
    app.action("edit_undo").trigger()
    wait_for(lambda: names(doc) == names_before)
    doc.waitForDone()
    out["restore_action_undo_restores"] = snapshot(doc) == before
    return out


class WithActiveLayer:
    """A Document whose activeNode() is `layer`. Krita 5.2.9 under Xvfb (no window
    manager, so no window or view is ever activated) reports no active layer for any
    document, and Document.setActiveNode does not change that; 5.1.5 does report the new
    view's top layer. Everything else goes to the real document."""

    def __init__(self, doc, layer):
        self._doc, self._layer = doc, layer

    def activeNode(self):
        return self._layer

    def __getattr__(self, name):
        return getattr(self._doc, name)


def without_pyzmq(args):
    """Krita's Python without pyzmq (PYTHONPATH left without it): the package still loads,
    registers stand-ins, and the panel says what is missing."""
    try:
        import zmq  # noqa: F401
    except ImportError:
        pass
    else:
        return {"zmq_present": True}
    import sketchfill
    from sketchfill import missing

    try:
        import sketchfill.sketchfill_client.client
    except ImportError as exc:
        error = str(exc)
    panel = missing.missing_docker(error)()
    return {
        "zmq_present": False,
        "package": sketchfill.__name__,
        "extensions": [type(e).__name__ for e in Krita.instance().extensions()],
        "panel_text": panel.widget().text(),
        "panel_title": panel.windowTitle(),
    }


# -- a new user's first hour (issue #19) ----------------------------------------------------


def first_hour(args):
    """Create SketchFill layers on a bare photo (twice); guides named "Lines" and
    "Colour" found by Auto, the result on top of them, Before/after twice; refusals for a
    missing colour layer; the panel folded and unfolded."""
    from sketchfill.docker import SketchFillDocker

    out = {}
    w, h, face = png_bgra(DEMO / "astronaut.png")
    bare = new_document(w, h, "bare")
    add_layer(bare, "photo", face)
    ctrl = new_controller()
    out["created"] = ctrl.create_layers(bare)
    out["create_notice"] = ctrl.last_notice
    out["after_create"] = names(bare)
    out["create_alpha_max"] = {
        n.name(): max(bytes(n.pixelData(0, 0, w, h))[3::4])
        for n in top_layers(bare)
        if n.name() != "photo"
    }
    out["created_again"] = ctrl.create_layers(bare)
    out["create_again_notice"] = ctrl.last_notice
    out["after_create_again"] = names(bare)
    bare.close()

    # the user's own guide names, Auto finds them; the result goes on top of them
    doc = face_document()
    doc.nodeByName("sketch").setName("Lines")
    doc.nodeByName("color").setName("Colour")
    ctrl = new_controller()
    ctrl.options.seed = 321
    out["run"] = run_until_finished(ctrl, lambda: ctrl.generate(doc))
    out["after_generate"] = names(doc)
    out["toggle_off"] = [ctrl.before_after(doc), ctrl.last_notice]
    out["toggle_on"] = [ctrl.before_after(doc), ctrl.last_notice]
    out["visible"] = doc.nodeByName("SF 321 fill").visible()

    # no colour layer at all: refused before any connection, with the way to go on
    doc.nodeByName("Colour").setName("notes")
    before = snapshot(doc)
    out["no_color"] = run_until_finished(ctrl, lambda: ctrl.generate(doc))
    out["no_color_unchanged"] = snapshot(doc) == before

    # the panel: folded it is short; the summary says which layers Auto picks
    docker = SketchFillDocker()
    docker.document_source = lambda: doc
    docker.canvasChanged(None)
    docker.show()
    folded = docker.widget().minimumSizeHint().height()
    out["summary"] = docker.options_fold.summary.text()
    docker.options_fold.set_folded(False)
    docker.history_fold.set_folded(False)
    out["heights"] = [folded, docker.widget().minimumSizeHint().height()]
    out["combo_items"] = [docker.roles["sketch"].itemText(i) for i in range(2)]
    docker.close()
    doc.close()
    return out


def _write_ora(path):
    """The demo portrait as an OpenRaster file (a zip: mimetype, stack.xml top to bottom,
    one PNG a layer): face, sketch, color and its mask as the layer 'mask'. Written here,
    since Document.saveAs waits forever under kritarunner."""
    import zipfile

    w, h, _ = png_bgra(DEMO / "astronaut.png")
    layers = [("mask", "mask.png"), ("color", "color.png"), ("sketch", "sketch.png")]
    layers.append(("face", "astronaut.png"))
    stack = "".join(f'<layer name="{n}" src="data/{f}" x="0" y="0"/>' for n, f in layers)
    with zipfile.ZipFile(path, "w") as ora:
        ora.writestr("mimetype", "image/openraster", compress_type=zipfile.ZIP_STORED)
        ora.writestr(
            "stack.xml",
            f'<?xml version="1.0"?><image w="{w}" h="{h}"><stack>{stack}</stack></image>',
        )
        for _, f in layers:
            # RGBA PNGs: Krita would open a grey PNG as a grey layer
            rgba = QImage(str(DEMO / f)).convertToFormat(QImage.Format_ARGB32)
            png = workdir() / f"ora-{f}"
            rgba.save(str(png), "PNG")
            ora.write(png, f"data/{f}")


def ora_history(args):
    """A document opened from a .ora file has no title: the history names it by its file,
    not "untitled"."""
    path = str(workdir() / "portrait.ora")
    _write_ora(path)
    opened = Krita.instance().openDocument(path)
    out = {"opened_title": opened.name(), "opened_file": opened.fileName()}
    ctrl = new_controller()
    ctrl.options.seed = 5
    out["ora_run"] = run_until_finished(ctrl, lambda: ctrl.generate(opened))
    out["layers"] = names(opened)
    out["ora_history"] = [e.label() for e in ctrl.history.entries]
    opened.close()
    return out


def docker_prestarts(args):
    """The panel opening starts the engine in the background (client.json allowing it),
    once per Krita process: args[0] is the file the stand-in engine command writes."""
    from sketchfill.docker import SketchFillDocker

    started = Path(args[0])
    first = SketchFillDocker()
    second = SketchFillDocker()  # a second window's panel: no second engine
    wait_for(started.exists, 10)
    wait(500)
    out = {"calls": started.read_text().splitlines() if started.exists() else []}
    out["status"] = first.status.text()
    first.close()
    second.close()
    return out
