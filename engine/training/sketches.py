"""Training sketches from HED edges, as SC-FEGAN makes them.

The soft HED map is thresholded and thinned to one-pixel pen lines, specks are removed,
random strokes are dropped or partly erased (users draw only some lines), the rest is
restricted to the mask and drawn with a random pen width. Some samples get no sketch at all,
because users may give none. Work happens inside the mask's bounding box only: thinning is
the costliest step of the data pipeline.
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.morphology import thin

from .masks import stroke_mask

P_EMPTY = 0.1
RIDGE_THRESHOLD = 0.25


def ridge_map(edges: np.ndarray) -> np.ndarray:
    """One-pixel HED ridges carrying their edge strength (uint8), stored once per image.

    Thinning the thick HED map is slow (~0.1 s at 512 px); thinning these ridges after they
    have been widened and warped by augmentation converges in an iteration or two, and a
    random strength threshold still chooses between bold and faint lines."""
    ridges = thin(edges >= RIDGE_THRESHOLD)
    return np.round(np.where(ridges, edges, 0.0) * 255).astype(np.uint8)


def widen(ridges: np.ndarray) -> np.ndarray:
    """3-px wide ridges (grey dilation keeps the strength), so that warping with bilinear
    interpolation neither breaks nor dims them; `make_sketch` thins them again."""
    return cv2.dilate(ridges, np.ones((3, 3), np.uint8))


def pen_lines(edges: np.ndarray, threshold: float, min_len: int) -> np.ndarray:
    """Thresholded, thinned edges without components shorter than `min_len` pixels (bool)."""
    lines = thin(edges >= threshold)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(lines.astype(np.uint8), 8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_len
    keep[0] = False
    return keep[labels]


def mask_box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return (
        slice(max(0, ys.min() - margin), min(h, ys.max() + margin + 1)),
        slice(max(0, xs.min() - margin), min(w, xs.max() + margin + 1)),
    )


def make_sketch(
    edges: np.ndarray, mask: np.ndarray, rng: np.random.Generator, allow_empty: bool = True
) -> np.ndarray:
    """A random partial pen sketch inside `mask` from edge strengths in [0, 1] (widened
    ridges or a raw HED map); float32 {0, 1}."""
    size = mask.shape[0]
    out = np.zeros(mask.shape, np.float32)
    if not mask.any() or (rng.random() < P_EMPTY and allow_empty):
        return out
    box = mask_box(mask, 2)
    lines = pen_lines(edges[box], rng.uniform(0.25, 0.55), max(3, size // 64))
    n, labels = cv2.connectedComponents(lines.astype(np.uint8), connectivity=8)
    # Drop whole strokes, then erase a few random stretches of the remaining ones.
    keep = rng.random(n) >= rng.uniform(0.0, 0.4)
    keep[0] = False
    lines = keep[labels]
    if rng.random() < 0.3:
        lines &= stroke_mask(rng, size)[box] == 0
    lines &= mask[box] > 0
    width = int(rng.integers(1, 2 + size // 256))
    sketch = lines.astype(np.uint8)
    if width > 1:
        sketch = cv2.dilate(sketch, np.ones((width, width), np.uint8)) & mask[box]
    out[box] = sketch
    return out
