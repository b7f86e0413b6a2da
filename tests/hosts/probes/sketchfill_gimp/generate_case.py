"""GIMP batch script: build the scene for the case in env SKETCHFILL_CASE, run SketchFill
Generate non-interactively, and record everything the test checks. Writes result.json."""

import gimp_scene as scene
import sketchfill_hostkit as kit
from gi.repository import Gimp

c = scene.case()
img, layers = scene.build(
    names=tuple(c.get("names", ("sketch", "color"))),
    mask=c.get("mask", "selection"),
    photo_offset=tuple(c.get("photo_offset", (0, 0))),
    group=c.get("group", False),
)
if c.get("precision"):
    img.convert_precision(scene.PRECISIONS[c["precision"]])
before = scene.snapshot(img)
res = {"precision": img.get_precision().value_nick, "before": before}
res["call"] = scene.call(scene.GENERATE, img, [layers["photo"]], **c.get("args", {}))
res["after"] = scene.snapshot(img)
added = scene.new_layers(before, img)
res["added"] = [scene.info(layer) for layer in added]
if len(added) == 1:
    res["result"] = scene.record_result(img, added[0], layers)
procs = {name: Gimp.get_pdb().lookup_procedure(name) for name in (scene.GENERATE, scene.AGAIN)}
res["menus"] = {name: list(p.get_menu_paths()) for name, p in procs.items()}
res["labels"] = {name: p.get_menu_label() for name, p in procs.items()}
res["arguments"] = [a.name for a in procs[scene.GENERATE].get_arguments()]
kit.write_result(res)
img.delete()
