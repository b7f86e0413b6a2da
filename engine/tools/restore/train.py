"""`sketchfill train-restore`: train the restore generator (mask-only face restoration
with the face-structure prior).

Starts from the edit generator's weights (`--init`, an exported model folder): the restore
network is the same gated U-Net with the prior where the edit tool has its guides
(modelcard.RESTORE_CHANNELS). Every step draws occluder masks on the training faces
(occluders.py) and renders the prior from what they leave visible (data.py);
`--no-prior` trains the same network with the prior's channels left empty, the ablation the
evaluation compares against. Losses: SC-FEGAN's L1 (more in the hole), perceptual and style
on VGG16 features and total variation; no adversarial term. `RUN/restore.pt` holds
everything for --resume and what `sketchfill export-restore` reads.

The CLI imports this module to build its parser: torch is imported inside `run` only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...training.cli import add_loop_arguments, run_trainer
from .card import CHECKPOINT

HELP = "train the restore generator on a folder of face photos (occluder masks, UV prior)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, nargs="+", help="folders of face photos")
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, samples)")
    p.add_argument(
        "--init",
        default="sketchfill-face",
        help="edit model (folder or name) whose generator weights start the run (not on --resume)",
    )
    p.add_argument("--no-prior", action="store_true", help="ablation: leave the prior out")
    p.add_argument("--res", type=int, default=128, help="training resolution")
    p.add_argument("--steps", type=int, default=3000, help="total optimiser steps")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument(
        "--loss-weights",
        default="",
        metavar="K=V,...",
        help="override loss weights, e.g. style=0 (defaults: losses.LossWeights, adv=0)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    add_loop_arguments(p, CHECKPOINT, log_every=25)


def run(args: argparse.Namespace) -> int:
    from .trainer import RestoreTrainer

    return run_trainer(args, 64, lambda started: RestoreTrainer(args, started))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="sketchfill train-restore", description=HELP)
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
