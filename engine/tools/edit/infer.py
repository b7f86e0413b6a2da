"""One edit, in process: inputs -> preprocess -> generator -> paste-back -> patch.

The server runs this on its workers; `sketchfill edit` and the evaluation call it directly,
so every path measures and ships the same pipeline.
"""

from __future__ import annotations

import numpy as np

from ...pipeline import preprocess
from ...pipeline.pasteback import generate_patch
from ...pipeline.preprocess import EditInputs
from ...pipeline.result import EditError, EditResult, Progress
from ...pipeline.runtime import CancelToken, Model
from ...wire.protocol import EMPTY_MASK, Box


def run_edit(
    model: Model,
    inputs: EditInputs,
    seed: int,
    feather: float = 0.0,
    *,
    margin: float = preprocess.DEFAULT_MARGIN,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    frame_faces: bool = True,
) -> EditResult:
    """Fill the masked pixels of `inputs`. With `frame_faces` the square given to the
    generator frames the face the mask belongs to as the training photos are framed
    (pipeline/faceframe.py), so that the fill does not depend on the photo's size; without
    a face (or without `frame_faces`) it is the mask's box plus `margin`, at least the
    model's resolution in canvas pixels."""
    report = progress or (lambda stage, fraction: None)
    token = cancel or CancelToken()

    report("preprocess", 0.05)
    regenerate = inputs.regenerate
    bbox = preprocess.mask_bbox(regenerate)
    if bbox is None:
        raise EditError(EMPTY_MASK, "the mask selects nothing: select or paint the area to redo")
    crop = plan_edit_crop(inputs.image, bbox, model.resolution, margin, frame_faces)
    token.check()  # the face search may have taken a while on a large photo
    tensor = preprocess.model_input(inputs, regenerate, crop, model.resolution, seed)
    token.check()
    report("generate", 0.15)
    return generate_patch(
        model, tensor, inputs.image, regenerate, crop, bbox, seed, feather, report, token
    )


def plan_edit_crop(
    image: np.ndarray, bbox: Box, resolution: int, margin: float, frame_faces: bool
) -> preprocess.Crop:
    height, width = image.shape[:2]
    if frame_faces:
        from ...pipeline.faceframe import frame_for_mask
        from ...pipeline.facemesh import face_finder

        frame = frame_for_mask(face_finder(), image, bbox)
        if frame is not None:
            return preprocess.plan_face_crop(bbox, frame.box(), width, height)
    return preprocess.plan_crop(bbox, width, height, resolution, margin)
