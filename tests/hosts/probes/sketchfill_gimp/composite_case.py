"""GIMP GUI batch script (under Xvfb, for Edit > Undo): build the composite scene (env
SKETCHFILL_CASE: "selection" true/false, "photo_offset"), run SketchFill Composite face
non-interactively on the face layer and record what the test checks: layers before and
after, the new layer's box, and the new layer, photo, face and selection over the whole
canvas; then press Ctrl+Z once and record the layers again. Writes result.json and .bin
files."""

import gimp_scene as scene
import sketchfill_hostkit as kit
from gi.repository import Gimp

COMPOSITE = "plug-in-sketchfill-composite"

c = scene.case()
img, layers = scene.build_composite(
    photo_offset=tuple(c.get("photo_offset", (0, 0))), selection=c.get("selection", False)
)
img.clean_all()
before = scene.snapshot(img)
res = {"before": before, "call": scene.call(COMPOSITE, img, [layers["face"]])}
res["after"] = scene.snapshot(img)
added = scene.new_layers(before, img)
res["added"] = [scene.info(layer) for layer in added]
canvas = [0, 0, img.get_width(), img.get_height()]
res["canvas"] = canvas
if len(added) == 1:
    new = added[0]
    res["box"] = [*new.get_offsets()[1:], new.get_width(), new.get_height()]
    scene.dump("new", scene.read(new, canvas))
for role in ("photo", "face"):
    scene.dump(role, scene.read(layers[role], canvas))
scene.dump("selection", scene.read(img.get_selection(), canvas, "Y u8"))
res["dirty"] = img.is_dirty()


def count():
    return len(scene.walk(img.get_layers()))


n = count()
res["undone"] = kit.gimp_gui_undo(img, until=lambda: count() == n - 1)
res["after_undo"] = scene.snapshot(img)
res["dirty_after_undo"] = img.is_dirty()
proc = Gimp.get_pdb().lookup_procedure(COMPOSITE)
res["menu"] = list(proc.get_menu_paths())
res["label"] = proc.get_menu_label()
res["arguments"] = [a.name for a in proc.get_arguments()]
kit.write_result(res)
