"""Auto tone, in process: photo -> thumbnail -> tone network -> colour transform -> patch.

The network looks at a small thumbnail of the whole photo and predicts a colour transform,
not pixels: one tone curve per channel (a 256-entry table) and a coarse grid of exposure
gains (log2, bilinear between cells). Applying that transform at full size costs a table
look-up and a multiply per pixel, so a 50 MP photo stays sharp and is processed in strips.

`fixed_tone` is the fixed-parameter algorithm the network is trained against (auto-levels,
gamma towards mid-grey, gray-world white balance); the evaluation runs it as a baseline.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ...pipeline.modelcard import TONE_LUT_SIZE
from ...pipeline.preprocess import mask_bbox
from ...pipeline.result import EditError, EditResult, Progress
from ...pipeline.runtime import CancelToken, Model
from ...pipeline.strips import STRIP_ROWS, spread_grid
from ...wire.protocol import EMPTY_MASK, Box

DEFAULT_TONE_MODEL = "sketchfill-tone"
# Fixed algorithm: clip this fraction at each end, aim mean luminance at mid-grey.
LEVELS_CLIP = 0.005
TARGET_MEAN = 0.46
MAX_GAMMA = 2.2


def thumbnail(rgb: np.ndarray, res: int) -> np.ndarray:
    """The whole photo squeezed to res x res (area average), float32 CHW in [0, 1]."""
    img = Image.fromarray(np.ascontiguousarray(rgb[..., :3]), "RGB")
    small = np.asarray(img.resize((res, res), Image.Resampling.BOX), dtype=np.float32)
    return small.transpose(2, 0, 1) / 255.0


def apply_transform(
    rgb: np.ndarray,
    lut: np.ndarray,
    log_gain: np.ndarray,
    cancel: CancelToken | None = None,
    *,
    frame: tuple[Box, int, int] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """uint8 RGB -> uint8 RGB: per-channel curve `lut` (3 x 256, values in [0, 1]), then
    exposure gain 2**log_gain, the coarse grid spread over the whole image. `frame` =
    (where `rgb` lies, full width, full height) when `rgb` is a part of the image; `out`
    may be `rgb` itself (each strip is read before it is written)."""
    height, width = rgb.shape[:2]
    box, full_w, full_h = frame or (Box(0, 0, width, height), width, height)
    xs = np.arange(box.x, box.x1)
    if out is None:
        out = np.empty((height, width, 3), np.uint8)
    table = lut.astype(np.float32)
    for top in range(0, height, STRIP_ROWS):
        if cancel is not None:
            cancel.check()
        rows = slice(top, min(top + STRIP_ROWS, height))
        strip = rgb[rows, :, :3]
        curved = np.stack([table[c][strip[..., c]] for c in range(3)], axis=-1)
        ys = np.arange(rows.start, rows.stop) + box.y
        gain = np.exp2(spread_grid(log_gain, ys, xs, full_h, full_w))[..., None]
        out[rows] = np.clip(curved * gain * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def predict_transform(
    model: Model, rgb: np.ndarray, cancel: CancelToken | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The tone network's curves (3 x 256) and log2 gain grid for this photo."""
    x = thumbnail(rgb, model.resolution)[None]
    lut, gain = model.run({model.card.inputs[0].name: x}, cancel=cancel)
    return lut[0], gain[0, 0]


def fixed_tone(rgb: np.ndarray) -> np.ndarray:
    """The fixed-parameter algorithm: gray-world white balance, auto-levels on luminance,
    then one gamma that brings mean luminance to mid-grey. Returns uint8 RGB."""
    return apply_transform(rgb, fixed_lut(rgb), np.zeros((1, 1), np.float32))


def fixed_lut(rgb: np.ndarray) -> np.ndarray:
    """The fixed algorithm as per-channel curves (3 x 256), measured on a thumbnail."""
    small = thumbnail(rgb, 256).reshape(3, -1)
    means = small.mean(axis=1) + 1e-3
    balance = means.mean() / means  # gray world: equal channel means
    levels = np.arange(TONE_LUT_SIZE, dtype=np.float32) / (TONE_LUT_SIZE - 1)
    balanced = np.clip(small * balance[:, None], 0, 1)
    luminance = balanced.mean(axis=0)
    lo, hi = np.quantile(luminance, [LEVELS_CLIP, 1 - LEVELS_CLIP])
    hi = max(hi, lo + 0.05)
    stretched = np.clip((luminance - lo) / (hi - lo), 1e-4, 1)
    gamma = np.clip(np.log(TARGET_MEAN) / np.log(stretched.mean()), 1 / MAX_GAMMA, MAX_GAMMA)
    curves = np.clip((levels[None] * balance[:, None] - lo) / (hi - lo), 0, 1) ** gamma
    return curves.astype(np.float32)


def run_tone(
    model: Model | None,
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> EditResult:
    """Tone the photo (RGBA); with a mask (selection, 0-255) only there, softly. The patch
    covers the mask's bounding box (else the whole image) and keeps the photo's alpha.
    `model=None` runs the fixed algorithm instead of the network."""
    report = progress or (lambda stage, fraction: None)
    token = cancel or CancelToken()
    box = Box(0, 0, image.shape[1], image.shape[0])
    if mask is not None:
        found = mask_bbox(mask)
        if found is None:
            raise EditError(EMPTY_MASK, "the selection is empty: select the area to tone")
        box = found

    report("analyse", 0.05)
    # Curves and gains come from the whole photo, so a selection is toned consistently
    # with the rest of it; only the pixels under the selection change.
    if model is None:
        lut, log_gain = fixed_lut(image), np.zeros((1, 1), np.float32)
    else:
        lut, log_gain = predict_transform(model, image, token)
    token.check()

    report("apply", 0.5)
    patch = image[box.y : box.y1, box.x : box.x1].copy()
    frame = (box, image.shape[1], image.shape[0])
    if mask is None:  # in place: a 50 MP photo needs no second copy
        apply_transform(patch, lut, log_gain, token, frame=frame, out=patch[..., :3])
        return EditResult(patch, box.x, box.y, seed=0)
    toned = apply_transform(patch, lut, log_gain, token, frame=frame)
    selection = mask[box.y : box.y1, box.x : box.x1]
    for top in range(0, box.height, STRIP_ROWS):  # float blend in strips: bounded memory
        token.check()
        rows = slice(top, top + STRIP_ROWS)
        w = selection[rows, :, None].astype(np.float32) / 255.0
        mixed = w * toned[rows] + (1 - w) * patch[rows, :, :3]
        patch[rows, :, :3] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return EditResult(patch, box.x, box.y, seed=0)
