"""Smoke probes run inside Krita by kritarunner (see hostenv.run_krita).

Each function takes kritarunner's argument list and returns a JSON-able dict; the pytest
side (test_hosts_smoke.py) makes the assertions, so a failure shows the values.
"""

import hashlib
import json
import sys

W, H = 6, 4


def pattern_bgra():
    """Known B,G,R,A bytes: distinct per pixel, one half-transparent pixel."""
    out = bytearray()
    for y in range(H):
        for x in range(W):
            alpha = 128 if (x, y) == (W - 1, H - 1) else 255
            out += bytes((10 + 20 * x, 15 + 40 * y, 200, alpha))
    return bytes(out)


def _new_document():
    from krita import Krita

    return Krita.instance().createDocument(W, H, "sketchfill-smoke", "RGBA", "U8", "", 300.0)


def document_pixels(args):
    """Create a document, add a paint layer, write and read B,G,R,A pixels."""
    doc = _new_document()
    info = {"model": doc.colorModel(), "depth": doc.colorDepth()}
    root = doc.rootNode()
    info["initial_layers"] = [[n.name(), n.type()] for n in root.childNodes()]
    bottom = root.childNodes()[0] if root.childNodes() else None
    layer = doc.createNode("sketchfill", "paintlayer")
    info["added"] = bool(root.addChildNode(layer, bottom))
    data = pattern_bgra()
    layer.setPixelData(data, 0, 0, W, H)
    doc.refreshProjection()
    doc.waitForDone()
    back = bytes(layer.pixelData(0, 0, W, H))
    info["layers"] = [[n.name(), n.type()] for n in root.childNodes()]
    info["roundtrip_equal"] = back == data
    info["back_hex"] = back.hex()
    # independent check of the channel order: QImage knows which byte is red
    qimg = doc.projection(0, 0, W, H)
    c = qimg.pixelColor(1, 2)
    info["qcolor_rgba_1_2"] = [c.red(), c.green(), c.blue(), c.alpha()]
    i = (2 * W + 1) * 4
    info["bytes_1_2"] = list(back[i : i + 4])
    info["outside_hex"] = bytes(layer.pixelData(W, H, 2, 1)).hex()
    doc.close()
    return info


def zmq_roundtrip(args):
    """DEALER to the pytest ROUTER at args[0]: JSON header + a raw B,G,R,A layer frame."""
    import zmq

    endpoint = args[0]
    doc = _new_document()
    layer = doc.createNode("sketchfill", "paintlayer")
    doc.rootNode().addChildNode(layer, None)
    layer.setPixelData(pattern_bgra(), 0, 0, W, H)
    doc.waitForDone()
    pixels = bytes(layer.pixelData(0, 0, W, H))
    doc.close()
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        header = {"protocol": 1, "op": "probe", "from": "krita", "python": sys.version}
        sock.send_multipart([json.dumps(header).encode(), pixels])
        if not sock.poll(10000):
            return {"error": f"no reply from {endpoint} in 10 s", "zmq": zmq.__version__}
        frames = sock.recv_multipart()
    finally:
        sock.close()
    reply = json.loads(frames[0])
    return {
        "zmq": zmq.__version__,
        "libzmq": zmq.zmq_version(),
        "zmq_file": zmq.__file__,
        "reply": reply,
        "sent_sha256": hashlib.sha256(pixels).hexdigest(),
        "frame_back_hex": frames[1].hex() if len(frames) > 1 else None,
    }
