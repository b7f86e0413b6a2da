"""`sketchfill train-composite`: train the composite network, self-supervised.

Every step draws scenes from the photos (data.py): a relit copy of a photo's face
pasted over the same photo with another face in place; the network must give back the
untouched photo. Losses: L1 over the photo, weighted up inside the face region, and L1 of
the image gradients (what a seam is made of), weighted up along the mask's edge.
`RUN/composite.pt` holds everything for --resume and what `sketchfill export-composite`
reads; it is written via temp file + rename.

The CLI imports this module to build its parser: torch is imported inside `run` only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...training.cli import add_loop_arguments, run_trainer
from .card import CHECKPOINT

HELP = "train the composite network on a folder of face photos (self-supervised)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, nargs="+", help="folders of face photos")
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, samples)")
    p.add_argument("--res", type=int, default=128, help="network resolution")
    p.add_argument("--steps", type=int, default=6000, help="total optimiser steps")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--width", type=int, default=16, help="network base width")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--face-weight", type=float, default=4.0, help="extra L1 weight in the face")
    p.add_argument("--gradient-weight", type=float, default=1.0, help="gradient loss weight")
    p.add_argument(
        "--seam-weight", type=float, default=0.0, help="extra gradient weight along the mask edge"
    )
    add_loop_arguments(p, CHECKPOINT, log_every=50)


def run(args: argparse.Namespace) -> int:
    from .trainer import CompositeTrainer

    return run_trainer(args, 64, lambda started: CompositeTrainer(args, started))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="sketchfill train-composite", description=HELP)
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
