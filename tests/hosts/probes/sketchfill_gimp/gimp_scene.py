"""Helpers for the SketchFill plug-in's batch scripts beside this file (run inside GIMP).

Builds the test image from the photo GIMP opened (a real face), with guide layers that
have offsets and differ from the canvas size, calls the plug-in through the PDB, and
records what the pytest side checks: layer snapshots, raw pixels (as .bin files in the
run folder) and the calls' statuses. Geometry is in fractions of the canvas, so any photo
size works.
"""

import hashlib
import json
import os

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Babl", "0.1")
import sketchfill_hostkit as kit  # noqa: E402
from gi.repository import Babl, Gegl, Gimp  # noqa: E402

RGBA = "R'G'B'A u8"
PAINT = (200, 60, 50, 255)
INK = (20, 20, 20, 255)
GENERATE = "plug-in-sketchfill-generate"
AGAIN = "plug-in-sketchfill-generate-again"
GUIDES = "plug-in-sketchfill-create-layers"
BEFORE_AFTER = "plug-in-sketchfill-before-after"
PRECISIONS = {p.value_nick: p for p in Gimp.Precision.__enum_values__.values()}


def case():
    """The test's parameters (env SKETCHFILL_CASE, JSON)."""
    return json.loads(os.environ.get("SKETCHFILL_CASE") or "{}")


def box(img, fx, fy, fw, fh):
    w, h = img.get_width(), img.get_height()
    return [round(fx * w), round(fy * h), round(fw * w), round(fh * h)]


def add_layer(img, name, rect, pixels, parent=None, position=0):
    x, y, w, h = rect
    layer = Gimp.Layer.new(img, name, w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    img.insert_layer(layer, parent, position)
    layer.set_offsets(x, y)
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), RGBA, pixels)
    buf.flush()
    layer.update(0, 0, w, h)
    return layer


def paint_pixels(w, h, border=6):
    """A colour dab filling the layer but for a transparent border."""
    row = bytes(4 * border) + bytes(PAINT) * (w - 2 * border) + bytes(4 * border)
    return bytes(4 * w) * border + row * (h - 2 * border) + bytes(4 * w) * border


def stroke_pixels(w, h):
    """Pen strokes on a transparent layer: a horizontal and a slanted line, 3 px wide."""
    px = bytearray(4 * w * h)
    for x in range(8, w - 8):
        for y in (h // 2 - 1 + d for d in range(3)):
            px[4 * (y * w + x) : 4 * (y * w + x) + 4] = bytes(INK)
        y0 = int(8 + (h - 16) * (x - 8) / (w - 16))
        for y in range(y0 - 1, y0 + 2):
            if 0 <= y < h:
                px[4 * (y * w + x) : 4 * (y * w + x) + 4] = bytes(INK)
    return bytes(px)


def ellipse_pixels(w, h, inset):
    """An opaque white ellipse on a transparent layer (a painted mask)."""
    px = bytearray(4 * w * h)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    rx, ry = w / 2 - inset, h / 2 - inset
    for y in range(h):
        for x in range(w):
            if ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1:
                px[4 * (y * w + x) : 4 * (y * w + x) + 4] = b"\xff\xff\xff\xff"
    return bytes(px)


def build(names=("sketch", "color"), mask="selection", photo_offset=(0, 0), group=False):
    """The photo GIMP opened, renamed "photo" (moved by photo_offset), a colour layer and
    a sketch layer (optionally inside a group), and the mask: an ellipse selection or a
    layer named "mask". Returns (image, {role: layer})."""
    img = Gimp.get_images()[0]
    photo = img.get_layers()[0]
    photo.set_name("photo")
    photo.set_offsets(*photo_offset)
    layers = {"photo": photo}
    sketch_name, color_name = names
    r = box(img, 0.30, 0.48, 0.40, 0.30)
    layers["color"] = add_layer(img, color_name, r, paint_pixels(r[2], r[3]))
    parent = None
    if group:
        parent = Gimp.GroupLayer.new(img, "guides")
        img.insert_layer(parent, None, 0)
        layers["group"] = parent
    r = box(img, 0.35, 0.52, 0.30, 0.22)
    layers["sketch"] = add_layer(img, sketch_name, r, stroke_pixels(r[2], r[3]), parent)
    if mask == "selection":
        img.select_ellipse(Gimp.ChannelOps.REPLACE, *box(img, 0.38, 0.56, 0.24, 0.14))
    else:
        r = box(img, 0.36, 0.55, 0.28, 0.17)
        layers["mask"] = add_layer(img, "mask", r, ellipse_pixels(r[2], r[3], 6))
    img.set_selected_layers([photo])
    return img, layers


# Composite face: the face is cut from the photo, recoloured (warmer, less blue) so that it
# no longer matches, and moved a little, as a user pastes and positions a face.
FACE_BOX = (0.30, 0.28, 0.40, 0.44)
FACE_SHIFT = (10, -6)
FACE_SELECTION = (0.36, 0.34, 0.28, 0.16)  # an ellipse over the face's upper half


def _table(gain, offset):
    return bytes(min(255, max(0, round(v * gain + offset))) for v in range(256))


def face_pixels(photo, rect):
    """The photo's pixels in canvas rect [x, y, w, h], recoloured, with an elliptic alpha
    that is soft over its outer tenth."""
    w, h = rect[2:]
    px = bytearray(read(photo, rect))
    px[0::4] = bytes(px[0::4]).translate(_table(0.8, 50))
    px[2::4] = bytes(px[2::4]).translate(_table(0.6, 0))
    cx, cy = (w - 1) / 2, (h - 1) / 2
    alpha = bytearray(w * h)
    for j in range(h):
        for i in range(w):
            d = (((i - cx) / (w / 2)) ** 2 + ((j - cy) / (h / 2)) ** 2) ** 0.5
            alpha[j * w + i] = 255 if d <= 0.9 else max(0, round(255 * (1 - d) / 0.1))
    px[3::4] = bytes(alpha)
    return bytes(px)


def build_composite(photo_offset=(0, 0), selection=False):
    """The photo GIMP opened, renamed "photo" (moved by photo_offset); above it a layer
    "face" (smaller than the canvas, offset; see FACE_BOX) and on top an unrelated small
    layer "notes"; the face layer selected; optionally an ellipse selection over part of
    the face. Returns (image, {role: layer})."""
    img = Gimp.get_images()[0]
    photo = img.get_layers()[0]
    photo.set_name("photo")
    photo.set_offsets(*photo_offset)
    rect = box(img, *FACE_BOX)
    pixels = face_pixels(photo, rect)
    rect = [rect[0] + FACE_SHIFT[0], rect[1] + FACE_SHIFT[1], *rect[2:]]
    face = add_layer(img, "face", rect, pixels)
    notes = add_layer(img, "notes", [4, 4, 24, 16], bytes(PAINT) * (24 * 16))
    Gimp.Selection.none(img)
    if selection:
        img.select_ellipse(Gimp.ChannelOps.REPLACE, *box(img, *FACE_SELECTION))
    img.set_selected_layers([face])
    return img, {"photo": photo, "face": face, "notes": notes}


def walk(layers):
    out = []
    for layer in layers:
        out.append(layer)
        if layer.is_group():
            out.extend(walk(layer.get_children()))
    return out


def read(drawable, rect, fmt=RGBA):
    """Canvas rectangle [x, y, w, h] of a drawable; outside it reads as zeros."""
    x, y, w, h = rect
    _, ox, oy = drawable.get_offsets()
    r = Gegl.Rectangle.new(x - ox, y - oy, w, h)
    return bytes(drawable.get_buffer().get(r, 1.0, fmt, Gegl.AbyssPolicy.NONE))


def native(drawable):
    """All of a drawable's pixels in its own format (bit-exact at any precision)."""
    fmt = Babl.get_name(drawable.get_format())
    r = [*drawable.get_offsets()[1:], drawable.get_width(), drawable.get_height()]
    return read(drawable, r, fmt), fmt


def info(layer):
    data, fmt = native(layer)
    return {
        "id": layer.get_id(),
        "name": layer.get_name(),
        "offsets": list(layer.get_offsets()[1:]),
        "size": [layer.get_width(), layer.get_height()],
        "parent": layer.get_parent().get_name() if layer.get_parent() else None,
        "visible": layer.get_visible(),
        "opacity": layer.get_opacity(),
        "mode": layer.get_mode().value_nick,
        "format": fmt,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def snapshot(img):
    """Every layer top to bottom, plus the selection: what must not change."""
    canvas = [0, 0, img.get_width(), img.get_height()]
    selection = read(img.get_selection(), canvas, "Y u8")
    return {
        "layers": [info(layer) for layer in walk(img.get_layers())],
        "selection_sha256": hashlib.sha256(selection).hexdigest(),
    }


def call(name, img, drawables, run_mode=Gimp.RunMode.NONINTERACTIVE, **props):
    """Run a SketchFill procedure through the PDB; returns {success, status, error}."""
    proc = Gimp.get_pdb().lookup_procedure(name)
    if proc is None:
        raise RuntimeError(f"{name} is not in the PDB: the plug-in did not load")
    cfg = proc.create_config()
    cfg.set_property("run-mode", run_mode)
    cfg.set_property("image", img)
    cfg.set_core_object_array("drawables", drawables)
    for key, value in props.items():
        cfg.set_property(key.replace("_", "-"), value)
    result = proc.run(cfg)
    status = result.index(0)
    success = status == Gimp.PDBStatusType.SUCCESS
    error = Gimp.get_pdb().get_last_error() if not success else None
    return {
        "success": success,
        "status": status.value_nick,
        "error": error,
        # the sentence the status line shows (the procedures' "message" return value)
        "message": result.index(1) if success and result.length() > 1 else None,
    }


def new_layers(before, img):
    ids = {layer["id"] for layer in before["layers"]}
    return [layer for layer in walk(img.get_layers()) if layer.get_id() not in ids]


def dump(name, data):
    (kit.workdir() / f"{name}.bin").write_bytes(data)


def record_result(img, layer, layers, prefix=""):
    """Raw pixels the pytest side compares: the new layer, and the photo, sketch and colour
    under it; the mask over the whole canvas, one byte per pixel (the alpha of the layer
    named "mask" when the scene has one, else the selection)."""
    r = [*layer.get_offsets()[1:], layer.get_width(), layer.get_height()]
    dump(prefix + "new", read(layer, r))
    for role in ("photo", "sketch", "color"):
        dump(prefix + role, read(layers[role], r))
    canvas = [0, 0, img.get_width(), img.get_height()]
    if "mask" in layers:
        dump(prefix + "mask", read(layers["mask"], canvas, "Y'A u8")[1::2])
    else:
        dump(prefix + "mask", read(img.get_selection(), canvas, "Y u8"))
    return {"box": r, "canvas": canvas[2:], "info": info(layer)}
