"""Training colour maps: the median colour of each image region inside the mask.

SC-FEGAN paints each face-parsing region with its median colour. No parsing network can be
had here, so regions come from landmark-free segmentations computed once per image (see
guides.py): a coarse Felzenszwalb graph segmentation (skin, hair, lips, background: what a
user dabs) and fine SLIC superpixels (shading, what a careful user paints). Regions are
randomly dropped, sometimes only dabbed with brush strokes, and the map is blurred a
little so that it looks painted rather than cut out.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage
from skimage.segmentation import felzenszwalb, slic

from .masks import stroke_mask

P_EMPTY = 0.15


def segment(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coarse and fine region labels (uint16) of an RGB uint8 image; parameters scale with
    the image so that a 128-px test image and a 512-px face get similar regions."""
    area = image.shape[0] * image.shape[1]
    coarse = felzenszwalb(image, scale=400, sigma=1.0, min_size=max(16, area // 650))
    fine = slic(image, n_segments=150, compactness=10, start_label=0)
    return coarse.astype(np.uint16), fine.astype(np.uint16)


def region_medians(image: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 image where each masked pixel holds its region's median colour
    (computed over the masked pixels of that region only); 0 elsewhere."""
    lab = np.where(mask > 0, labels.astype(np.int64) + 1, 0)
    ids = np.unique(lab)
    ids = ids[ids > 0]
    out = np.zeros(image.shape, np.float32)
    if ids.size == 0:
        return out
    lut = np.zeros((int(ids.max()) + 1, 3), np.float32)
    for c in range(3):
        lut[ids, c] = ndimage.median(image[..., c], labels=lab, index=ids)
    return lut[lab] * (lab > 0)[..., None]


def make_color(
    image: np.ndarray,
    coarse: np.ndarray,
    fine: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
    allow_empty: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """A random colour hint inside `mask` for the RGB uint8 `image`: (colour float32 RGB in
    0-255, painted float32 {0, 1})."""
    size = mask.shape[0]
    painted = np.zeros(mask.shape, np.float32)
    color = np.zeros(image.shape, np.float32)
    if not mask.any() or (rng.random() < P_EMPTY and allow_empty):
        return color, painted
    labels = coarse if rng.random() < 0.6 else fine
    lab = np.where(mask > 0, labels.astype(np.int64) + 1, 0)
    n = int(lab.max()) + 1
    # Drop a random share of the regions (none when a hint is required).
    drop = rng.uniform(0.0, 0.5) if allow_empty else 0.0
    keep = rng.random(n) >= drop
    keep[0] = False
    region = keep[lab]
    if allow_empty and rng.random() < 0.4:
        # Dabs: paint only where a few thick strokes cross the kept regions.
        dabs = cv2.dilate(stroke_mask(rng, size), np.ones((3, 3), np.uint8), iterations=2)
        region &= dabs > 0
    if not region.any():
        return color, painted
    med = region_medians(image, labels, region)
    sigma = rng.uniform(0.5, 2.0) * size / 256
    p = cv2.GaussianBlur(region.astype(np.float32), (0, 0), sigma)
    blurred = cv2.GaussianBlur(med, (0, 0), sigma)
    # Normalised blur softens region borders without darkening the edge of the paint.
    color = np.where(region[..., None], blurred / np.maximum(p, 1e-6)[..., None], 0.0)
    return color.astype(np.float32), region.astype(np.float32)
