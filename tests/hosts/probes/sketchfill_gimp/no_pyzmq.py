"""GIMP batch script, run with a `zmq` that fails to import: the SketchFill procedures are
still registered (the menu stays) and each run fails with a message naming the problem.
Writes result.json."""

import gimp_scene as scene
import sketchfill_hostkit as kit
from gi.repository import Gimp

img, layers = scene.build()
pdb = Gimp.get_pdb()
res = {"exists": [pdb.procedure_exists(name) for name in (scene.GENERATE, scene.AGAIN)]}
before = scene.snapshot(img)
res["generate"] = scene.call(scene.GENERATE, img, [layers["photo"]])
res["again"] = scene.call(scene.AGAIN, img, [layers["photo"]])
res["unchanged"] = scene.snapshot(img) == before
kit.write_result(res)
img.delete()
