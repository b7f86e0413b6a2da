"""One edit, in process: inputs -> preprocess -> generator -> paste-back -> patch.

The server runs this on its workers; `sketchfill edit` and the evaluation call it directly,
so every path measures and ships the same pipeline.
"""

from __future__ import annotations

from ...pipeline import preprocess
from ...pipeline.pasteback import generate_patch
from ...pipeline.preprocess import EditInputs
from ...pipeline.result import EditError, EditResult, Progress
from ...pipeline.runtime import CancelToken, Model
from ...wire.protocol import EMPTY_MASK


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
