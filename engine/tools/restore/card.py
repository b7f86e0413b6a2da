"""The restore tool's trained file and what its model card says about its evaluation.

Torch-free: the train command (train.py), the trainer and the export all read these.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...training.report import card_metrics

CHECKPOINT = "restore.pt"
FORMAT = "sketchfill-restore/1"


def restore_metrics(path: Path) -> dict:
    """The evaluation summary for the card, with the per-group tables (side, other)."""
    found = json.loads(path.read_text(encoding="utf-8"))
    return {**card_metrics(path), "groups": found["groups"], "masks": found["masks"]}
