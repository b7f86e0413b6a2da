"""Helpers for the Restore face batch scripts beside this file (run inside GIMP).

The photo is the bundled public-domain portrait (512 x 512, the face at about x 180-272,
y 69-177); the mask is an ellipse over the left half of the face, as a selection or as a
layer named "mask" (offset, smaller than the canvas, painted on transparency).
"""

import gimp_scene as scene
from gi.repository import Gimp

RESTORE = "plug-in-sketchfill-restore"
# The ellipse: centre (205, 125), radii (22, 35), as its bounding rectangle.
ELLIPSE = (183, 90, 44, 70)


def mask_ellipse(img, mask="selection"):
    """The mask over the face: an ellipse selection, or a layer "mask" on top holding the
    ellipse (a 2-pixel transparent border around it) and no selection."""
    x, y, w, h = ELLIPSE
    Gimp.Selection.none(img)
    if mask == "selection":
        img.select_ellipse(Gimp.ChannelOps.REPLACE, x, y, w, h)
        return None
    rect = [x - 2, y - 2, w + 4, h + 4]
    return scene.add_layer(img, "mask", rect, scene.ellipse_pixels(rect[2], rect[3], 2))


def build(mask="selection", photo_offset=(0, 0)):
    """The portrait GIMP opened, renamed "photo" (moved by photo_offset) and selected; on
    top an unrelated small layer "notes"; the mask. Returns (image, {role: layer})."""
    img = Gimp.get_images()[0]
    photo = img.get_layers()[0]
    photo.set_name("photo")
    photo.set_offsets(*photo_offset)
    notes = scene.add_layer(img, "notes", [4, 4, 24, 16], bytes(scene.PAINT) * (24 * 16))
    layers = {"photo": photo, "notes": notes}
    layer = mask_ellipse(img, mask)
    if layer is not None:
        layers["mask"] = layer
    img.set_selected_layers([photo])
    return img, layers


def picture(pixels, w=512, h=512):
    """A new RGB image with one opaque layer "photo" holding the RGBA `pixels`."""
    img = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    layer = scene.add_layer(img, "photo", [0, 0, w, h], pixels)
    img.set_selected_layers([layer])
    return img, layer


def grey(w=512, h=512):
    return bytes((128, 128, 128, 255)) * (w * h)


def gradient(w=512, h=512):
    """Red across, green down, blue constant."""
    rows = []
    for y in range(h):
        rows.append(
            b"".join(bytes((x * 255 // (w - 1), y * 255 // (h - 1), 100, 255)) for x in range(w))
        )
    return b"".join(rows)


def soft_selection(img):
    """Replace the selection with a faint one over the face: a 6 x 6 square feathered by
    20 pixels, nowhere near half on (it peaks at about 40 of 255)."""
    img.select_rectangle(Gimp.ChannelOps.REPLACE, 200, 120, 6, 6)
    Gimp.Selection.feather(img, 20.0)
    canvas = [0, 0, img.get_width(), img.get_height()]
    return max(scene.read(img.get_selection(), canvas, "Y u8"))
