"""The composite tool's trained file.

Torch-free: the train command (train.py), the trainer and the export all read these.
"""

from __future__ import annotations

CHECKPOINT = "composite.pt"
FORMAT = "sketchfill-composite/1"
