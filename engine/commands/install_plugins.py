"""`sketchfill install-plugins`: put the GIMP 3 and Krita plug-ins in place for this engine.

The installers (installers/install.sh, install.ps1) run it from the engine's virtual
environment; users who installed the package themselves run it directly.
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
from pathlib import Path

from .. import install
from ..pipeline.runtime import user_data_dir
from ..wire.protocol import DEFAULT_ENDPOINT

HELP = "install, repair or remove the GIMP 3 and Krita plug-ins (and the shipped models)"
# A checkout's models/ (editable installs); the installers pass --models themselves.
_CHECKOUT_MODELS = Path(__file__).resolve().parents[2] / "models"


def add_arguments(p: argparse.ArgumentParser) -> None:
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--uninstall",
        action="store_true",
        help="remove what the installer put in place (listed in its manifest)",
    )
    mode.add_argument(
        "--repair",
        action="store_true",
        help="install again with the remembered settings, also into profiles that appeared "
        "since (a host update), and check every plug-in",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument(
        "--gimp-dir",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="a GIMP 3 profile folder (e.g. ~/.config/GIMP/3.0) instead of searching; repeatable",
    )
    p.add_argument(
        "--krita-dir",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="a Krita resource folder (the one holding pykrita/) instead of searching; repeatable",
    )
    p.add_argument(
        "--kritarc", type=Path, metavar="FILE", help="Krita's settings file for --krita-dir"
    )
    p.add_argument("--no-gimp", action="store_true", help="leave GIMP alone")
    p.add_argument("--no-krita", action="store_true", help="leave Krita alone")
    p.add_argument(
        "--engine-venv",
        type=Path,
        metavar="DIR",
        help="the virtual environment the plug-ins start the engine from (default: this "
        "Python's sketchfill command)",
    )
    p.add_argument(
        "--endpoint",
        help=f"engine endpoint for the plug-ins (default: kept from an earlier install, else "
        f"{DEFAULT_ENDPOINT})",
    )
    p.add_argument(
        "--autostart",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="let the plug-ins start the engine when none answers (default: kept, else on)",
    )
    p.add_argument(
        "--wheels",
        type=Path,
        metavar="DIR",
        help="take pyzmq wheels from DIR instead of downloading them (offline installs)",
    )
    p.add_argument(
        "--models",
        type=Path,
        metavar="DIR",
        default=_CHECKOUT_MODELS if _CHECKOUT_MODELS.is_dir() else None,
        help="folder of model folders to install into the user's data folder (default: the "
        "checkout's models/)",
    )


def engine_command(venv: Path | None, system: str) -> list[str]:
    if venv is not None:
        return install.engine_command_for(venv.expanduser().absolute(), system)
    script = Path(sysconfig.get_path("scripts")) / (
        "sketchfill.exe" if system == "windows" else "sketchfill"
    )
    # Without the script (e.g. a --user install), Python itself runs the engine.
    return [str(script)] if script.is_file() else [sys.executable, "-m", "sketchfill.cli"]


def run(args: argparse.Namespace) -> int:
    p = install.Platform.current(user_data_dir())
    settings = install.Settings(
        engine_command=engine_command(args.engine_venv, p.system),
        engine_venv=args.engine_venv.expanduser().absolute() if args.engine_venv else None,
        endpoint=args.endpoint,
        autostart=args.autostart,
        gimp=not args.no_gimp,
        krita=not args.no_krita,
        gimp_dirs=[d.expanduser().absolute() for d in args.gimp_dir],
        krita_dirs=[d.expanduser().absolute() for d in args.krita_dir],
        kritarc=args.kritarc.expanduser().absolute() if args.kritarc else None,
        wheels=args.wheels.expanduser().absolute() if args.wheels else None,
        models=args.models.expanduser().absolute() if args.models else None,
    )
    try:
        if args.dry_run and (p.data_dir / install.JOURNAL).exists():
            print(
                f"An interrupted run left {p.data_dir / install.JOURNAL}: the next run undoes it."
            )
        elif not args.dry_run:
            recovered = install.recover(p.data_dir)
            if recovered:
                print(f"First {recovered}.")
        if args.uninstall:
            plan = install.plan_uninstall(p)
        elif args.repair:
            plan = install.plan_repair(p, settings)
        else:
            plan = install.plan_install(p, settings)
    except (install.InstallError, OSError) as exc:
        print(f"sketchfill install-plugins: {exc}", file=sys.stderr)
        return 1
    print(plan.report())
    if args.dry_run:
        print("Dry run: nothing was changed.")
        return 0
    try:
        install.apply(plan)
    except install.InstallError as exc:
        print(f"\nsketchfill install-plugins failed: {exc}", file=sys.stderr)
        return 1
    done = {
        "install": "Installed; every plug-in checks out.",
        "repair": "Repaired; every plug-in checks out.",
        "uninstall": "Uninstalled.",
    }
    print(done[plan.kind])
    return 0
