"""GIMP GUI batch script (under Xvfb): SketchFill's dialog, one undo, Generate again.

1. Settings remembered from an earlier session (GIMP's last-values file for the
   procedure) name the guide layers "lines" and "paint" and fix seed 4242.
2. Generate... runs interactively: its dialog shows, a helper presses Return (OK).
3. One Edit > Undo (Ctrl+Z) takes the new layer away and leaves the image clean.
4. Generate again, twice: the remembered settings with new seeds, no dialog.
Writes result.json and the new layers' pixels."""

import subprocess
from pathlib import Path

import gimp_scene as scene
import sketchfill_hostkit as kit
from gi.repository import Gimp

LAST = """# settings
(image-layer "")
(sketch-layer "lines")
(color-layer "paint")
(mask-source "selection")
(mask-layer "mask")
(seed 4242)
(feather 2)
(endpoint "")
# end of settings
"""
folder = Path(Gimp.directory()) / "plug-in-settings"
folder.mkdir(exist_ok=True)
(folder / f"GimpProcedureConfigRun-{scene.GENERATE}.last").write_text(LAST)

img, layers = scene.build(names=("lines", "paint"))
img.clean_all()
kit.gimp_image_window(img)
res = {"before": scene.snapshot(img)}


def count():
    return len(scene.walk(img.get_layers()))


# The call blocks until the dialog closes, so another process answers it: wait for the
# window titled "SketchFill", let it settle, press Return (the OK button is the default).
press = "search --sync --name ^SketchFill$ sleep 0.5 windowfocus --sync %1 key Return"
helper = subprocess.Popen(
    ["timeout", "60", "xdotool", *press.split()], stdout=subprocess.PIPE, text=True
)
res["dialog_call"] = scene.call(
    scene.GENERATE, img, [layers["photo"]], run_mode=Gimp.RunMode.INTERACTIVE
)
try:
    res["dialog_helper_rc"] = helper.wait(10)
except subprocess.TimeoutExpired:  # the dialog never showed
    helper.kill()
    res["dialog_helper_rc"] = None
added = scene.new_layers(res["before"], img)
res["after_dialog"] = scene.snapshot(img)
res["added"] = [scene.info(layer) for layer in added]
res["dirty"] = img.is_dirty()
if len(added) == 1:
    res["first"] = scene.record_result(img, added[0], layers, prefix="first_")

n = count()
res["undone"] = kit.gimp_gui_undo(img, until=lambda: count() == n - 1)
res["after_undo"] = scene.snapshot(img)
res["dirty_after_undo"] = img.is_dirty()

res["again"] = []
for i in range(2):
    before = scene.snapshot(img)
    call = scene.call(
        scene.AGAIN, img, img.get_selected_layers(), run_mode=Gimp.RunMode.INTERACTIVE
    )
    new = scene.new_layers(before, img)
    entry = {"call": call, "added": [scene.info(layer) for layer in new]}
    if len(new) == 1:
        entry["result"] = scene.record_result(img, new[0], layers, prefix=f"again{i}_")
    res["again"].append(entry)
res["final"] = scene.snapshot(img)
kit.write_result(res)
