"""GIMP batch script: Generate with no engine running and auto-start on (the config in
SKETCHFILL_CLIENT_CONFIG): the plug-in starts one and edits through it. Writes
result.json."""

import gimp_scene as scene
import sketchfill_hostkit as kit

img, layers = scene.build()
before = scene.snapshot(img)
res = {"before": before, "call": scene.call(scene.GENERATE, img, [layers["photo"]])}
res["after"] = scene.snapshot(img)
res["added"] = [scene.info(layer) for layer in scene.new_layers(before, img)]
kit.write_result(res)
img.delete()
