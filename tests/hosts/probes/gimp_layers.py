"""GIMP batch probe: Python runs, an image with two layers, Gegl "R'G'B'A u8" pixels, and a
layer inserted (with offsets and pixels) inside one undo group. Writes result.json."""

import sys

import sketchfill_hostkit as kit
from gimp_common import Gimp, new_layer, pattern_rgba, read, write

W, H = 6, 4
img = Gimp.Image.new(W, H, Gimp.ImageBaseType.RGB)
bottom = new_layer(img, "bottom", W, H)
img.insert_layer(bottom, None, 0)
top = new_layer(img, "top", W, H)
img.insert_layer(top, None, 0)
bottom_px = pattern_rgba(W, H, seed=5)
top_px = pattern_rgba(W, H, seed=99, alphas=(255, 128, 1, 77))
write(bottom, bottom_px)
write(top, top_px)

res = {
    "gimp": Gimp.version(),
    "python": sys.version.split()[0],
    "layers": [layer.get_name() for layer in img.get_layers()],
    "bottom_equal": read(bottom) == bottom_px,
    "top_equal": read(top) == top_px,
    "top_hex": read(top).hex(),
    "undo_enabled": img.undo_is_enabled(),
}

patch = pattern_rgba(3, 2, seed=200)
res["group_start"] = img.undo_group_start()
result_layer = new_layer(img, "sketchfill result", 3, 2)
img.insert_layer(result_layer, None, 0)
result_layer.set_offsets(2, 1)
write(result_layer, patch)
res["group_end"] = img.undo_group_end()
Gimp.displays_flush()
res["layers_after"] = [layer.get_name() for layer in img.get_layers()]
res["offsets"] = list(result_layer.get_offsets()[1:])
res["patch_equal"] = read(result_layer) == patch
res["bottom_untouched"] = read(bottom) == bottom_px
kit.write_result(res)
img.delete()
