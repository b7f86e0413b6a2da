"""`sketchfill export`: a training checkpoint -> models/<name>/model.onnx + model.json.

The ONNX graph is checked against torch on training-style inputs (fails above
--tolerance), timed with ONNX Runtime as the engine runs it (2 threads, ORT_ENABLE_ALL) and
described by a model card (modelcard.py) with the training summary and, when given, the
evaluation metrics. `--int8` also writes <name>-int8/: static QDQ quantisation (U8
activations, S8 per-channel weights, calibrated on training-style inputs), with its quality
and speed against float32 in its card.

The CLI imports this module to build its parser: torch and onnx are imported in `run` only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HELP = "export a trained generator to ONNX with its model card"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "checkpoint",
        type=Path,
        help="generator.pt or last.pt written by `sketchfill train` (or its folder)",
    )
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("models"),
        help="models folder; the model goes to OUT/NAME/ (default: models)",
    )
    p.add_argument(
        "--name", default=None, help="model name (default: the engine's default, sketchfill-face)"
    )
    p.add_argument("--version", default=None, help="model version (default: from the step)")
    p.add_argument(
        "--schedule",
        default="",
        help="how the run was trained, in words (phases, resolutions, losses), for the card",
    )
    p.add_argument(
        "--res",
        type=int,
        default=None,
        help="square size the ONNX graph takes (default: the training resolution)",
    )
    p.add_argument(
        "--metrics",
        type=Path,
        default=None,
        help="JSON written by `sketchfill eval`, copied into the card",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=1e-3,
        help="largest allowed |torch - ONNX Runtime| output difference",
    )
    p.add_argument(
        "--int8", action="store_true", help="also write a statically quantised <name>-int8 model"
    )
    p.add_argument(
        "--calib-data",
        type=Path,
        default=None,
        help="images for parity inputs and int8 calibration (default: the training "
        "folder recorded in the checkpoint, if it exists here)",
    )
    p.add_argument("--calib-count", type=int, default=16, help="calibration inputs for --int8")
    p.add_argument("--cache", type=Path, default=None, help="guide cache (see train --cache)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument(
        "--license",
        default=None,
        help="the card's licence line (default: commercial use allowed unless the training "
        "data's note says non-commercial)",
    )
    p.add_argument(
        "--notice",
        type=Path,
        default=None,
        metavar="MANIFEST",
        help="manifest (TSV with file and licence columns, as prepare-faces writes) of the "
        "training photos: writes NOTICE.md with their licences and attributions beside the model",
    )
    p.add_argument(
        "--notice-data",
        type=Path,
        default=None,
        help="the training folder whose photos --notice counts (default: the checkpoint's)",
    )


def run(args: argparse.Namespace) -> int:
    from ...training.exporting import ExportError
    from .generator_export import export

    try:
        folders = export(args)
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    for folder in folders:
        card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
        print(
            f"wrote {folder}: {card['name']} {card['version']} "
            f"({card['resolution']} px, sha256 {card['sha256'][:12]}...)"
        )
    return 0
