"""From the generator's output back to full resolution (docs/ARCHITECTURE.md, "Edit semantics").

Only masked pixels change. The reply is the patch over the mask's bounding box: outside
the mask it holds the caller's own pixels bit for bit, inside it the generated ones,
optionally feathered inwards so the seam softens without touching unmasked pixels.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageFilter

from ..wire.protocol import Box
from .preprocess import Crop
from .result import EditResult, Progress
from .runtime import CancelToken, Model
from .strips import STRIP_ROWS

MAX_FEATHER = 64
BLEND_ROWS = 64  # rows blended at once (feathered in strips of STRIP_ROWS or more)


def to_crop_pixels(output: np.ndarray, crop: Crop) -> np.ndarray:
    """The generator's [1, 3, R, R] output in [-1, 1] as uint8 RGB over `crop.box`."""
    rgb = np.clip((output[0].transpose(1, 2, 0) + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    if img.width != crop.side:
        method = Image.Resampling.BICUBIC if crop.side > img.width else Image.Resampling.BOX
        img = img.resize((crop.side, crop.side), method)
    square = np.asarray(img)
    b = crop.box
    return square[crop.pad_top : crop.pad_top + b.height, crop.pad_left : crop.pad_left + b.width]


def feather_weights(
    mask: np.ndarray, feather: float, cancel: CancelToken | None = None
) -> np.ndarray:
    """Blend weight per pixel: 0 outside the mask; inside, min(d, feather) / feather where d
    is the chessboard distance to the nearest unmasked pixel (1 on the mask's edge)."""
    weights = mask.astype(np.float32)
    steps = min(round(feather), MAX_FEATHER)
    if steps <= 1:
        return weights
    # Each 3x3 erosion peels one ring off the mask; counting surviving rings gives d.
    ring = Image.fromarray(mask.astype(np.uint8) * 255, "L")
    for _ in range(steps - 1):
        if cancel is not None:
            cancel.check()
        ring = ring.filter(ImageFilter.MinFilter(3))
        if ring.getbbox() is None:  # nothing left to peel: every later ring is empty too
            break
        weights += np.asarray(ring, dtype=np.float32) / 255.0
    return weights / steps


def paste(
    image: np.ndarray,
    mask: np.ndarray,
    generated: np.ndarray,
    gen_box: Box,
    patch_box: Box,
    feather: float,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """The RGBA patch over `patch_box` (the mask's bounding box, inside `gen_box`): the
    caller's pixels, with the masked ones replaced by `generated` (RGB over `gen_box`).

    Worked in strips of rows, so the float blend of an 8000 x 8000 mask costs a strip's
    memory, not sixteen bytes a pixel, and a cancel is noticed between strips."""
    p = patch_box
    patch = image[p.y : p.y1, p.x : p.x1].copy()
    ox, oy = p.x - gen_box.x, p.y - gen_box.y
    for start, strip_weights in _feather_strips(mask, p, feather, cancel):
        # The float blend takes sixteen bytes a pixel in each temporary: a few rows at once.
        for top in range(0, strip_weights.shape[0], BLEND_ROWS):
            weights = strip_weights[top : top + BLEND_ROWS]
            rows = slice(start + top, start + top + weights.shape[0])
            region_mask = mask[p.y + rows.start : p.y + rows.stop, p.x : p.x1]
            if not region_mask.any():
                continue
            gen = generated[oy + rows.start : oy + rows.stop, ox : ox + p.width]
            strip = patch[rows]
            w = weights[region_mask][:, None]
            old = strip[region_mask].astype(np.float32)
            new = np.empty_like(old)
            new[:, :3] = gen[region_mask]
            new[:, 3] = 255.0  # generated pixels are opaque, even where the photo was erased
            blended = np.clip(np.rint(w * new + (1.0 - w) * old), 0, 255)
            strip[region_mask] = blended.astype(np.uint8)
    return patch


def _feather_strips(
    mask: np.ndarray, box: Box, feather: float, cancel: CancelToken | None
) -> Iterator[tuple[int, np.ndarray]]:
    """Feather weights over `box`, strip by strip: (first row in the box, weights).

    Each strip is computed with a one-pixel rim of the surrounding mask so the box edge is
    not mistaken for the mask edge. At the canvas border there is no rim: the mask is taken
    to continue, so nothing blends towards pixels that do not exist. A strip also reads
    `steps` rows beyond itself, as many as the erosions can reach, so its weights are the
    ones the whole box would give.
    """
    h, w = mask.shape
    left, top = min(1, box.x), min(1, box.y)
    right, bottom = min(1, w - box.x1), min(1, h - box.y1)
    rimmed = mask[box.y - top : box.y1 + bottom, box.x - left : box.x1 + right]
    steps = min(round(feather), MAX_FEATHER)
    halo = steps if steps > 1 else 0
    rows = max(STRIP_ROWS, 8 * halo)
    for start in range(0, box.height, rows):
        if cancel is not None:
            cancel.check()
        stop = min(start + rows, box.height)
        lo = max(0, start + top - halo)
        hi = min(rimmed.shape[0], stop + top + halo)
        weights = feather_weights(rimmed[lo:hi], feather, cancel)
        first = start + top - lo
        yield start, weights[first : first + stop - start, left : left + box.width]


def generate_patch(
    model: Model,
    tensor: np.ndarray,
    image: np.ndarray,
    regenerate: np.ndarray,
    crop: Crop,
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
    generated = to_crop_pixels(output, crop)
    patch = paste(image, regenerate, generated, crop.box, bbox, feather, token)
    return EditResult(patch, bbox.x, bbox.y, seed)
