"""One restore, in process: photo + occluder mask -> face mesh -> UV prior -> generator ->
composite -> patch.

The user marks what hides the face (a hand, glasses, a strand, text); nothing else is
drawn. The face is found with its occluder in place (facemesh.py), the square around face
and mask is cut out and brought to the model's resolution, the face-structure prior is
rendered from the visible part (uvprior.py) and the generator fills the mask with it as
extra channels (modelcard.RESTORE_CHANNELS). Only the mask's bounding box comes back, as
for an edit. `method` runs a baseline instead: OpenCV's Telea or Navier-Stokes inpainting.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

from ...pipeline import pasteback, preprocess
from ...pipeline.facemesh import FACEMESH_DIR, FaceNotFound, face_finder
from ...pipeline.pasteback import generate_patch
from ...pipeline.result import EditError, EditResult, Progress, opencv
from ...pipeline.runtime import CancelToken, Model
from ...wire.protocol import EMPTY_MASK, NO_FACE, Box
from .uvprior import CanonicalMesh, MeshRaster, rasterize_mesh, render_prior

DEFAULT_RESTORE_MODEL = "sketchfill-restore"
# Context around face and mask, as a fraction of their box's longer side: the training
# photos are framed so the face mesh spans about two thirds of the picture.
FACE_MARGIN = 0.25
# The prior is rendered at most at this size and resized to the model's: the rasteriser is
# plain numpy, and the prior is a coarse guide.
PRIOR_SIDE = 256
BASELINES = ("telea", "ns")
INPAINT_RADIUS = 5


def texture_size(res: int) -> int:
    """The UV texture's side for a prior rendered at `res` (half: about a texel a pixel
    where the face covers two thirds of the frame)."""
    return max(32, res // 2)


@functools.cache
def load_canonical_mesh() -> CanonicalMesh:
    return CanonicalMesh.load(FACEMESH_DIR / "canonical_face_model.obj")


def restore_input(
    image: np.ndarray, hole: np.ndarray, prior: np.ndarray, known: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """The (9, R, R) float32 generator input of modelcard.RESTORE_CHANNELS from RGB 0-255
    image and prior (R, R, 3), hole and known (R, R) in [0, 1], noise (R, R) ~ N(0, 1)."""
    keep = 1.0 - hole
    erased = (image / 127.5 - 1.0) * keep[..., None]
    guide = (prior / 127.5 - 1.0) * known[..., None]
    planes = [
        *erased.transpose(2, 0, 1),
        hole,
        known,
        *guide.transpose(2, 0, 1),
        noise * hole,
    ]
    return np.stack(planes).astype(np.float32)


def prior_at(
    rgb: np.ndarray, hole: np.ndarray, points: np.ndarray, res: int
) -> tuple[np.ndarray, np.ndarray]:
    """The prior (RGB 0-255, known) for a res x res frame whose landmarks are `points`,
    rendered at most at PRIOR_SIDE."""
    side = min(res, PRIOR_SIDE)
    if side != res:
        k = side / res
        rgb = np.asarray(Image.fromarray(rgb.astype(np.uint8)).resize((side, side), Image.BOX))
        hole = np.asarray(Image.fromarray(hole.astype(np.float32)).resize((side, side), Image.BOX))
        points = points * k
    raster: MeshRaster = rasterize_mesh(
        load_canonical_mesh(), points, (side, side), texture_size(side)
    )
    prior, known = render_prior(rgb.astype(np.float32), (hole > 0.05).astype(np.float32), raster)
    if side != res:
        prior = np.asarray(
            Image.fromarray(prior.clip(0, 255).astype(np.uint8)).resize((res, res), Image.BILINEAR),
            np.float32,
        )
        known = np.asarray(Image.fromarray(known).resize((res, res), Image.NEAREST), np.float32)
    return prior, known


def face_box(points: np.ndarray, width: int, height: int) -> Box:
    lo = np.floor(points[:, :2].min(0)).astype(int)
    hi = np.ceil(points[:, :2].max(0)).astype(int)
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], width), min(hi[1], height)
    return Box(int(x0), int(y0), int(max(x1 - x0, 1)), int(max(y1 - y0, 1)))


def _union(a: Box, b: Box) -> Box:
    x0, y0 = min(a.x, b.x), min(a.y, b.y)
    return Box(x0, y0, max(a.x1, b.x1) - x0, max(a.y1, b.y1) - y0)


def inpaint_baseline(rgb: np.ndarray, hole: np.ndarray, method: str) -> np.ndarray:
    """OpenCV's Telea or Navier-Stokes inpainting of `hole` (uint8 RGB in and out)."""
    cv2 = opencv("Telea and Navier-Stokes")
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    return cv2.inpaint(np.ascontiguousarray(rgb), hole.astype(np.uint8), INPAINT_RADIUS, flag)


def run_restore(
    model: Model | None,
    image: np.ndarray,
    mask: np.ndarray,
    seed: int = 0,
    feather: float = 0.0,
    *,
    method: str | None = None,
    landmarks: np.ndarray | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> EditResult:
    """Restore what `mask` (>= 128) hides on the face in `image` (RGBA). `landmarks`
    (468, 3) skips the face search (evaluation). `model=None` runs the baseline `method`."""
    report = progress or (lambda stage, fraction: None)
    token = cancel or CancelToken()
    regenerate = mask >= preprocess.MASK_THRESHOLD
    bbox = preprocess.mask_bbox(regenerate)
    if bbox is None:
        raise EditError(EMPTY_MASK, "the mask selects nothing: mark what hides the face")
    height, width = regenerate.shape

    if model is None:
        report("inpaint", 0.1)
        crop = preprocess.plan_crop(bbox, width, height, 0, preprocess.DEFAULT_MARGIN)
        c = crop.box
        filled = inpaint_baseline(
            image[c.y : c.y1, c.x : c.x1, :3], regenerate[c.y : c.y1, c.x : c.x1], method or "telea"
        )
        patch = pasteback.paste(image, regenerate, filled, c, bbox, feather, token)
        return EditResult(patch, bbox.x, bbox.y, seed)

    report("face", 0.05)
    if landmarks is None:
        try:
            near = (bbox.x, bbox.y, bbox.x1, bbox.y1)
            landmarks = face_finder().landmarks(image, near).points
        except FaceNotFound as exc:
            raise EditError(NO_FACE, str(exc)) from None
    token.check()

    res = model.resolution
    crop = preprocess.plan_crop(
        _union(face_box(landmarks, width, height), bbox), width, height, 0, FACE_MARGIN
    )
    k = res / crop.side
    origin = np.array([crop.box.x - crop.pad_left, crop.box.y - crop.pad_top, 0.0])
    points = (landmarks - origin) * k
    hole = preprocess.resize_mask(preprocess.square_crop(regenerate, crop), res)
    rgb = preprocess.resize_rgb(preprocess.square_crop(image[..., :3], crop, "edge"), res)

    report("prior", 0.15)
    if model.card.extra.get("prior", True):
        prior, known = prior_at(rgb, hole, points, res)
    else:  # a model trained without the prior (the evaluation's ablation)
        prior, known = np.zeros((res, res, 3), np.float32), np.zeros((res, res), np.float32)
    noise = np.random.default_rng(seed).standard_normal((res, res), dtype=np.float32)
    tensor = restore_input(rgb.astype(np.float32), hole, prior, known, noise)[None]
    token.check()
    report("generate", 0.3)
    return generate_patch(
        model, tensor, image, regenerate, crop, bbox, seed, feather, report, token
    )
