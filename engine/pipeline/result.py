"""What every tool hands back, and how it fails: the patch over the mask's bounding box,
the error a request cannot get past, and the progress callback.

The tools share these, so the server, the CLI and the evaluations treat every tool's
outcome alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..wire.protocol import BAD_REQUEST, Box

Progress = Callable[[str, float], None]


class EditError(Exception):
    """Inputs the edit cannot work on; `code` is a protocol error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def opencv(baselines: str):
    """OpenCV for the classic baselines (the `train` extra): the engine itself never needs
    it, so a missing one is an EditError that says what to install."""
    try:
        import cv2
    except ImportError:
        raise EditError(
            BAD_REQUEST, f"the {baselines} baselines need OpenCV: pip install 'sketchfill[train]'"
        ) from None
    return cv2


@dataclass
class EditResult:
    """The RGBA patch over the mask's bounding box, at (x, y) of the inputs' rectangle."""

    patch: np.ndarray
    x: int
    y: int
    seed: int

    @property
    def box(self) -> Box:
        return Box(self.x, self.y, self.patch.shape[1], self.patch.shape[0])


def apply_patch(image: np.ndarray, result: EditResult) -> np.ndarray:
    """The full RGBA image with the patch pasted in (a copy; `image` is not changed)."""
    out = image.copy()
    b = result.box
    out[b.y : b.y1, b.x : b.x1] = result.patch
    return out
