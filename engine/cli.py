"""`sketchfill` command line: one subcommand per job.

Each subcommand lives in its own module exposing HELP, add_arguments(parser) and
run(args) -> exit code. Modules are imported only to build the parser, so none of them
may import torch at module level: `sketchfill serve` must start fast without it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__

COMMANDS: dict[str, str] = {
    "serve": "sketchfill.commands.serve",
    "hello": "sketchfill.commands.hello",
    "edit": "sketchfill.tools.edit.commands",
    "tone": "sketchfill.tools.tone.commands",
    "composite": "sketchfill.tools.composite.commands",
    "restore": "sketchfill.tools.restore.commands",
    "keys": "sketchfill.commands.keys",
    "broker": "sketchfill.commands.broker",
    "install-plugins": "sketchfill.commands.install_plugins",
    "demo": "sketchfill.commands.demo",
    "prepare-faces": "sketchfill.training.prepare_faces",
    "train": "sketchfill.tools.edit.train",
    "train-bundle": "sketchfill.training.bundle",
    "train-tone": "sketchfill.tools.tone.train",
    "train-composite": "sketchfill.tools.composite.train",
    "train-restore": "sketchfill.tools.restore.train",
    "export": "sketchfill.tools.edit.export",
    "export-tone": "sketchfill.tools.tone.export",
    "export-composite": "sketchfill.tools.composite.export",
    "export-restore": "sketchfill.tools.restore.export",
    "convert-facemesh": "sketchfill.training.facemesh_convert",
    "eval": "sketchfill.tools.edit.evaluate",
    "crop-stats": "sketchfill.tools.edit.crop_stats",
    "eval-tone": "sketchfill.tools.tone.evaluate",
    "eval-composite": "sketchfill.tools.composite.evaluate",
    "eval-restore": "sketchfill.tools.restore.evaluate",
    "bench": "sketchfill.commands.bench",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sketchfill",
        description="Sketch- and colour-guided face editing engine.",
    )
    parser.add_argument("--version", action="version", version=f"sketchfill {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            # A command whose optional dependencies are missing still shows up, and says why.
            p = sub.add_parser(name, help=f"(unavailable: {exc})")
            p.set_defaults(func=_unavailable(name, exc))
            continue
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def _unavailable(name: str, exc: ImportError):
    def run(args: argparse.Namespace) -> int:
        print(
            f"sketchfill {name} needs extra packages ({exc}); install them with "
            "pip install 'sketchfill[train]'",
            file=sys.stderr,
        )
        return 2

    return run


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
