"""Occluder masks for the restore tool, placed on the face by its landmarks.

Things that hide part of a face in photos: a hand or an object over one side, glasses, a
strand of hair, a caption or watermark. Each is drawn relative to the face mesh (eyes,
face width), so masks land on the face at any framing. `fill_occluder` paints something in
the hole (a flat-shaded, textured blob), so the landmarks of an evaluation picture are found
with an occluder present, as the user's picture has one. Masks are uint8 {0, 1}.
"""

from __future__ import annotations

import cv2
import numpy as np

KINDS = ("side", "hand", "glasses", "strand", "text")
# MediaPipe mesh indices: outer eye corners (image-left first), chin, forehead.
EYES = (33, 263)
CHIN, FOREHEAD = 152, 10


def _frame(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Face centre, face width and the eye line's angle (radians)."""
    xy = points[:, :2]
    centre = (xy.min(0) + xy.max(0)) / 2
    width = float(np.ptp(xy[:, 0]))
    (x0, y0), (x1, y1) = xy[EYES[0]], xy[EYES[1]]
    return centre, width, float(np.arctan2(y1 - y0, x1 - x0))


def _ellipse(mask: np.ndarray, centre, axes, angle_rad: float) -> None:
    cv2.ellipse(
        mask,
        (round(centre[0]), round(centre[1])),
        (max(1, round(axes[0])), max(1, round(axes[1]))),
        np.degrees(angle_rad),
        0,
        360,
        1,
        -1,
    )


def side_mask(rng: np.random.Generator, points: np.ndarray, size: int) -> np.ndarray:
    """A large blob over one half of the face (a hand on the cheek, a phone, a shadowed
    side lost to an object): reaches from the face's edge towards, rarely past, the middle."""
    centre, width, angle = _frame(points)
    side = rng.choice((-1.0, 1.0))
    c, s = np.cos(angle), np.sin(angle)
    along = np.array([c, s])
    down = np.array([-s, c])
    cx = (
        centre
        + along * side * width * rng.uniform(0.18, 0.32)
        + down * width * rng.uniform(-0.15, 0.3)
    )
    axes = (width * rng.uniform(0.17, 0.28), width * rng.uniform(0.3, 0.55))
    mask = np.zeros((size, size), np.uint8)
    _ellipse(mask, cx, axes, angle + rng.normal(0, 0.25))
    return mask


def hand_mask(rng: np.random.Generator, points: np.ndarray, size: int) -> np.ndarray:
    """A palm with fingers anywhere on the face (a hand over the mouth, chin or eye)."""
    centre, width, _ = _frame(points)
    mask = np.zeros((size, size), np.uint8)
    palm = centre + rng.uniform(-0.3, 0.3, 2) * width
    palm_axes = (width * rng.uniform(0.12, 0.2), width * rng.uniform(0.1, 0.16))
    turn = rng.uniform(0, 2 * np.pi)
    _ellipse(mask, palm, palm_axes, turn)
    for k in range(int(rng.integers(2, 5))):
        a = turn + (k - 1.5) * 0.35 + rng.normal(0, 0.08)
        length = width * rng.uniform(0.22, 0.38)
        tip = palm + length * np.array([np.cos(a), np.sin(a)])
        thick = max(1, round(width * rng.uniform(0.05, 0.08)))
        cv2.line(
            mask, tuple(np.round(palm).astype(int)), tuple(np.round(tip).astype(int)), 1, thick
        )
    return mask


def glasses_mask(rng: np.random.Generator, points: np.ndarray, size: int) -> np.ndarray:
    """Dark or reflective lenses over one or both eyes, with the bridge."""
    _, width, angle = _frame(points)
    mask = np.zeros((size, size), np.uint8)
    eyes = [points[i, :2] for i in (33, 133)], [points[i, :2] for i in (362, 263)]
    lenses = [(a + b) / 2 for a, b in eyes]
    which = [0, 1] if rng.random() < 0.6 else [int(rng.integers(0, 2))]
    axes = (width * rng.uniform(0.11, 0.15), width * rng.uniform(0.07, 0.11))
    for i in which:
        _ellipse(mask, lenses[i] + rng.normal(0, 0.01 * width, 2), axes, angle)
    if len(which) == 2:
        thick = max(1, round(width * 0.03))
        p0, p1 = (np.round(v).astype(int) for v in lenses)
        cv2.line(mask, tuple(p0), tuple(p1), 1, thick)
    return mask


def strand_mask(rng: np.random.Generator, points: np.ndarray, size: int) -> np.ndarray:
    """A few curved strands of hair falling across the face from the top."""
    _, width, _ = _frame(points)
    mask = np.zeros((size, size), np.uint8)
    top = points[FOREHEAD, :2]
    for _ in range(int(rng.integers(1, 4))):
        x = top[0] + rng.uniform(-0.4, 0.4) * width
        y = top[1] - 0.05 * width
        drift = rng.uniform(-0.5, 0.5)
        pts = []
        for t in np.linspace(0, 1, 12):
            pts.append((x + drift * width * t**1.5 * 0.6, y + t * width * rng.uniform(0.7, 1.0)))
        thick = max(1, round(width * rng.uniform(0.02, 0.06)))
        cv2.polylines(mask, [np.round(pts).astype(np.int32)], False, 1, thick)
    return mask


def text_mask(rng: np.random.Generator, points: np.ndarray, size: int) -> np.ndarray:
    """A line of caption or watermark text across the face."""
    centre, width, _ = _frame(points)
    mask = np.zeros((size, size), np.uint8)
    letters = "".join(rng.choice(list("ABCDEFGHKMNPRSTWXYZ0123456789"), int(rng.integers(4, 9))))
    scale = width / 160 * rng.uniform(0.8, 1.6)
    thick = max(1, round(scale * rng.uniform(1.5, 3)))
    (tw, th), _ = cv2.getTextSize(letters, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    org = centre + np.array([-tw / 2, th / 2]) + rng.uniform(-0.3, 0.3, 2) * width
    cv2.putText(
        mask, letters, tuple(np.round(org).astype(int)), cv2.FONT_HERSHEY_SIMPLEX, scale, 1, thick
    )
    return mask


MAKERS = {
    "side": side_mask,
    "hand": hand_mask,
    "glasses": glasses_mask,
    "strand": strand_mask,
    "text": text_mask,
}
# Training mix: one-side masks are where the mirrored prior has most to give.
P_KINDS = {"side": 0.4, "hand": 0.2, "glasses": 0.15, "strand": 0.12, "text": 0.13}


def occluder_mask(
    rng: np.random.Generator, points: np.ndarray, size: int, kind: str | None = None
) -> tuple[np.ndarray, str]:
    """A mask of the given (or a random) kind on the face with landmarks `points`."""
    if kind is None:
        kind = str(rng.choice(list(P_KINDS), p=list(P_KINDS.values())))
    mask = MAKERS[kind](rng, points, size)
    if not mask.any():  # a face pushed to the frame's edge: fall back on a blob on it
        mask = side_mask(rng, points, size)
    return mask, kind


def fill_occluder(image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The picture with something opaque in the hole: a shaded colour with some texture."""
    h, w = mask.shape
    base = rng.uniform(30, 230, 3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w)
    shade = 1 + 0.3 * (rng.uniform(-1, 1) * xx + rng.uniform(-1, 1) * yy)
    noise = cv2.GaussianBlur(rng.normal(0, 12, (h, w)).astype(np.float32), (0, 0), 2)
    fill = np.clip(base * shade[..., None] + noise[..., None], 0, 255)
    out = image.astype(np.float32).copy()
    m = mask.astype(bool)
    out[m] = fill[m]
    return out.astype(np.uint8)
