"""`sketchfill train-tone`: train the auto tone network without paired data.

Losses (the tone patent): colour = MSE between the enhanced photo and the fixed algorithm's
answer for the same input; naturalness = least-squares GAN loss from a critic that sees
untouched photos as real; artifact = MSE between the input and what an inverse network
makes of the enhanced photo (so the enhancer keeps what it cannot give back, e.g. no
clipped highlights). Total = weighted sum. `RUN/tone.pt` holds everything for --resume
and what `sketchfill export-tone` reads; it is written via temp file + rename.

The CLI imports this module to build its parser: torch is imported inside `run` only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...training.cli import add_loop_arguments, run_trainer
from .card import CHECKPOINT

HELP = "train the auto tone network on folders of photos (no pairs needed)"
DEFAULT_WEIGHTS = {"color": 1.0, "natural": 0.05, "artifact": 0.5}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data", required=True, type=Path, nargs="+", help="folders of photos (any subject)"
    )
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoint, samples)")
    p.add_argument("--res", type=int, default=128, help="training and thumbnail size")
    p.add_argument("--steps", type=int, default=4000, help="total optimiser steps")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--width", type=int, default=24, help="tone network base width")
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument(
        "--loss-weights",
        default="",
        metavar="K=V,...",
        help=f"override loss weights (defaults {DEFAULT_WEIGHTS})",
    )
    add_loop_arguments(p, CHECKPOINT, log_every=50)


def parse_weights(text: str) -> dict[str, float]:
    weights = dict(DEFAULT_WEIGHTS)
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in weights:
            raise ValueError(f"unknown loss weight {key!r}; known: {', '.join(weights)}")
        weights[key] = float(value)
    return weights


def run(args: argparse.Namespace) -> int:
    try:
        weights = parse_weights(args.loss_weights)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    from .trainer import ToneTrainer

    return run_trainer(args, 32, lambda started: ToneTrainer(args, weights, started))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="sketchfill train-tone", description=HELP)
    add_arguments(parser)
    sys.exit(run(parser.parse_args()))
