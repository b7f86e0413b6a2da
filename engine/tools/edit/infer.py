"""One edit, in process: inputs -> preprocess -> generator -> composite -> patch.

The server runs this on its workers; `sketchfill edit` and the evaluation call it directly,
so every path measures and ships the same pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...pipeline import pasteback, preprocess
from ...pipeline.preprocess import EditInputs
from ...pipeline.runtime import CancelToken, Model
from ...wire.protocol import BAD_REQUEST, EMPTY_MASK, Box

__all__ = ["EditError", "EditInputs", "EditResult", "apply_patch", "run_edit"]

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


def run_edit(
    model: Model,
    inputs: EditInputs,
    seed: int,
    feather: float = 0.0,
    *,
    margin: float = preprocess.DEFAULT_MARGIN,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> EditResult:
    report = progress or (lambda stage, fraction: None)
    token = cancel or CancelToken()

    report("preprocess", 0.05)
    regenerate = inputs.regenerate
    bbox = preprocess.mask_bbox(regenerate)
    if bbox is None:
        raise EditError(EMPTY_MASK, "the mask selects nothing: select or paint the area to redo")
    height, width = regenerate.shape
    crop = preprocess.plan_crop(bbox, width, height, model.resolution, margin)
    tensor = preprocess.model_input(inputs, regenerate, crop, model.resolution, seed)
    token.check()
    report("generate", 0.15)
    return generate_patch(
        model, tensor, inputs.image, regenerate, crop, bbox, seed, feather, report, token
    )


def generate_patch(
    model: Model,
    tensor: np.ndarray,
    image: np.ndarray,
    regenerate: np.ndarray,
    crop: preprocess.Crop,
    bbox: Box,
    seed: int,
    feather: float,
    report: Progress,
    token: CancelToken,
) -> EditResult:
    """Run a generator (edit or restore) on its input tensor for `crop` and paste its
    masked pixels back: the patch over the mask's bounding box `bbox`."""
    (output,) = model.run({model.card.inputs[0].name: tensor}, cancel=token)
    token.check()

    report("composite", 0.9)
    generated = pasteback.to_crop_pixels(output, crop)
    patch = pasteback.paste(image, regenerate, generated, crop.box, bbox, feather)
    return EditResult(patch, bbox.x, bbox.y, seed)


def apply_patch(image: np.ndarray, result: EditResult) -> np.ndarray:
    """The full RGBA image with the patch pasted in (a copy; `image` is not changed)."""
    out = image.copy()
    b = result.box
    out[b.y : b.y1, b.x : b.x1] = result.patch
    return out
