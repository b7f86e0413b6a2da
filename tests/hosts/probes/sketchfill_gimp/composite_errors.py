"""GIMP batch script: SketchFill Composite face calls that must fail cleanly, each with a
plain message, no new layer and nothing changed: the photo itself selected (no layer
below it), a single-layer image, an empty face layer, an opaque face layer without a
selection, and a selection away from the face. Writes result.json: for each case the
call's status and error text, and whether the image stayed exactly as it was."""

import gimp_scene as scene
import sketchfill_hostkit as kit
from gi.repository import Gimp

COMPOSITE = "plug-in-sketchfill-composite"

img, layers = scene.build_composite()
res = {}


def attempt(label, drawables, image=img):
    before = scene.snapshot(image)
    outcome = scene.call(COMPOSITE, image, drawables)
    outcome["unchanged"] = scene.snapshot(image) == before
    res[label] = outcome


attempt("photo_selected", [layers["photo"]])
single = Gimp.Image.new(64, 48, Gimp.ImageBaseType.RGB)
lone = scene.add_layer(single, "face", [8, 8, 32, 24], scene.paint_pixels(32, 24))
attempt("single_layer", [lone], image=single)
w, h = layers["face"].get_width(), layers["face"].get_height()
_, x, y = layers["face"].get_offsets()
empty = scene.add_layer(img, "empty face", [x, y, w, h], bytes(4 * w * h), position=1)
attempt("empty_face", [empty])
img.remove_layer(empty)
opaque = scene.add_layer(img, "pasted", [x, y, w, h], bytes(scene.PAINT) * (w * h), position=1)
attempt("opaque_face", [opaque])
img.remove_layer(opaque)
img.select_rectangle(Gimp.ChannelOps.REPLACE, 0, 0, 8, 8)  # a corner, away from the face
attempt("selection_elsewhere", [layers["face"]])
kit.write_result(res)
img.delete()
single.delete()
