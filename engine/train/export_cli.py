"""The command-line side the small networks' exports share (export-tone,
export-composite): their arguments and the run wrapper. No torch here: the CLI imports
this to build its parser."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path


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
