"""The command-line side the small networks' commands share (train-tone, train-composite,
train-restore and their exports): argument checks, starting a trainer, export arguments and
the export run wrapper. No torch here: the CLI imports this to build its parser."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_NOTE = (
    "face photos under non-commercial or unclear licences (see ../shared/data/faces "
    "MANIFEST.tsv): non-commercial research use only"
)


def add_loop_arguments(p: argparse.ArgumentParser, checkpoint: str, log_every: int) -> None:
    """The step loop's own options (training/step_loop.py), after the network's."""
    p.add_argument("--resume", action="store_true", help=f"continue from RUN/{checkpoint}")
    p.add_argument("--time-limit", type=float, default=None, metavar="MINUTES")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=log_every)
    p.add_argument("--save-every", type=float, default=5.0, metavar="MINUTES")
    p.add_argument("--data-note", default=DEFAULT_NOTE, help="licence note for the model card")


def add_export_arguments(p: argparse.ArgumentParser, trained_by: str, name: str) -> None:
    """`trained_by`: the train command (e.g. "train-tone"); `name`: the default model name."""
    evaluated_by = trained_by.replace("train-", "eval-")
    p.add_argument("checkpoint", type=Path, help=f"checkpoint from `sketchfill {trained_by}`")
    p.add_argument("-o", "--out", type=Path, default=Path("models"), help="models folder")
    p.add_argument("--name", default=name)
    p.add_argument("--version", default=None, help="model version (default: from the step)")
    p.add_argument(
        "--metrics", type=Path, default=None, help=f"JSON from `sketchfill {evaluated_by}`"
    )
    p.add_argument("--schedule", default="", help="how the run was trained, in words, for the card")
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--opset", type=int, default=17)


def run_export(export: Callable[[argparse.Namespace], Path], args: argparse.Namespace) -> int:
    from .exporting import ExportError

    try:
        folder = export(args)
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    print(f"wrote {folder}: {card['name']} {card['version']} (sha256 {card['sha256'][:12]}...)")
    return 0


def check_training_args(args: argparse.Namespace, min_res: int) -> str | None:
    """What is wrong with --res and --data, in a sentence, or None."""
    if args.res % 16 or args.res < min_res:
        return f"--res must be a multiple of 16 (at least {min_res})"
    for folder in args.data:
        if not folder.is_dir():
            return f"no such folder: {folder}"
    return None


def run_trainer(
    args: argparse.Namespace, min_res: int, make_trainer: Callable[[float], Any]
) -> int:
    """Check --res and --data, build the trainer from the start time (ValueError: no
    photos, a checkpoint of another run), let SIGTERM stop it cleanly with a checkpoint,
    and train."""
    started = time.monotonic()
    problem = check_training_args(args, min_res)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    try:
        trainer = make_trainer(started)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: trainer.request_stop())
    return trainer.train()
