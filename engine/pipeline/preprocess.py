"""From full-resolution layers to the generator's input tensor (docs/ARCHITECTURE.md,
"Edit semantics").

The edit works on a square around the mask's bounding box with context: it is cut out,
padded to a square where the canvas is too narrow, resized to the model's resolution and
packed into the contract's channel order (see modelcard.INPUT_CHANNELS).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from ..wire.protocol import Box, context_box

MASK_THRESHOLD = 128
# Context around the mask, as a fraction of its longer side on every side.
DEFAULT_MARGIN = 0.5
# Around a mask that reaches beyond the face's frame.
FACE_MARGIN = 0.1


@dataclass(frozen=True)
class EditInputs:
    """The edit's layers over one rectangle of the canvas, all of the same height and width.

    image: HxWx4 uint8 RGBA. mask: HxW uint8, >= 128 means "regenerate". sketch: HxW uint8
    stroke strength or None. color: HxWx4 uint8 RGBA whose alpha marks painted pixels, or
    None. (layers.py turns host layers of any layout into these.)
    """

    image: np.ndarray
    mask: np.ndarray
    sketch: np.ndarray | None = None
    color: np.ndarray | None = None

    def __post_init__(self) -> None:
        h, w = self.mask.shape[:2]
        for name in ("image", "sketch", "color"):
            a = getattr(self, name)
            if a is not None and a.shape[:2] != (h, w):
                raise ValueError(f"{name} is {a.shape[1]}x{a.shape[0]}, mask is {w}x{h}")

    @property
    def regenerate(self) -> np.ndarray:
        return self.mask >= MASK_THRESHOLD


@dataclass(frozen=True)
class Crop:
    """Where the model's square came from: `box` in the layers' coordinates, and the
    padding (left, top) that made it square, in the same full-resolution pixels."""

    box: Box
    side: int
    pad_left: int
    pad_top: int


def mask_bbox(mask: np.ndarray) -> Box | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return Box(int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))


def plan_crop(bbox: Box, width: int, height: int, resolution: int, margin: float) -> Crop:
    box = context_box(bbox, width, height, margin, min_side=resolution)
    side = max(box.width, box.height)
    # Centre the mask in the padded square as far as the canvas allows.
    return Crop(box, side, (side - box.width) // 2, (side - box.height) // 2)


def plan_face_crop(bbox: Box, face: Box, width: int, height: int) -> Crop:
    """The square the face-framed edit reads: the face's frame (faceframe.py), grown only
    where the mask (plus FACE_MARGIN) reaches beyond it, kept where it is (the face stays
    where training put it) and cut to the canvas; what lies outside is padded back. The
    frame is the context here: training masks lie inside the frame too."""
    ctx = context_box(bbox, width, height, FACE_MARGIN, min_side=0)
    x0, y0 = min(face.x, ctx.x), min(face.y, ctx.y)
    x1, y1 = max(face.x1, ctx.x1), max(face.y1, ctx.y1)
    side = max(x1 - x0, y1 - y0)
    sx, sy = (x0 + x1 - side) // 2, (y0 + y1 - side) // 2
    bx, by = max(sx, 0), max(sy, 0)
    box = Box(bx, by, min(sx + side, width) - bx, min(sy + side, height) - by)
    return Crop(box, side, bx - sx, by - sy)


def model_input(
    inputs: EditInputs, regenerate: np.ndarray, crop: Crop, resolution: int, seed: int
) -> np.ndarray:
    """The float32 [1, 9, R, R] tensor of the generator contract for this crop."""
    res = resolution
    mask = resize_mask(square_crop(regenerate, crop), res)
    rgb = resize_rgb(square_crop(inputs.image[..., :3], crop, "edge"), res)
    erased = _to_signed(rgb) * (1.0 - mask)[..., None]

    sketch = np.zeros((res, res), np.float32)
    if inputs.sketch is not None:
        strength = square_crop(inputs.sketch, crop).astype(np.float32) / 255.0
        sketch = _resize_strokes(strength, res) * mask

    color = np.zeros((res, res, 3), np.float32)
    if inputs.color is not None:
        paint = square_crop(inputs.color, crop)
        painted = paint[..., 3].astype(np.float32) / 255.0
        color = _resize_paint(paint[..., :3], painted, res) * mask[..., None]

    noise = np.random.default_rng(seed).standard_normal((res, res), dtype=np.float32) * mask
    planes = [erased, mask[..., None], sketch[..., None], color, noise[..., None]]
    return np.ascontiguousarray(np.concatenate(planes, axis=2).transpose(2, 0, 1)[None])


def square_crop(a: np.ndarray, crop: Crop, mode: str = "constant") -> np.ndarray:
    """Cut `crop` out of `a` and pad it to a square: with zeros (nothing masked, drawn or
    painted there) or, for the photo, by repeating its edge pixels."""
    b = crop.box
    piece = a[b.y : b.y1, b.x : b.x1]
    if b.width == b.height == crop.side:
        return piece
    pads = [
        (crop.pad_top, crop.side - b.height - crop.pad_top),
        (crop.pad_left, crop.side - b.width - crop.pad_left),
    ] + [(0, 0)] * (a.ndim - 2)
    return np.pad(piece, pads, mode=mode)


def _to_signed(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) / 127.5 - 1.0


def resize_rgb(rgb: np.ndarray, res: int) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if img.width == res:
        return rgb
    method = Image.Resampling.BOX if img.width > res else Image.Resampling.BICUBIC
    return np.asarray(img.resize((res, res), method))


def _resize_float(a: np.ndarray, res: int) -> np.ndarray:
    img = Image.fromarray(np.ascontiguousarray(a, dtype=np.float32), "F")
    if img.width == res:
        return a.astype(np.float32)
    method = Image.Resampling.BOX if img.width > res else Image.Resampling.BILINEAR
    return np.asarray(img.resize((res, res), method), dtype=np.float32)


def resize_mask(mask: np.ndarray, res: int) -> np.ndarray:
    # Any masked pixel marks its model pixel as masked: the generator may regenerate a
    # little more than asked (only masked full-resolution pixels are pasted back), but
    # never sees a thin masked line vanish.
    if mask.shape[0] == res:
        return (mask > 0).astype(np.float32)
    # 0/1 bytes made float inside Pillow: one float copy of a 50 MP mask, not two.
    img = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), "L").convert("F")
    method = Image.Resampling.BOX if img.width > res else Image.Resampling.BILINEAR
    small = np.asarray(img.resize((res, res), method), dtype=np.float32)
    return (small > 0.0).astype(np.float32)


def _resize_strokes(strength: np.ndarray, res: int) -> np.ndarray:
    # Widen strokes before shrinking so a 1-px pen line still reads as a line at model scale.
    factor = strength.shape[0] / res
    if factor > 1.5:
        size = 2 * int(factor // 2) + 1
        img = Image.fromarray(np.ascontiguousarray(strength, dtype=np.float32), "F")
        strength = np.asarray(img.filter(ImageFilter.MaxFilter(size)), dtype=np.float32)
    return np.clip(_resize_float(strength, res), 0.0, 1.0)


def _resize_paint(rgb: np.ndarray, painted: np.ndarray, res: int) -> np.ndarray:
    # Average colour over painted pixels only (alpha-weighted), zero where unpainted.
    weight = _resize_float(painted, res)
    out = np.zeros((res, res, 3), np.float32)
    for c in range(3):
        out[..., c] = _resize_float(rgb[..., c].astype(np.float32) * painted, res)
    hit = weight >= 0.25
    out[hit] /= weight[hit][:, None]
    signed = out / 127.5 - 1.0
    signed[~hit] = 0.0
    return signed
