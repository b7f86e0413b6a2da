#!/usr/bin/env python3
"""Minimal GIMP 3 plug-in used by the host smoke tests (procedure "sketchfill-probe").

Reads the first drawable's pixels, sends them to a ZeroMQ ROUTER at env
SKETCHFILL_PROBE_ENDPOINT when set (else inverts them itself), and puts the reply on a new
layer above the image inside one undo group. Writes what it saw to
$SKETCHFILL_WORKDIR/plugin.json. The installed plug-ins will follow the same shape.
"""

import json
import os
import sys

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib  # noqa: E402

PROC = "sketchfill-probe"
FMT = "R'G'B'A u8"


def _invert(data):
    out = bytearray(data)
    for i in range(len(out)):
        if i % 4 != 3:
            out[i] = 255 - out[i]
    return bytes(out)


def _via_zmq(endpoint, header, pixels):
    import zmq

    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        sock.send_multipart([json.dumps(header).encode(), pixels])
        if not sock.poll(10000):
            raise TimeoutError(f"no reply from {endpoint} in 10 s")
        frames = sock.recv_multipart()
    finally:
        sock.close()
    return json.loads(frames[0]), frames[1]


class SketchFillProbe(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROC]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, self.run, None)
        proc.set_image_types("RGB*")
        proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        proc.set_menu_label("SketchFill probe")
        proc.add_menu_path("<Image>/Filters/SketchFill")
        proc.set_documentation("SketchFill test probe", "Adds a processed copy as a layer", name)
        proc.set_attribution("SketchFill", "SketchFill", "2025")
        return proc

    def run(self, procedure, run_mode, image, drawables, config, run_data):
        seen = {"run_mode": int(run_mode), "n_drawables": len(drawables)}
        try:
            d = drawables[0]
            _, ox, oy = d.get_offsets()
            w, h = d.get_width(), d.get_height()
            rect = Gegl.Rectangle.new(0, 0, w, h)
            pixels = bytes(d.get_buffer().get(rect, 1.0, FMT, Gegl.AbyssPolicy.CLAMP))
            endpoint = os.environ.get("SKETCHFILL_PROBE_ENDPOINT")
            if endpoint:
                header = {"protocol": 1, "op": "probe", "from": "gimp-plugin", "w": w, "h": h}
                seen["reply"], out = _via_zmq(endpoint, header, pixels)
            else:
                out = _invert(pixels)
            image.undo_group_start()
            layer = Gimp.Layer.new(
                image,
                "sketchfill probe",
                w,
                h,
                Gimp.ImageType.RGBA_IMAGE,
                100.0,
                Gimp.LayerMode.NORMAL,
            )
            image.insert_layer(layer, None, 0)
            layer.set_offsets(ox, oy)
            buf = layer.get_buffer()
            buf.set(rect, FMT, out)
            buf.flush()
            layer.update(0, 0, w, h)
            image.undo_group_end()
            Gimp.displays_flush()
            status, error = Gimp.PDBStatusType.SUCCESS, GLib.Error()
        except Exception as exc:
            seen["error"] = repr(exc)
            status, error = Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(repr(exc))
        workdir = os.environ.get("SKETCHFILL_WORKDIR")
        if workdir:
            with open(os.path.join(workdir, "plugin.json"), "w") as fh:
                json.dump(seen, fh)
        return procedure.new_return_values(status, error)


Gimp.main(SketchFillProbe.__gtype__, sys.argv)
