"""Small helpers for code that runs INSIDE a host during tests (GIMP's or Krita's Python).

Standard library only (plus ``gi`` in GIMP, imported lazily). hostenv puts this folder on
PYTHONPATH for GIMP batch scripts, GIMP plug-ins started by them, and kritarunner modules.
"""

import json
import os
import subprocess
import time
from pathlib import Path


def workdir():
    """The run's private folder (same path inside and outside the chroot)."""
    return Path(os.environ["SKETCHFILL_WORKDIR"])


def write_result(obj, name="result.json"):
    """Write obj as JSON into the run folder (hostenv's HostRun.result reads result.json)."""
    path = workdir() / name
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, default=repr))
    os.replace(tmp, path)
    return path


def _xdotool(*args):
    return subprocess.run(["xdotool", *args], capture_output=True, text=True, check=False)


def gimp_image_window(image, timeout=10.0):
    """X window id of the GIMP image window showing image (GUI mode under Xvfb only).
    Creates a display for the image if it has none."""
    from gi.repository import Gimp

    if not os.environ.get("DISPLAY"):
        raise RuntimeError("no X display: run the batch with run_gimp_batch(..., gui=True)")
    if not Gimp.Display.id_is_valid(getattr(image, "_sketchfill_display_id", -1)):
        image._sketchfill_display_id = Gimp.Display.new(image).get_id()
    Gimp.displays_flush()
    # default title format "%D*%f-%p.%i (%t, %L) %wx%h": %p is the image id
    pattern = f"[-]{image.get_id()}[.][0-9]+ [(]"  # a leading "-" would be an option
    deadline = time.monotonic() + timeout
    while True:
        ids = _xdotool("search", "--name", pattern).stdout.split()
        if ids:
            return ids[0]
        if time.monotonic() > deadline:
            wids = _xdotool("search", "--name", ".").stdout.split()
            names = [_xdotool("getwindowname", w).stdout.strip() for w in wids]
            raise RuntimeError(f"no window for image {image.get_id()}; windows: {names}")
        time.sleep(0.1)


def _layer_state(image):
    return ([item.get_id() for item in image.get_layers()], image.is_dirty())


def gimp_gui_keys(image, keys, *, until=None, timeout=10.0):
    """Press keys (xdotool syntax, e.g. "ctrl+z") in image's window; then wait until
    ``until()`` is true (default: the layer list or dirty flag changed). Returns whether
    the condition was met before timeout."""
    from gi.repository import Gimp

    wid = gimp_image_window(image, timeout=timeout)
    before = _layer_state(image)
    if until is None:

        def until():
            return _layer_state(image) != before

    r = _xdotool("windowfocus", "--sync", wid, "key", "--clearmodifiers", *keys.split())
    if r.returncode != 0:
        raise RuntimeError(f"xdotool failed: {r.stderr.strip()}")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if until():
            Gimp.displays_flush()
            return True
        time.sleep(0.05)
    return False


def gimp_gui_undo(image, steps=1, *, until=None, timeout=10.0):
    """Edit > Undo, ``steps`` times, in the GUI (the PDB has no undo in GIMP 3)."""
    done = True
    for _ in range(steps):
        done = gimp_gui_keys(image, "ctrl+z", until=until, timeout=timeout) and done
    return done


def rgba_hex(data, limit=64):
    """Short hex dump of pixel bytes for messages."""
    return bytes(data[:limit]).hex() + ("..." if len(data) > limit else "")


def noop(args=None):
    """Does nothing (kritarunner warm-up target)."""
    return "ok"
