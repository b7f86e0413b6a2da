"""Training data for the tone tool, from any folders of photos (no pairs needed).

Each step draws, for every batch item, one photo with a random tone fault (exposure,
gamma, contrast, colour cast, lifted blacks; some photos are left as they are), the fixed
algorithm's answer for it (the "intermediate" target of the colour loss) and an unrelated
untouched photo (what the naturalness critic learns real photos look like). Draws are
seeded by (seed, step), so a resumed run sees the same batches it would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ...training.images import list_photos
from .infer import fixed_tone

CACHE_SIDE = 256  # photos are held in memory at this short side


def load_photo(path: Path, side: int = CACHE_SIDE) -> np.ndarray:
    with Image.open(path) as img:
        img = img.convert("RGB")
        scale = side / min(img.size)
        size = (max(side, round(img.width * scale)), max(side, round(img.height * scale)))
        return np.asarray(img.resize(size, Image.Resampling.BOX))


def degrade(rgb: np.ndarray, rng: np.random.Generator, keep: float = 0.15) -> np.ndarray:
    """A random tone fault of the kind auto tone should repair (uint8 in and out)."""
    if rng.random() < keep:
        return rgb
    x = rgb.astype(np.float32) / 255.0
    x = x * np.exp(rng.normal(0.0, 0.12, 3)).astype(np.float32)  # colour cast
    x = np.clip(x * 2.0 ** rng.uniform(-1.3, 0.8), 0, 1)  # exposure
    x = x ** np.exp(rng.normal(0.0, 0.3))  # gamma
    x = 0.5 + (x - 0.5) * rng.uniform(0.6, 1.25)  # contrast
    if rng.random() < 0.3:
        x = x + rng.uniform(0.0, 0.1) * (1 - x)  # lifted blacks (faded print)
    return np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)


@dataclass
class Batch:
    inputs: np.ndarray  # B, 3, R, R float32 in [0, 1]: faulty photos
    targets: np.ndarray  # the fixed algorithm's answer for each input
    natural: np.ndarray  # unrelated untouched photos
    originals: np.ndarray  # each input before its fault (for sample sheets only)


class ToneData:
    def __init__(self, folders: list[Path], res: int):
        self.paths = list_photos(folders)
        self.photos = [load_photo(p) for p in self.paths]
        self.res = res

    def crop(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """A random square crop (60-100 % of the short side), maybe mirrored, at res."""
        photo = self.photos[index]
        h, w = photo.shape[:2]
        side = int(min(h, w) * rng.uniform(0.6, 1.0))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        tile = photo[y : y + side, x : x + side]
        if rng.random() < 0.5:
            tile = tile[:, ::-1]
        img = Image.fromarray(np.ascontiguousarray(tile), "RGB")
        return np.asarray(img.resize((self.res, self.res), Image.Resampling.BOX))

    def batch(self, size: int, seed: int, step: int) -> Batch:
        rng = np.random.default_rng([seed, step])
        originals, inputs, targets, natural = [], [], [], []
        for _ in range(size):
            first, second = rng.choice(len(self.photos), 2, replace=len(self.photos) < 2)
            photo = self.crop(int(first), rng)
            faulty = degrade(photo, rng)
            originals.append(photo)
            inputs.append(faulty)
            targets.append(fixed_tone(faulty))
            natural.append(self.crop(int(second), rng))
        return Batch(*(_chw(np.stack(a)) for a in (inputs, targets, natural, originals)))


def _chw(a: np.ndarray) -> np.ndarray:
    return a.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
