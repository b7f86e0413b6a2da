"""`sketchfill train`: train the generator (SC-FEGAN losses) on a folder of images.

One process per device; several through torchrun (DDP: NCCL on CUDA, gloo on CPU):
    torchrun --nproc_per_node 8 -m sketchfill.tools.edit.train --data DIR --out RUN ...
Every process computes its own share of each batch (see dataset.StepSampler); rank 0 logs,
writes sample grids and checkpoints. `RUN/last.pt` holds everything needed to resume;
`RUN/generator.pt` only the EMA generator weights in float16 (small enough to copy off a
GPU box; `sketchfill export` reads either). Both are written via temp file + rename.

This module is imported by the CLI to build its parser: torch and the data pipeline are
imported inside `run` only.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

HELP = "train the sketch/colour-guided generator on a folder of images"

DEFAULT_NOTE = (
    "face photos under non-commercial or unclear licences (CelebA-HQ, CelebAMask-HQ, "
    "FFHQ CC BY-NC-SA 4.0, web photos of public figures): non-commercial research use only"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="folder of training images")
    p.add_argument(
        "--prepare",
        action="store_true",
        help="--data holds raw photos: align them first with `prepare-faces` at --guide-size "
        "(its default filters), cached and resumed, so later runs align only new photos",
    )
    p.add_argument(
        "--prepare-cache",
        type=Path,
        default=None,
        help="where --prepare keeps the aligned crops; default beside the guide cache "
        "($SKETCHFILL_CACHE/../prepared or ~/.cache/sketchfill/prepared)",
    )
    p.add_argument("--out", required=True, type=Path, help="run folder (checkpoints, samples)")
    p.add_argument(
        "--res",
        type=int,
        default=256,
        help="training resolution (256 or 512; any multiple of 16 for tests)",
    )
    p.add_argument("--steps", type=int, default=20000, help="total optimiser steps")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue from RUN/last.pt if present (else from RUN/generator.pt: generator "
        "weights only)",
    )
    p.add_argument("--batch", type=int, default=8, help="images per step per process")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="DataLoader workers per process (default: CPU cores - 1, at most 15)",
    )
    p.add_argument("--width", type=int, default=32, help="generator base width")
    p.add_argument("--d-width", type=int, default=64, help="discriminator base width")
    p.add_argument("--lr", type=float, default=2e-4, help="Adam learning rate (G and D)")
    p.add_argument(
        "--time-limit",
        type=float,
        default=None,
        metavar="MINUTES",
        help="checkpoint and stop cleanly before this much wall time has passed",
    )
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="guide cache (HED ridges, regions, compact VGG); default "
        "$SKETCHFILL_CACHE/../guides or ~/.cache/sketchfill/guides",
    )
    p.add_argument(
        "--guide-size", type=int, default=512, help="side at which guides are computed and cached"
    )
    p.add_argument(
        "--loss-weights",
        default="",
        metavar="K=V,...",
        help="override loss weights, e.g. adv=0.01,style=60",
    )
    p.add_argument(
        "--d-augment",
        default="color,translation,cutout",
        metavar="OPS",
        help="DiffAugment operations on the discriminator's inputs, real and generated alike "
        "(color, translation, cutout; 'none' to switch off)",
    )
    p.add_argument("--log-every", type=int, default=20, help="steps between progress lines")
    p.add_argument("--sample-every", type=int, default=500, help="steps between sample grids")
    p.add_argument(
        "--save-every",
        type=float,
        default=5.0,
        metavar="MINUTES",
        help="minutes between checkpoints",
    )
    p.add_argument(
        "--data-note",
        default=DEFAULT_NOTE,
        help="licence/provenance note of the data, copied into the model card",
    )


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()  # --time-limit counts from here, before torch is imported
    from .trainer import Trainer

    if args.res % 16 or args.res < 32:
        print("--res must be a multiple of 16 (at least 32)", file=sys.stderr)
        return 2
    if args.res > args.guide_size:
        print("--res cannot exceed --guide-size", file=sys.stderr)
        return 2
    if args.prepare:
        problem = _prepare_data(args)
        if problem:
            print(problem, file=sys.stderr)
            return 2
    trainer = Trainer(args, started)
    # SIGTERM (e.g. from `timeout`) checkpoints and stops like the time limit does.
    signal.signal(signal.SIGTERM, lambda *_: trainer.request_stop())
    try:
        return trainer.train()
    finally:
        trainer.close()


def _prepare_data(args: argparse.Namespace) -> str | None:
    """Point args.data at the aligned copy of the raw folder; what went wrong, or None."""
    from ...training.guides import default_cache
    from ...training.prepare_faces import PrepareError
    from ...training.prepared import cached

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # every rank would align into the same folder at once
        return "--prepare runs in one process: run `sketchfill prepare-faces` before torchrun"
    cache = args.prepare_cache or default_cache().parent / "prepared"
    try:
        args.data = cached(args.data, args.guide_size, cache)
    except (PrepareError, ValueError) as exc:
        return f"--prepare: {exc}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m sketchfill.tools.edit.train` (what torchrun launches)."""
    parser = argparse.ArgumentParser(prog="sketchfill train", description=HELP)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
