"""GIMP batch script: what a new user meets in the first hour (issue #19).

1. Create SketchFill layers on a bare photo: transparent 'sketch', 'color', 'mask' above
   it, 'mask' selected; run again: nothing added, all kept.
2. Guides named "Lines" and "Colour" (the names a user picked): Generate with the default
   settings finds them; the result lands on top of the guides; the status sentence says
   so; Before/after hides and shows it.
3. A guide that is not there (a sketch layer named "Strokes 2", no colour layer at all)
   and the mask layer set to None: refused before anything is sent, with a message.
Writes result.json."""

import gimp_scene as scene
import sketchfill_hostkit as kit
from gi.repository import Gimp

res = {}
img = Gimp.get_images()[0]
photo = img.get_layers()[0]
photo.set_name("photo")

# 1. Create SketchFill layers, twice.
res["create"] = scene.call(scene.GUIDES, img, [photo])
res["after_create"] = scene.snapshot(img)
res["selected_after_create"] = [lay.get_name() for lay in img.get_selected_layers()]
res["canvas"] = [img.get_width(), img.get_height()]
res["create_alpha_max"] = {
    lay.get_name(): max(scene.read(lay, [0, 0, img.get_width(), img.get_height()])[3::4])
    for lay in img.get_layers()
    if lay.get_name() != "photo"
}
res["create_again"] = scene.call(scene.GUIDES, img, [photo])
res["after_create_again"] = [lay.get_name() for lay in img.get_layers()]
for lay in img.get_layers():
    if lay.get_name() != "photo":
        img.remove_layer(lay)

# 2. The user's own guide names, default settings, then Before/after twice.
img, layers = scene.build(names=("Lines", "Colour"))
before = res["before"] = scene.snapshot(img)
res["generate"] = scene.call(scene.GENERATE, img, [photo], seed=77)
res["after_generate"] = scene.snapshot(img)
res["selected_after_generate"] = [lay.get_name() for lay in img.get_selected_layers()]
added = scene.new_layers(before, img)
res["added"] = [scene.info(layer) for layer in added]
if len(added) == 1:
    res["result"] = scene.record_result(img, added[0], layers)
res["toggle_off"] = scene.call(scene.BEFORE_AFTER, img, [photo])
res["visible_after_off"] = added[0].get_visible() if added else None
res["toggle_on"] = scene.call(scene.BEFORE_AFTER, img, [photo])
res["visible_after_on"] = added[0].get_visible() if added else None


# 3. Refusals before anything is sent.
def attempt(label, **args):
    snap = scene.snapshot(img)
    outcome = scene.call(scene.GENERATE, img, [photo], **args)
    outcome["unchanged"] = scene.snapshot(img) == snap
    res[label] = outcome


attempt("sketch_named_missing", sketch_layer="Strokes 2")
layers["color"].set_name("notes")  # now no layer has a colour role's name
attempt("color_missing")
Gimp.Selection.none(img)
attempt("mask_none", color_layer="", mask_layer="")
kit.write_result(res)
img.delete()
