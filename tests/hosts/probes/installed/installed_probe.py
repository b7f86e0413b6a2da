"""Run under kritarunner: the SketchFill plug-in imported from the folder the installer
wrote (args[0], its pykrita/), with a pyzmq on the path that fails to import (args[1]), so
only the installer's vendored pyzmq can serve. Edits the demo face through the installed
client.json (auto-start of the installed engine)."""

import sys


def installed_edit(args):
    pykrita, broken_zmq, probes = args
    for name in [m for m in sys.modules if m.split(".")[0] in ("zmq", "sketchfill")]:
        del sys.modules[name]
    sys.path[:0] = [pykrita, broken_zmq, probes]
    import krita_plugin_probe as probe
    import sketchfill

    out = probe.autostart([])
    import zmq

    out["plugin_file"] = sketchfill.__file__
    out["zmq_file"] = zmq.__file__
    return out
