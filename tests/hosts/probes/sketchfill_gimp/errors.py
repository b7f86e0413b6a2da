"""GIMP batch script: SketchFill calls that must fail cleanly, each with a plain message,
no new layer and nothing changed. Endpoints come in env SKETCHFILL_CASE. Writes
result.json: for each case the call's status and error text, and whether the image
stayed exactly as it was."""

import gimp_scene as scene
import sketchfill_hostkit as kit
from gi.repository import Gimp

c = scene.case()
img, layers = scene.build()
photo = layers["photo"]
res = {}


def attempt(label, image=img, proc=scene.GENERATE, drawables=None, **args):
    before = scene.snapshot(image)
    outcome = scene.call(proc, image, [photo] if drawables is None else drawables, **args)
    outcome["unchanged"] = scene.snapshot(image) == before
    res[label] = outcome


# The config's endpoint is dead and auto-start is off.
attempt("engine_down")
attempt("engine_down_again", proc=scene.AGAIN)
attempt("no_model", endpoint=c["no_model"])
attempt("too_large", endpoint=c["small"])
attempt("no_layer_named", image_layer="nope")
attempt("mask_layer_missing", mask_source="layer")
Gimp.Selection.none(img)
attempt("empty_selection", mask_source="selection")
attempt("no_mask_at_all")
gray = Gimp.Image.new(64, 48, Gimp.ImageBaseType.GRAY)
flat = Gimp.Layer.new(
    gray, "photo", 64, 48, Gimp.ImageType.GRAY_IMAGE, 100.0, Gimp.LayerMode.NORMAL
)
gray.insert_layer(flat, None, 0)
gray.select_rectangle(Gimp.ChannelOps.REPLACE, 10, 10, 20, 20)
attempt("grayscale", image=gray, drawables=[flat])
kit.write_result(res)
img.delete()
gray.delete()
