"""The tone tool's trained file and what its model card says about its evaluation.

Torch-free: the train command (train.py), the trainer and the export all read these.
"""

from __future__ import annotations

import json
from pathlib import Path

CHECKPOINT = "tone.pt"
FORMAT = "sketchfill-tone/1"


def card_metrics(path: Path) -> dict:
    """The summary of an `eval-tone` JSON for the card (the per-image rows stay out)."""
    found = json.loads(path.read_text(encoding="utf-8"))
    return {
        "methods": found["methods"],
        "images": found["images"],
        "faults": found["faults"],
        "size": found["size"],
        "data": Path(found["data"]).name,
        "reference": [Path(r).name for r in found["reference"]],
        "protocol": "sketchfill eval-tone: seeded synthetic tone faults per held-out photo; "
        "ntd = natural-tone distance (Mahalanobis distance of CIELAB tone statistics from "
        "the reference photos' Gaussian, lower is better); psnr and delta_e (CIEDE2000) "
        "against the untouched photo",
    }
