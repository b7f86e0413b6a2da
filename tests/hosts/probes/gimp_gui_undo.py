"""GIMP GUI batch probe (under Xvfb): a layer inserted inside one undo group goes away with
ONE Edit > Undo (Ctrl+Z) and comes back whole with Redo (Ctrl+Y). Writes result.json."""

import sketchfill_hostkit as kit
from gimp_common import Gimp, new_layer, pattern_rgba, read, write

W, H = 32, 24
img = Gimp.Image.new(W, H, Gimp.ImageBaseType.RGB)
bottom = new_layer(img, "photo", W, H)
img.insert_layer(bottom, None, 0)
write(bottom, pattern_rgba(W, H, seed=3))
img.clean_all()
kit.gimp_image_window(img)  # opens a display and waits for its window

patch = pattern_rgba(8, 6, seed=42, alphas=(255, 200))
img.undo_group_start()
layer = new_layer(img, "sketchfill result", 8, 6)
img.insert_layer(layer, None, 0)
layer.set_offsets(5, 7)
write(layer, patch)
img.undo_group_end()
Gimp.displays_flush()
res = {"before": [x.get_name() for x in img.get_layers()], "dirty_before": img.is_dirty()}


def n_layers():
    return len(img.get_layers())


res["undone"] = kit.gimp_gui_undo(img, until=lambda: n_layers() == 1)
res["after_undo"] = [x.get_name() for x in img.get_layers()]
res["dirty_after_undo"] = img.is_dirty()
res["redone"] = kit.gimp_gui_keys(img, "ctrl+y", until=lambda: n_layers() == 2)
back = img.get_layers()[0]
res["after_redo"] = [x.get_name() for x in img.get_layers()]
res["redo_offsets"] = list(back.get_offsets()[1:])
res["redo_patch_equal"] = read(back) == patch
kit.write_result(res)
