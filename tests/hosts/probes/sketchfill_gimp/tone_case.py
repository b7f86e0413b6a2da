"""GIMP batch script: build the scene (env SKETCHFILL_CASE: "selection" true/false,
"photo_offset"), run SketchFill Auto tone non-interactively and record what the test
checks: layers before and after, the new layer's pixels, the photo and the selection
under the photo's part of the canvas. Writes result.json and .bin files."""

import gimp_scene as scene
import sketchfill_hostkit as kit
from gi.repository import Gimp

TONE = "plug-in-sketchfill-tone"

c = scene.case()
img, layers = scene.build(photo_offset=tuple(c.get("photo_offset", (0, 0))))
if not c.get("selection", True):
    Gimp.Selection.none(img)
before = scene.snapshot(img)
res = {"before": before, "call": scene.call(TONE, img, [layers["photo"]])}
res["after"] = scene.snapshot(img)
added = scene.new_layers(before, img)
res["added"] = [scene.info(layer) for layer in added]
photo = layers["photo"]
_, px, py = photo.get_offsets()
x0, y0 = max(px, 0), max(py, 0)
x1 = min(px + photo.get_width(), img.get_width())
y1 = min(py + photo.get_height(), img.get_height())
region = [x0, y0, x1 - x0, y1 - y0]
res["region"] = region
scene.dump("photo", scene.read(photo, region))
scene.dump("selection", scene.read(img.get_selection(), region, "Y u8"))
if len(added) == 1:
    new = added[0]
    box = [*new.get_offsets()[1:], new.get_width(), new.get_height()]
    res["box"] = box
    scene.dump("new", scene.read(new, box))
proc = Gimp.get_pdb().lookup_procedure(TONE)
res["menu"] = list(proc.get_menu_paths())
res["label"] = proc.get_menu_label()
kit.write_result(res)
img.delete()
