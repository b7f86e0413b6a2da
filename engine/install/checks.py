"""Checking an installed plug-in: its files, its client.json, its pyzmq, kritarc, and that
its client imports in this Python."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..wire.config import ClientConfig
from ..wire.errors import EngineError
from . import plugins
from .discovery import GIMP, Platform, Target
from .kritarc import kritarc_enabled
from .wheels import vendored_pythons


def check_client_imports(plugin_dir: Path, python: str = sys.executable) -> str | None:
    """Import the plug-in's client in a clean interpreter (no site-packages, no user
    paths: only the plug-in folder), as a host without pyzmq would, writing no bytecode
    into the user's profile. None when it works."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import sketchfill_client.client, zmq; "
        "assert zmq.__file__.startswith(sys.argv[1]), zmq.__file__"
    )
    run = subprocess.run(
        [python, "-I", "-S", "-B", "-c", code, str(plugin_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if run.returncode == 0:
        return None
    return (run.stderr.strip().splitlines() or ["no output"])[-1]


def check_target(t: Target, p: Platform) -> list[str]:
    """What is wrong with an installed plug-in, in words; empty when it is complete."""
    d = t.plugin_dir
    entry = d / (f"{plugins.PLUGIN_NAME}.py" if t.app == GIMP else "__init__.py")
    wanted = [
        entry,
        d / plugins.CLIENT_PACKAGE / "client.py",
        d / plugins.VENDOR / "zmq" / "__init__.py",
    ]
    wanted += t.paths
    missing = [str(path) for path in wanted if not path.exists()]
    if missing:
        return [f"{t.label}: missing {', '.join(missing)}"]
    problems = []
    try:
        config = ClientConfig.load(d / "client.json")
    except EngineError as exc:
        return [f"{t.label}: {exc.message}"]
    engine = [c for c in config.engine_command if c not in ("flatpak-spawn", "--host")]
    if engine and Path(engine[0]).is_absolute() and not Path(engine[0]).exists():
        problems.append(f"{t.label}: the engine command {engine[0]} does not exist")
    if not vendored_pythons(d / plugins.VENDOR):
        problems.append(f"{t.label}: {d / plugins.VENDOR} has no pyzmq record")
    if t.kritarc is not None:
        rc = t.kritarc.read_bytes() if t.kritarc.is_file() else b""
        if not kritarc_enabled(rc):
            problems.append(
                f"{t.label}: the plug-in is not enabled in {t.kritarc} (Krita rewrites that file "
                "when it quits: close Krita, then run the installer with --repair)"
            )
    if p.runs_here:
        error = check_client_imports(d)
        if error:
            problems.append(f"{t.label}: the plug-in's client does not import here: {error}")
    return problems
