"""GIMP batch script: SketchFill Restore face calls that must fail cleanly, each with a
plain message, no new layer and nothing changed: no mask at all, an empty selection, a
selection under half everywhere (the engine's empty_mask), and pictures without a face
(flat grey with a selection, a gradient with a mask layer: the engine's no_face). Writes
result.json: for each case the call's status and error text, and whether the image
stayed exactly as it was."""

import gimp_scene as scene
import restore_scene as rs
import sketchfill_hostkit as kit
from gi.repository import Gimp

img, layers = rs.build()
photo = layers["photo"]
res = {}


def attempt(label, image=img, drawables=None, **args):
    before = scene.snapshot(image)
    outcome = scene.call(rs.RESTORE, image, [photo] if drawables is None else drawables, **args)
    outcome["unchanged"] = scene.snapshot(image) == before
    res[label] = outcome


Gimp.Selection.none(img)
attempt("no_mask_at_all")
attempt("empty_selection", mask_source="selection")
res["soft_max"] = rs.soft_selection(img)
attempt("soft_selection")

flat, flat_photo = rs.picture(rs.grey())
rs.mask_ellipse(flat, "selection")
attempt("no_face_grey", image=flat, drawables=[flat_photo])
ramp, ramp_photo = rs.picture(rs.gradient())
rs.mask_ellipse(ramp, "layer")
attempt("no_face_gradient", image=ramp, drawables=[ramp_photo])
kit.write_result(res)
for image in (img, flat, ramp):
    image.delete()
