"""Self-supervised scenes for the composite tool, from any folder of face photos.

A scene is made from one photo I: the source is I with its colour, tone and lighting
changed (exposure, gamma, cast, saturation, hue, a directional light), as if the face came
from another photo; the target is I with a different face J inside the face region,
recoloured to I's statistics there (a target photo always has a face of its own under the
pasted one, lit as the target is); the mask is a rough, wobbly, maybe feathered face region
reaching past or short of that face. The answer is I. The photos are framed like FFHQ, so
the face region is drawn around the middle. The same scenes, seeded per photo, are the
held-out evaluation's (`sketchfill eval-composite`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ...training.images import list_photos, load_square
from .infer import reinhard_transfer

# The face region in FFHQ-framed photos (fractions of the side), measured on the parsing
# maps of faces/labels: skin spans y 0.19-0.89, x 0.23-0.70, centre (0.48, 0.55).
FACE_CENTRE = (0.49, 0.55)
FACE_AXES = (0.21, 0.29)
PHOTO_SIDE = 256  # photos are held in memory at this size
UNCHANGED = 0.08  # share of scenes whose source needs no correction


@dataclass
class Scene:
    target: np.ndarray  # H, W, 3 uint8
    source: np.ndarray  # H, W, 3 uint8: the face layer pasted over the target
    mask: np.ndarray  # H, W uint8: where the source is pasted (soft edge)
    truth: np.ndarray  # H, W, 3 uint8


def face_region(size: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Normalised distance from a wobbly face ellipse's centre (< 1 inside), H x W float."""
    cy = FACE_CENTRE[1] + rng.normal(0, 0.015)
    cx = FACE_CENTRE[0] + rng.normal(0, 0.015)
    ax = FACE_AXES[0] * scale * rng.uniform(0.9, 1.12)
    ay = FACE_AXES[1] * scale * rng.uniform(0.9, 1.1)
    yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    dy, dx = (yy - cy) / ay, (xx - cx) / ax
    theta = np.arctan2(dy, dx)
    wobble = np.ones_like(theta)
    for k in (2, 3, 5):
        wobble += rng.uniform(0, 0.05) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return np.sqrt(dy**2 + dx**2) / wobble


def soft_inside(distance: np.ndarray, edge: float) -> np.ndarray:
    """1 inside the unit contour, 0 outside, a linear ramp `edge` (in distance units) wide."""
    if edge <= 0:
        return (distance < 1).astype(np.float32)
    return np.clip((1 - distance) / edge + 0.5, 0, 1).astype(np.float32)


def relight(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same photo as if taken under other light and processed otherwise (uint8)."""
    x = rgb.astype(np.float32) / 255.0
    size = x.shape[0]
    x = x * np.exp(rng.normal(0, 0.1, 3)).astype(np.float32)  # cast
    x = np.clip(x * 2.0 ** rng.uniform(-0.7, 0.6), 0, 1)  # exposure
    x = x ** np.exp(rng.normal(0, 0.22))  # tone curve
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * rng.uniform(0.6, 1.4)  # saturation
    if rng.random() < 0.5:  # hue: rotate the chroma plane
        x = _rotate_chroma(x, np.deg2rad(rng.uniform(-18, 18)))
    if rng.random() < 0.8:  # a light from one side
        phi = rng.uniform(0, 2 * np.pi)
        yy, xx = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size - 0.5
        ramp = (xx * np.cos(phi) + yy * np.sin(phi)) / 0.5
        x = x * (1 + rng.uniform(0.1, 0.6) * ramp)[..., None]
    x = 0.5 + (x - 0.5) * rng.uniform(0.8, 1.2)  # contrast
    return np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)


def _rotate_chroma(x: np.ndarray, angle: float) -> np.ndarray:
    """Rotate colours about the grey axis by `angle` (Rodrigues' formula)."""
    k = np.ones(3, np.float32) / np.sqrt(3)
    c, s = np.cos(angle), np.sin(angle)
    cross = np.cross(k, x)
    return x * c + cross * s + k * (x @ k)[..., None] * (1 - c)


def make_scene(photo: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> Scene:
    """One scene from two square photos of the same size (uint8 RGB)."""
    size = photo.shape[0]
    region = face_region(size, rng)
    core = soft_inside(region, 0.15) * soft_inside(region / rng.uniform(0.85, 1.0), 0.3)
    # The target's own face: another person, recoloured to this photo's face statistics.
    inside = region < 0.9
    other_face = reinhard_transfer(other, photo, inside, inside)
    w = core[..., None]
    target = np.clip(w * other_face + (1 - w) * photo + 0.5, 0, 255).astype(np.uint8)

    relit = photo if rng.random() < UNCHANGED else relight(photo, rng)
    # The user's rough cut: past the face or short of it, a hard or feathered edge. The
    # face layer itself may reach past the region the user selects.
    reach = rng.uniform(0.9, 1.25)
    edge = rng.choice([0.0, rng.uniform(0.02, 0.2)])
    mask = soft_inside(region / reach, edge)
    layer = mask if rng.random() < 0.5 else soft_inside(region / reach / rng.uniform(1, 1.3), edge)
    w = layer[..., None]
    source = np.clip(w * relit + (1 - w) * target + 0.5, 0, 255).astype(np.uint8)
    return Scene(target, source, (mask * 255 + 0.5).astype(np.uint8), photo)


class CompositeData:
    def __init__(self, folders: list[Path], res: int):
        self.paths = list_photos(folders)
        self.photos = [load_square(p, PHOTO_SIDE) for p in self.paths]
        self.res = res

    def scene(self, index: int, rng: np.random.Generator) -> Scene:
        other = int(rng.integers(len(self.photos) - 1))
        other += other >= index  # never the same photo
        photo, face = self.photos[index], self.photos[other % len(self.photos)]
        if rng.random() < 0.5:
            photo = photo[:, ::-1]
        if rng.random() < 0.5:
            face = face[:, ::-1]
        scene = make_scene(np.ascontiguousarray(photo), np.ascontiguousarray(face), rng)
        # A random zoom around the face: the tool sees a crop around the user's mask.
        side = photo.shape[0]
        crop = int(side * rng.uniform(0.7, 1.0))
        y, x = (int(rng.integers(0, side - crop + 1)) for _ in range(2))
        return Scene(*(self._resize(a[y : y + crop, x : x + crop]) for a in _fields(scene)))

    def _resize(self, a: np.ndarray) -> np.ndarray:
        mode = "L" if a.ndim == 2 else "RGB"
        img = Image.fromarray(np.ascontiguousarray(a), mode)
        return np.asarray(img.resize((self.res, self.res), Image.Resampling.BOX))

    def batch(self, size: int, seed: int, step: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, step])
        scenes = [self.scene(int(rng.integers(len(self.photos))), rng) for _ in range(size)]
        return {name: _nchw(np.stack([getattr(s, name) for s in scenes])) for name in FIELDS}


FIELDS = ("target", "source", "mask", "truth")


def _fields(scene: Scene) -> tuple[np.ndarray, ...]:
    return tuple(getattr(scene, name) for name in FIELDS)


def _nchw(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3:
        a = a[..., None]
    return a.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
