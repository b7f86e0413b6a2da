"""Laying the plug-ins out in a host's profile, with the shared client beside them.

Used by `sketchfill install-plugins` and the installers, and by the real-host tests, so
the tests load the plug-ins exactly as users get them. The plug-in sources ship inside the
package (sketchfill.plugin_gimp and .plugin_krita, from plugin_gimp/ and plugin_krita/).
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path

PLUGIN_NAME = "sketchfill"
CLIENT_PACKAGE = "sketchfill_client"
# The whole of engine/wire/ but its __init__ (the package gets _CLIENT_INIT instead).
CLIENT_FILES = (
    "protocol.py",
    "errors.py",
    "requests.py",
    "config.py",
    "client.py",
    "launch.py",
    "roles.py",
)
_WIRE = Path(__file__).resolve().parents[1] / "wire"
VENDOR = "vendor"

# The client package's __init__: hosts' Pythons (GIMP's, Krita's) rarely have pyzmq, so the
# installer unpacks pyzmq for each supported CPython into the plug-in's vendor/ folder. The
# host's own pyzmq wins when it has one; the vendored one is used only when none imports.
_CLIENT_INIT = '''"""SketchFill thin client (copied by the installer)."""

import os
import sys

try:
    import zmq  # noqa: F401
except ImportError:
    _vendor = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vendor")
    sys.path.insert(0, _vendor)
    try:
        import zmq  # noqa: F401
    except ImportError as exc:
        sys.path.remove(_vendor)
        raise ImportError(
            "SketchFill needs pyzmq, which this Python %d.%d lacks, and the plug-in's folder "
            "%s holds none that loads here (%s): run the SketchFill installer again with "
            "--repair" % (sys.version_info[0], sys.version_info[1], _vendor, exc)
        ) from None
'''


def plugin_source(host: str) -> Path:
    if host not in ("gimp", "krita"):
        raise ValueError(f"unknown host {host!r}")
    with resources.as_file(resources.files(f"sketchfill.plugin_{host}")) as path:
        return Path(path)


def write_client_package(dest: Path) -> Path:
    """The thin client as a package `sketchfill_client` inside `dest`."""
    pkg = dest / CLIENT_PACKAGE
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(_CLIENT_INIT, encoding="utf-8")
    for name in CLIENT_FILES:
        shutil.copyfile(_WIRE / name, pkg / name)
    return pkg


def stage_gimp(plug_ins: Path, *, source: Path | None = None, vendor: Path | None = None) -> Path:
    """Copy the GIMP plug-in into a `plug-ins` folder: plug-ins/sketchfill/sketchfill.py
    (GIMP skips files put directly in plug-ins/), with the client beside it.

    source: a folder laid out like plugin_gimp/ (default: the one in the package);
    vendor: unpacked pyzmq (see wheels.py) to copy in as the plug-in's vendor/ folder.
    """
    target = plug_ins / PLUGIN_NAME
    _copy_tree((source or plugin_source("gimp")) / PLUGIN_NAME, target)
    write_client_package(target)
    _copy_vendor(vendor, target)
    entry = target / f"{PLUGIN_NAME}.py"
    entry.chmod(entry.stat().st_mode | 0o111)
    return target


def stage_krita(pykrita: Path, *, source: Path | None = None, vendor: Path | None = None) -> Path:
    """Copy the Krita plug-in into a `pykrita` folder: sketchfill.desktop + sketchfill/
    (source and vendor as for stage_gimp)."""
    source = source or plugin_source("krita")
    pykrita.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / f"{PLUGIN_NAME}.desktop", pykrita / f"{PLUGIN_NAME}.desktop")
    target = pykrita / PLUGIN_NAME
    _copy_tree(source / PLUGIN_NAME, target)
    write_client_package(target)
    _copy_vendor(vendor, target)
    return target


def _copy_vendor(vendor: Path | None, target: Path) -> None:
    if vendor is not None:
        _copy_tree(vendor, target / VENDOR)


def _copy_tree(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"))
    os.utime(target)
