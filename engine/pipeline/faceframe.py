"""The square that frames a face the way the training photos are framed.

The edit generator learns on faces aligned FFHQ-style (eyes and mouth at fixed places, the
face about two thirds of the width; see training/prepare_faces.py). The engine frames the
face it edits the same way before resizing to the model's resolution, so that the model
sees every face at the scale it learned, whatever the size of the user's photo: a 512-px
portrait and the same portrait at 4096 px give the generator the same input. The frame
follows FFHQ's rule (Karras et al. 2019) on the eye centres and the mouth centre, here from
the face detector's keypoints; the crop stays axis-aligned (no rotation of the user's
pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..wire.protocol import Box

# MediaPipe short-range detector keypoints: eye (image-left), eye (image-right), nose tip,
# mouth centre, two ear tragions.
EYE_A, EYE_B, MOUTH = 0, 1, 3
# Where around the mask the detector looks first, in multiples of the mask's longer side:
# a face the mask is part of fills a good share of that square, as the detector needs.
NEAR_MASK = 4.0


@dataclass(frozen=True)
class FaceFrame:
    """An FFHQ-style square: centre (cx, cy) and side, in picture pixels."""

    cx: float
    cy: float
    side: float

    def box(self) -> Box:
        half = self.side / 2
        x0, y0 = round(self.cx - half), round(self.cy - half)
        side = max(1, round(self.side))
        return Box(x0, y0, side, side)

    def contains(self, x: float, y: float) -> bool:
        half = self.side / 2
        return abs(x - self.cx) <= half and abs(y - self.cy) <= half


def ffhq_frame(eye_a: np.ndarray, eye_b: np.ndarray, mouth: np.ndarray) -> FaceFrame:
    """FFHQ's crop square from the two eye centres and the mouth centre (axis-aligned)."""
    eye_a, eye_b, mouth = (np.asarray(p, np.float64) for p in (eye_a, eye_b, mouth))
    eyes = (eye_a + eye_b) / 2
    eye_to_eye = eye_b - eye_a
    eye_to_mouth = mouth - eyes
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    centre = eyes + eye_to_mouth * 0.1
    return FaceFrame(float(centre[0]), float(centre[1]), float(2 * half))


def frames(finder, rgb: np.ndarray, roi=None) -> list[FaceFrame]:
    """The FFHQ frames of the faces the detector finds in `rgb` (inside `roi`)."""
    return [ffhq_frame(kps[EYE_A], kps[EYE_B], kps[MOUTH]) for _, kps, _ in finder.detect(rgb, roi)]


def frame_for_mask(finder, rgb: np.ndarray, bbox: Box) -> FaceFrame | None:
    """The frame of the face the masked region belongs to: the largest frame holding the
    mask's centre, searched near the mask first, then in the whole picture. None if no
    face holds it (the engine then falls back to the plain context crop)."""
    from .facemesh import Roi

    cx, cy = bbox.x + bbox.width / 2, bbox.y + bbox.height / 2
    h, w = rgb.shape[:2]
    near = Roi(cx, cy, NEAR_MASK * max(bbox.width, bbox.height), 0.0)
    for roi in (near, None):
        if roi is not None and roi.size >= max(h, w):
            continue
        hits = [f for f in frames(finder, rgb, roi) if f.contains(cx, cy)]
        if hits:
            return max(hits, key=lambda f: f.side)
    return None
