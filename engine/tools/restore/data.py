"""Training samples for the restore generator: a face, an occluder mask on it, and the
face-structure prior rendered from what the mask leaves visible.

The face mesh of every photo (and of its mirror image) is found once, on the clean photo at
full size, and rasterised once at the training resolution (uvprior.MeshRaster depends on
the landmarks only); per sample only the mask, the prior's texture lookups and the noise
are new. Samples are a function of (seed, step, index), so runs are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ...pipeline.facemesh import FaceMesh, FaceNotFound
from ...training.images import list_photos, load_square
from .infer import FACEMESH_DIR, load_canonical_mesh, restore_input, texture_size
from .occluders import occluder_mask
from .uvprior import MeshRaster, rasterize_mesh, render_prior

SOURCE_SIDE = 512  # landmarks are found at this size, then scaled


@dataclass
class Face:
    image: np.ndarray  # res x res x 3 uint8
    points: np.ndarray  # (468, 3) at res
    raster: MeshRaster


def _jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mild exposure and colour changes, so the prior and the truth move together."""
    gain = rng.uniform(0.85, 1.15) * rng.uniform(0.94, 1.06, 3)
    return np.clip(image.astype(np.float32) * gain, 0, 255).astype(np.uint8)


class RestoreData:
    def __init__(self, folders: list[Path], res: int, prior: bool = True, log=print):
        self.paths = list_photos(folders)
        if not self.paths:
            raise ValueError(f"no photos in {', '.join(map(str, folders))}")
        self.res, self.prior = res, prior
        mesh = load_canonical_mesh()
        finder = FaceMesh(FACEMESH_DIR)
        self.faces: list[tuple[Face, Face]] = []
        skipped = []
        for path in self.paths:
            big = load_square(path, SOURCE_SIDE)
            pair = []
            for img in (big, np.ascontiguousarray(big[:, ::-1])):
                try:
                    points = finder.landmarks(img).points * (res / SOURCE_SIDE)
                except FaceNotFound:
                    break
                small = np.asarray(Image.fromarray(img).resize((res, res), Image.BOX))
                raster = rasterize_mesh(mesh, points, (res, res), texture_size(res))
                pair.append(Face(small, points, raster))
            if len(pair) == 2:
                self.faces.append((pair[0], pair[1]))
            else:
                skipped.append(path.name)
        if not self.faces:
            raise ValueError("no face found in any photo")
        log(f"{len(self.faces)} faces meshed ({len(skipped)} without a face: {skipped[:5]})")

    def sample(self, rng: np.random.Generator, kind: str | None = None):
        face = self.faces[int(rng.integers(len(self.faces)))][int(rng.integers(2))]
        image = _jitter(face.image, rng)
        mask, kind = occluder_mask(rng, face.points, self.res, kind)
        hole = mask.astype(np.float32)
        if self.prior:
            prior, known = render_prior(image.astype(np.float32), hole, face.raster)
        else:
            prior = np.zeros((*hole.shape, 3), np.float32)
            known = np.zeros(hole.shape, np.float32)
        noise = rng.standard_normal(hole.shape).astype(np.float32)
        x = restore_input(image.astype(np.float32), hole, prior, known, noise)
        target = image.astype(np.float32).transpose(2, 0, 1) / 127.5 - 1.0
        return x, target, hole, kind

    def batch(self, size: int, seed: int, step: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, 7, step])
        xs, ts, ms = zip(*(self.sample(rng)[:3] for _ in range(size)), strict=True)
        return {
            "input": np.stack(xs),
            "target": np.stack(ts).astype(np.float32),
            "mask": np.stack(ms)[:, None],
        }
