"""GIMP GUI batch script (under Xvfb, for Edit > Undo): build the restore scene (env
SKETCHFILL_CASE: "mask" "selection"/"layer", "photo_offset", "seed"), run SketchFill
Restore face non-interactively on the photo layer and record what the test checks:
layers before and after, the new layer's box, the new layer, the photo and the mask over
the whole canvas; then press Ctrl+Z once and record the layers again. Writes result.json
and .bin files."""

import gimp_scene as scene
import restore_scene as rs
import sketchfill_hostkit as kit
from gi.repository import Gimp

c = scene.case()
img, layers = rs.build(c.get("mask", "selection"), tuple(c.get("photo_offset", (0, 0))))
img.clean_all()
before = scene.snapshot(img)
res = {"before": before}
res["call"] = scene.call(rs.RESTORE, img, [layers["photo"]], seed=c.get("seed", -1))
res["after"] = scene.snapshot(img)
added = scene.new_layers(before, img)
res["added"] = [scene.info(layer) for layer in added]
canvas = [0, 0, img.get_width(), img.get_height()]
res["canvas"] = canvas
if len(added) == 1:
    new = added[0]
    res["box"] = [*new.get_offsets()[1:], new.get_width(), new.get_height()]
    scene.dump("new", scene.read(new, canvas))
scene.dump("photo", scene.read(layers["photo"], canvas))
if "mask" in layers:
    scene.dump("mask", scene.read(layers["mask"], canvas, "Y'A u8")[1::2])
else:
    scene.dump("mask", scene.read(img.get_selection(), canvas, "Y u8"))
res["dirty"] = img.is_dirty()


def count():
    return len(scene.walk(img.get_layers()))


n = count()
res["undone"] = kit.gimp_gui_undo(img, until=lambda: count() == n - 1)
res["after_undo"] = scene.snapshot(img)
res["dirty_after_undo"] = img.is_dirty()
proc = Gimp.get_pdb().lookup_procedure(rs.RESTORE)
res["menu"] = list(proc.get_menu_paths())
res["label"] = proc.get_menu_label()
res["arguments"] = [a.name for a in proc.get_arguments()]
kit.write_result(res)
