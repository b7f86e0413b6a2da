"""Subcommands of the `sketchfill` CLI that drive the engine (see cli.py)."""

from __future__ import annotations

import argparse

from .. import protocol


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """--engine and --in-process: commands that use a running engine when one answers."""
    p.add_argument(
        "--engine",
        default=protocol.DEFAULT_ENDPOINT,
        help="use the engine at this endpoint when one answers (%(default)s)",
    )
    p.add_argument(
        "--in-process", action="store_true", help="do not look for an engine; run the model here"
    )
