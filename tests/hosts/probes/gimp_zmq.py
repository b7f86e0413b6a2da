"""GIMP batch probe: pyzmq DEALER to the pytest ROUTER (env SKETCHFILL_PROBE_ENDPOINT),
sending a JSON header and a raw R'G'B'A u8 frame read through Gegl. Writes result.json."""

import json
import os
import sys

import sketchfill_hostkit as kit
import zmq
from gimp_common import Gimp, new_layer, pattern_rgba, read, write

W, H = 4, 3
img = Gimp.Image.new(W, H, Gimp.ImageBaseType.RGB)
layer = new_layer(img, "photo", W, H)
img.insert_layer(layer, None, 0)
write(layer, pattern_rgba(W, H, seed=9))
pixels = read(layer)
endpoint = os.environ["SKETCHFILL_PROBE_ENDPOINT"]
sock = zmq.Context.instance().socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.connect(endpoint)
header = {"protocol": 1, "op": "probe", "from": "gimp", "python": sys.version}
sock.send_multipart([json.dumps(header).encode(), pixels])
res = {"zmq": zmq.__version__, "libzmq": zmq.zmq_version(), "zmq_file": zmq.__file__}
if sock.poll(10000):
    frames = sock.recv_multipart()
    res["reply"] = json.loads(frames[0])
    res["frame_back_hex"] = frames[1].hex()
else:
    res["error"] = f"no reply from {endpoint} in 10 s"
sock.close()
res["sent_hex"] = pixels.hex()
kit.write_result(res)
