"""GIMP batch probe: find the sketchfill-probe plug-in in the PDB and run it
non-interactively on a layer. Writes result.json."""

import sketchfill_hostkit as kit
from gimp_common import Gimp, new_layer, pattern_rgba, read, write

W, H = 5, 3
pdb = Gimp.get_pdb()
res = {"exists": pdb.procedure_exists("sketchfill-probe")}
proc = pdb.lookup_procedure("sketchfill-probe")
if proc is not None:
    img = Gimp.Image.new(W, H, Gimp.ImageBaseType.RGB)
    photo = new_layer(img, "photo", W, H)
    img.insert_layer(photo, None, 0)
    photo_px = pattern_rgba(W, H, seed=17)
    write(photo, photo_px)
    cfg = proc.create_config()
    cfg.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    cfg.set_property("image", img)
    cfg.set_core_object_array("drawables", [photo])
    result = proc.run(cfg)
    status = result.index(0)
    res["status"] = status.value_nick if hasattr(status, "value_nick") else str(status)
    res["success"] = status == Gimp.PDBStatusType.SUCCESS
    if not res["success"] and result.length() > 1:
        res["message"] = str(result.index(1))
    res["layers"] = [x.get_name() for x in img.get_layers()]
    res["photo_hex"] = photo_px.hex()
    res["photo_untouched"] = read(photo) == photo_px
    res["new_hex"] = read(img.get_layers()[0]).hex()
kit.write_result(res)
