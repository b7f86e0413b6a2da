"""Training samples: augmented face + random mask, sketch, colour hint and noise.

Everything about a sample is a function of (seed, sample id): the image it shows, its
augmentation, mask, sketch, colour and noise. Sample ids come from `StepSampler`, so a run
is reproducible, does not depend on the number of DataLoader workers, and resumes exactly
where it stopped (the sampler starts at the checkpoint's step). All per-sample work runs in
DataLoader workers with numpy/OpenCV at the training resolution.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ...training.colors import make_color
from ...training.guides import Guides, load_guides
from ...training.images import load_square
from ...training.masks import random_mask
from ...training.sketches import make_sketch, widen

# Faces must stay faces: mild geometry, mild colour.
SCALE_RANGE = (0.9, 1.12)
ROTATE_DEG = 10.0
SHIFT_FRAC = 0.04
CACHE_ITEMS = 256  # decoded images + guides kept per worker (<= ~1 GB at 512 px)
# Share of samples cropped around their mask the way the engine crops an edit
# (preprocess.plan_crop: the mask's box plus half its size on every side, at least the model
# resolution in canvas pixels). On a large photo that zooms in on the edited part; without
# such samples the model would only know whole, face-sized faces.
P_CONTEXT = 0.15
CONTEXT_MARGIN = 0.5


@dataclass
class EditSample:
    image: np.ndarray  # RGB uint8 (R, R, 3): the truth
    mask: np.ndarray  # uint8 {0, 1}
    sketch: np.ndarray  # float32 {0, 1}, inside the mask
    color: np.ndarray  # float32 RGB 0-255, meaningful where painted
    painted: np.ndarray  # float32 {0, 1}, inside the mask
    noise: np.ndarray  # float32 N(0, 1) inside the mask, 0 outside


def make_sample(
    image: np.ndarray,
    ridges: np.ndarray,
    coarse: np.ndarray,
    fine: np.ndarray,
    rng: np.random.Generator,
    allow_empty: bool = True,
    mask: np.ndarray | None = None,
) -> EditSample:
    """Mask (unless given), sketch, colour and noise for an (already augmented) image.
    `ridges` are the widened HED ridges (uint8) aligned with the image. `allow_empty=False`
    never drops the whole sketch or colour hint (evaluation measures how well both are
    followed)."""
    if mask is None:
        mask = random_mask(rng, image.shape[0])
    sketch = make_sketch(ridges.astype(np.float32) / 255.0, mask, rng, allow_empty)
    color, painted = make_color(image, coarse, fine, mask, rng, allow_empty)
    noise = rng.standard_normal(mask.shape).astype(np.float32) * mask
    return EditSample(image, mask, sketch, color, painted, noise)


def encode(s: EditSample) -> np.ndarray:
    """The generator input (9, R, R) float32, channel order of modelcard.INPUT_CHANNELS."""
    keep = (1 - s.mask).astype(np.float32)
    image = (s.image.astype(np.float32) / 127.5 - 1.0) * keep[..., None]
    color = (s.color / 127.5 - 1.0) * s.painted[..., None]
    planes = [
        *image.transpose(2, 0, 1),
        s.mask.astype(np.float32),
        s.sketch,
        *color.transpose(2, 0, 1),
        s.noise,
    ]
    return np.stack(planes).astype(np.float32)


def to_target(image: np.ndarray) -> np.ndarray:
    return (image.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)


def max_resize(ridges: np.ndarray, size: int) -> np.ndarray:
    """Shrink line maps by max-pooling (area averaging would dim one-pixel lines)."""
    factor = ridges.shape[0] / size
    if factor > 1:
        k = int(np.ceil(factor))
        ridges = cv2.dilate(ridges, np.ones((k, k), np.uint8))
    return cv2.resize(ridges, (size, size), interpolation=cv2.INTER_NEAREST)


def at_resolution(image: np.ndarray, guides: Guides, res: int) -> tuple[np.ndarray, ...]:
    """Image, widened ridges and region maps at the training resolution."""
    if image.shape[0] != res:
        image = cv2.resize(image, (res, res), interpolation=cv2.INTER_AREA)
    near = cv2.INTER_NEAREST
    coarse = cv2.resize(guides.coarse, (res, res), interpolation=near)
    fine = cv2.resize(guides.fine, (res, res), interpolation=near)
    return image, widen(max_resize(guides.ridges, res)), coarse, fine


def context_crop(
    full: tuple[np.ndarray, ...], mask: np.ndarray, res: int, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """Image, ridges, regions (from the guide-size sources `full`, so zooming in keeps
    detail) and mask (drawn on the res-sized face) cropped like the engine crops an edit,
    each resized to res."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # The canvas-pixel minimum side, in this frame, depends on how large the user's photo
    # is: anything from a third of the frame (big photo) to all of it (small photo).
    side = (1 + 2 * CONTEXT_MARGIN) * max(y1 - y0, x1 - x0)
    side = int(min(res, max(side, rng.uniform(0.3, 1.0) * res)))
    top = int(np.clip(round((y0 + y1 - side) / 2), 0, res - side))
    left = int(np.clip(round((x0 + x1 - side) / 2), 0, res - side))
    near = cv2.INTER_NEAREST
    crop_mask = cv2.resize(
        mask[top : top + side, left : left + side], (res, res), interpolation=near
    )
    k = full[0].shape[0] / res
    fy, fx, fs = round(top * k), round(left * k), max(1, round(side * k))
    image, ridges, coarse, fine = (a[fy : fy + fs, fx : fx + fs] for a in full)
    interp = cv2.INTER_AREA if fs > res else cv2.INTER_CUBIC
    return (
        cv2.resize(image, (res, res), interpolation=interp),
        widen(max_resize(ridges, res)),
        cv2.resize(coarse, (res, res), interpolation=near),
        cv2.resize(fine, (res, res), interpolation=near),
        crop_mask,
    )


def random_affine(rng: np.random.Generator, size: int) -> np.ndarray:
    """Flip, zoom, rotation and shift about the centre, as a 2x3 matrix."""
    zoom = rng.uniform(*SCALE_RANGE)
    angle = np.deg2rad(rng.uniform(-ROTATE_DEG, ROTATE_DEG))
    flip = -1.0 if rng.random() < 0.5 else 1.0
    c, s = np.cos(angle) * zoom, np.sin(angle) * zoom
    lin = np.array([[c * flip, -s], [s * flip, c]])
    centre = np.array([size / 2, size / 2])
    shift = rng.uniform(-SHIFT_FRAC, SHIFT_FRAC, 2) * size
    offset = centre + shift - lin @ centre
    return np.hstack([lin, offset[:, None]]).astype(np.float64)


def color_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Small brightness/contrast/saturation/hue/gamma changes; skin must stay skin."""
    x = image.astype(np.float32) / 255.0
    hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-6, 6)) % 360.0
    hsv[..., 1] *= rng.uniform(0.8, 1.2)
    x = cv2.cvtColor(np.clip(hsv, 0, [360, 1, 1]).astype(np.float32), cv2.COLOR_HSV2RGB)
    x = (x - 0.5) * rng.uniform(0.85, 1.15) + 0.5 + rng.uniform(-0.08, 0.08)
    x = np.clip(x, 0, 1) ** rng.uniform(0.85, 1.15)
    return np.round(x * 255).astype(np.uint8)


def augment(
    image: np.ndarray,
    ridges: np.ndarray,
    coarse: np.ndarray,
    fine: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, ...]:
    size = image.shape[0]
    m = random_affine(rng, size)
    dsize = (size, size)
    refl = cv2.BORDER_REFLECT_101
    image = cv2.warpAffine(image, m, dsize, flags=cv2.INTER_LINEAR, borderMode=refl)
    ridges = cv2.warpAffine(ridges, m, dsize, flags=cv2.INTER_LINEAR, borderValue=0)
    coarse = cv2.warpAffine(coarse, m, dsize, flags=cv2.INTER_NEAREST, borderMode=refl)
    fine = cv2.warpAffine(fine, m, dsize, flags=cv2.INTER_NEAREST, borderMode=refl)
    return color_jitter(image, rng), ridges, coarse, fine


class EditDataset(Dataset):
    """Map-style dataset indexed by global sample id (see StepSampler). Epoch e shows every
    image once, in an order seeded by (seed, e)."""

    def __init__(
        self,
        images: list[Path],
        guides: list[Path],
        res: int,
        guide_size: int,
        seed: int = 0,
        augment: bool = True,
    ):
        if not images:
            raise ValueError("no training images")
        self.images, self.guides = list(images), list(guides)
        self.res, self.guide_size, self.seed, self.augment = res, guide_size, seed, augment
        self._cache: OrderedDict[int, tuple[tuple[np.ndarray, ...], ...]] = OrderedDict()

    def _source(self, index: int) -> tuple[tuple[np.ndarray, ...], ...]:
        """(guide-size image and guides, the same at the training resolution)."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        image = load_square(self.images[index], self.guide_size)
        guides = load_guides(self.guides[index])
        full = (image, guides.ridges, guides.coarse, guides.fine)
        item = (full, at_resolution(image, guides, self.res))
        self._cache[index] = item
        if len(self._cache) > CACHE_ITEMS:
            self._cache.popitem(last=False)
        return item

    def image_index(self, sample_id: int) -> int:
        n = len(self.images)
        epoch, pos = divmod(sample_id, n)
        order = np.random.default_rng([self.seed, epoch]).permutation(n)
        return int(order[pos])

    def sample(self, sample_id: int) -> EditSample:
        rng = np.random.default_rng([self.seed, 1, sample_id])
        full, parts = self._source(self.image_index(sample_id))
        if not self.augment:
            return make_sample(*parts, rng)
        if rng.random() >= P_CONTEXT:
            return make_sample(*augment(*parts, rng), rng)
        *parts, mask = context_crop(full, random_mask(rng, self.res), self.res, rng)
        if rng.random() < 0.5:
            parts, mask = [np.ascontiguousarray(a[:, ::-1]) for a in parts], mask[:, ::-1]
        parts[0] = color_jitter(parts[0], rng)
        return make_sample(*parts, rng, mask=np.ascontiguousarray(mask))

    def __getitem__(self, sample_id: int) -> dict[str, torch.Tensor]:
        s = self.sample(sample_id)
        return {
            "input": torch.from_numpy(encode(s)),
            "target": torch.from_numpy(to_target(s.image)),
        }


class StepSampler(Sampler[int]):
    """Sample ids for steps [start, stop): step s on rank r takes ids
    (s * world + r) * batch ... + batch - 1, so ranks never overlap and a resumed run
    continues with exactly the samples it would have seen."""

    def __init__(self, start: int, stop: int, batch: int, rank: int = 0, world: int = 1):
        self.start, self.stop, self.batch, self.rank, self.world = start, stop, batch, rank, world

    def __iter__(self):
        for step in range(self.start, self.stop):
            base = (step * self.world + self.rank) * self.batch
            yield from range(base, base + self.batch)

    def __len__(self) -> int:
        return max(0, self.stop - self.start) * self.batch
