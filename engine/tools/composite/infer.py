"""The composite tool, in process: target photo + source face layer (+ mask) -> patch.

The face layer is pasted over the photo where its alpha (or the user's selection) says;
the composite network looks at a square around that region at its own resolution and
predicts a soft composite mask and a per-pixel affine colour transform of the face. Both
are spread over the region at full size, so the face keeps all of its own detail:

    out = alpha * A(face) + (1 - alpha) * photo

The three steps it replaces are here too, as the evaluation's baselines: plain alpha paste,
Poisson blending (OpenCV seamlessClone) and Reinhard colour transfer. OpenCV comes with the
`train` extra, not with the engine: only the baselines import it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ...pipeline.preprocess import Crop, mask_bbox, plan_crop, square_crop
from ...pipeline.result import EditError, EditResult, Progress, opencv
from ...pipeline.runtime import CancelToken, Model
from ...pipeline.strips import STRIP_ROWS, spread_grid
from ...wire.protocol import EMPTY_MASK, Box

DEFAULT_COMPOSITE_MODEL = "sketchfill-composite"
# Context around the face region, as a fraction of its longer side: what training crops hold.
CONTEXT_MARGIN = 0.2


def pasted(photo: np.ndarray, face: np.ndarray, cancel: CancelToken | None = None) -> np.ndarray:
    """The face layer (RGBA) over the photo by its own alpha: uint8 RGB, in strips (bounded
    float memory, and a cancel is noticed between them)."""
    out = np.empty((*face.shape[:2], 3), np.uint8)
    for top in range(0, face.shape[0], STRIP_ROWS):
        if cancel is not None:
            cancel.check()
        rows = slice(top, top + STRIP_ROWS)
        a = face[rows, :, 3:4].astype(np.float32) / 255.0
        mixed = a * face[rows, :, :3] + (1 - a) * photo[rows, :, :3]
        out[rows] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return out


def alpha_paste(target: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Baseline 1: the source over the target by the mask, nothing else (uint8 RGB)."""
    w = mask[..., None].astype(np.float32) / 255.0
    return np.clip(w * source + (1 - w) * target + 0.5, 0, 255).astype(np.uint8)


def poisson_blend(target: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Baseline 2: gradient-domain blending (OpenCV seamlessClone, normal clone) of the
    source inside the mask into the target, in place (uint8 RGB)."""
    cv2 = opencv("Poisson and Reinhard")
    hard = (mask >= 128).astype(np.uint8) * 255
    box = mask_bbox(hard > 0)
    if box is None:
        return target.copy()
    # seamlessClone needs the region off the image border: pad, clone, cut back.
    pad = 4
    t, s, m = (
        cv2.copyMakeBorder(a, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        for a in (target, source, hard)
    )
    centre = (pad + box.x + box.width // 2, pad + box.y + box.height // 2)
    out = cv2.seamlessClone(s, t, m, centre, cv2.NORMAL_CLONE)
    return out[pad:-pad, pad:-pad]


def reinhard_transfer(
    rgb: np.ndarray, reference: np.ndarray, where: np.ndarray, where_ref: np.ndarray
) -> np.ndarray:
    """rgb with its CIELAB mean and deviation under `where` matched to the reference's
    under `where_ref` (Reinhard et al. 2001). Float32 RGB in [0, 255]."""
    cv2 = opencv("Poisson and Reinhard")
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    ref = cv2.cvtColor(reference.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    got, want = lab[where], ref[where_ref]
    if got.size == 0 or want.size == 0:
        return rgb.astype(np.float32)
    scale = want.std(axis=0) / np.maximum(got.std(axis=0), 1e-3)
    lab = (lab - got.mean(axis=0)) * scale + want.mean(axis=0)
    return np.clip(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB), 0, 1) * 255.0


def reinhard_paste(target: np.ndarray, source: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Baseline 3: the source's colours under the mask matched to the target's face under
    the same mask (the usual face-swap colour correction), then alpha paste."""
    where = mask >= 128
    matched = reinhard_transfer(source, target, where, where)
    return alpha_paste(target, np.clip(matched + 0.5, 0, 255).astype(np.uint8), mask)


BASELINES = {"alpha paste": alpha_paste, "poisson": poisson_blend, "reinhard": reinhard_paste}


def _to_model(a: np.ndarray, crop: Crop, res: int, mode: str) -> np.ndarray:
    """A crop of an HxW(xC) uint8 layer as float32 [1, C, R, R] in [0, 1]."""
    square = np.ascontiguousarray(square_crop(a, crop, mode))
    img = Image.fromarray(square, "L" if square.ndim == 2 else "RGB")
    small = np.asarray(img.resize((res, res), Image.Resampling.BOX), dtype=np.float32) / 255.0
    if small.ndim == 2:
        small = small[..., None]
    return np.ascontiguousarray(small.transpose(2, 0, 1)[None])


def predict(
    model: Model,
    target: np.ndarray,
    source: np.ndarray,
    mask: np.ndarray,
    crop: Crop,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The network's composite mask (R x R) and colour transform (12 x R/4 x R/4)."""
    res = model.resolution
    feeds = {
        "target": _to_model(target, crop, res, "edge"),
        "source": _to_model(source, crop, res, "edge"),
        "mask": _to_model(mask, crop, res, "constant"),
    }
    alpha, coeffs = model.run(feeds, cancel=cancel)
    return alpha[0, 0], coeffs[0]


def apply_composite(
    target: np.ndarray,
    source: np.ndarray,
    alpha: np.ndarray,
    coeffs: np.ndarray,
    crop: Crop,
    box: Box,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """alpha * A(source) + (1 - alpha) * target over `box` (full-size uint8 RGB), the
    network's grids spread over the crop square as torch's bilinear resize spreads them."""
    out = np.empty((box.height, box.width, 3), np.uint8)
    origin_x, origin_y = crop.box.x - crop.pad_left, crop.box.y - crop.pad_top
    xs = np.arange(box.x, box.x1) - origin_x
    for top in range(0, box.height, STRIP_ROWS):
        if cancel is not None:
            cancel.check()
        rows = slice(top, min(top + STRIP_ROWS, box.height))
        ys = np.arange(box.y + rows.start, box.y + rows.stop) - origin_y
        a = spread_grid(alpha, ys, xs, crop.side, crop.side)[..., None]
        k = [spread_grid(c, ys, xs, crop.side, crop.side) for c in coeffs]
        src = source[box.y + rows.start : box.y + rows.stop, box.x : box.x1].astype(np.float32)
        tgt = target[box.y + rows.start : box.y + rows.stop, box.x : box.x1].astype(np.float32)
        fixed = np.stack(
            [
                k[4 * c] * src[..., 0]
                + k[4 * c + 1] * src[..., 1]
                + k[4 * c + 2] * src[..., 2]
                + k[4 * c + 3] * 255.0
                for c in range(3)
            ],
            axis=-1,
        )
        mixed = a * np.clip(fixed, 0, 255) + (1 - a) * tgt
        out[rows] = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return out


def face_region(face: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, Box]:
    """Where to composite: the face layer's alpha, limited by the selection if given, and
    its bounding box; EditError when that is empty."""
    region = face[..., 3] if mask is None else np.minimum(mask, face[..., 3])
    bbox = mask_bbox(region > 0)
    if bbox is None:
        what = "the face layer is empty" if mask is None else "the selection misses the face"
        raise EditError(EMPTY_MASK, f"{what}: nothing to composite")
    return region, bbox


def run_composite(
    model: Model | None,
    image: np.ndarray,
    face: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    method: str | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> EditResult:
    """Put the face layer (RGBA, canvas-sized) onto the photo (RGBA). The region is the
    face layer's alpha, limited by the selection (0-255) if one is given. The patch covers
    the region's bounding box and keeps the photo's alpha. `model=None` runs the baseline
    `method`."""
    report = progress or (lambda stage, fraction: None)
    token = cancel or CancelToken()
    region, bbox = face_region(face, mask)
    height, width = region.shape

    report("analyse", 0.05)
    # Everything happens inside the square around the face (with context): a face on a
    # 50 MP photo costs its own size, not the photo's.
    crop = plan_crop(bbox, width, height, model.resolution if model else 0, CONTEXT_MARGIN)
    c = crop.box
    local = Crop(Box(0, 0, c.width, c.height), crop.side, crop.pad_left, crop.pad_top)
    photo = image[c.y : c.y1, c.x : c.x1]
    source = pasted(photo, face[c.y : c.y1, c.x : c.x1], token)
    where = region[c.y : c.y1, c.x : c.x1]
    if model is None:
        blended = BASELINES[method or "alpha paste"](photo[..., :3], source, where)
        b = Box(bbox.x - c.x, bbox.y - c.y, bbox.width, bbox.height)
        patch = photo[b.y : b.y1, b.x : b.x1].copy()
        patch[..., :3] = blended[b.y : b.y1, b.x : b.x1]
        return EditResult(patch, bbox.x, bbox.y, seed=0)

    alpha, coeffs = predict(model, photo[..., :3], source, where, local, token)
    token.check()

    report("apply", 0.5)
    # The soft mask may reach a model pixel or two past the region: so does the patch.
    grow = -(-2 * crop.side // model.resolution)
    box = _grown(bbox, grow, c)
    b = Box(box.x - c.x, box.y - c.y, box.width, box.height)
    patch = photo[b.y : b.y1, b.x : b.x1].copy()
    patch[..., :3] = apply_composite(photo[..., :3], source, alpha, coeffs, local, b, token)
    return EditResult(patch, box.x, box.y, seed=0)


def _grown(box: Box, by: int, within: Box) -> Box:
    x, y = max(box.x - by, within.x), max(box.y - by, within.y)
    return Box(x, y, min(box.x1 + by, within.x1) - x, min(box.y1 + by, within.y1) - y)
