"""Free-form training masks: random brush strokes and face-part shaped blobs.

SC-FEGAN trains on free-form strokes plus masks shaped like face parts, so that the model
sees both the scribbles users erase with and whole eyes, noses or hairlines. The training
faces are aligned FFHQ-style (face box ~66% of the width), so part positions come from a
fixed template, jittered per sample. The template is the mean part geometry measured on the
CelebAMask-HQ label maps shipped with the training set (faces/labels/0186-0189.png);
tests/test_train_data.py re-checks it against those maps. All coordinates are fractions of
the image side, so masks work at any size. Masks are uint8 {0, 1}, 1 = regenerate.
"""

from __future__ import annotations

import cv2
import numpy as np

# name -> ellipses (cx, cy, rx, ry) in fractions of the image side; "l_" is image-left.
PART_TEMPLATE: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "eye_l": ((0.375, 0.475, 0.075, 0.040),),
    "eye_r": ((0.625, 0.475, 0.075, 0.040),),
    "brow_eye_l": ((0.370, 0.450, 0.110, 0.080),),
    "brow_eye_r": ((0.630, 0.450, 0.110, 0.080),),
    "eyes": ((0.375, 0.470, 0.090, 0.055), (0.625, 0.470, 0.090, 0.055)),
    "nose": ((0.500, 0.565, 0.080, 0.115),),
    "mouth": ((0.500, 0.745, 0.125, 0.055),),
    "ear_l": ((0.195, 0.585, 0.050, 0.090),),
    "ear_r": ((0.800, 0.585, 0.050, 0.090),),
}
# Hair: the band between a head ellipse and the face ellipse, cut to a random arc.
HEAD_ELLIPSE = (0.50, 0.42, 0.40, 0.40)
FACE_ELLIPSE = (0.50, 0.56, 0.27, 0.37)
PARTS: tuple[str, ...] = (*PART_TEMPLATE, "hair")

# Area limits as fractions of the image: "from small to about half the face" (the face
# covers ~0.44 of an aligned image).
MIN_AREA = 0.004
MAX_AREA = 0.22


def stroke_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """DeepFill v2 / SC-FEGAN style brush strokes: polylines with round joints."""
    mask = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        # Start mostly on the face, where edits happen.
        x, y = rng.uniform(0.2, 0.8, 2) * size
        width = max(1, int(rng.uniform(0.015, 0.06) * size))
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(2, 9))):
            angle += rng.uniform(-1.0, 1.0)
            length = rng.uniform(0.03, 0.14) * size
            nx = float(np.clip(x + length * np.cos(angle), 0, size - 1))
            ny = float(np.clip(y + length * np.sin(angle), 0, size - 1))
            cv2.line(mask, (round(x), round(y)), (round(nx), round(ny)), 1, width)
            cv2.circle(mask, (round(nx), round(ny)), width // 2, 1, -1)
            x, y = nx, ny
    return mask


def _blob(rng: np.random.Generator, size: int, ellipse, scale: float) -> np.ndarray:
    """A jittered ellipse with a wobbly outline (smooth radial noise), as a polygon."""
    cx, cy, rx, ry = ellipse
    cx += rng.normal(0, 0.015)
    cy += rng.normal(0, 0.015)
    rx *= scale * rng.uniform(0.9, 1.1)
    ry *= scale * rng.uniform(0.9, 1.1)
    rot = rng.uniform(-0.25, 0.25)
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    wobble = 1.0
    for k in (2, 3, 5):
        wobble = wobble + rng.uniform(0, 0.12) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    px, py = rx * wobble * np.cos(t), ry * wobble * np.sin(t)
    x = cx + px * np.cos(rot) - py * np.sin(rot)
    y = cy + px * np.sin(rot) + py * np.cos(rot)
    return np.round(np.stack([x, y], 1) * size).astype(np.int32)


def _ellipse_fill(size: int, ellipse, scale: float = 1.0) -> np.ndarray:
    cx, cy, rx, ry = ellipse
    out = np.zeros((size, size), np.uint8)
    axes = (max(1, round(rx * scale * size)), max(1, round(ry * scale * size)))
    cv2.ellipse(out, (round(cx * size), round(cy * size)), axes, 0, 0, 360, 1, -1)
    return out


def hair_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    jitter = np.array([*rng.normal(0, 0.02, 2), 0, 0])
    head = _ellipse_fill(size, np.array(HEAD_ELLIPSE) + jitter, rng.uniform(0.95, 1.1))
    face = _ellipse_fill(size, np.array(FACE_ELLIPSE) + jitter, rng.uniform(0.9, 1.05))
    band = head & (1 - face)
    # Keep an arc of the band (angle measured around the head centre, 0 = straight up).
    yy, xx = np.mgrid[0:size, 0:size] / size
    ang = np.arctan2(xx - HEAD_ELLIPSE[0], HEAD_ELLIPSE[1] - yy)
    centre = rng.uniform(-1.5, 1.5)
    half = rng.uniform(0.3, 1.2)
    arc = np.abs(np.angle(np.exp(1j * (ang - centre)))) < half
    return (band & arc).astype(np.uint8)


def part_mask(rng: np.random.Generator, size: int, part: str | None = None) -> np.ndarray:
    name = part or str(rng.choice(PARTS))
    if name == "hair":
        return hair_mask(rng, size)
    mask = np.zeros((size, size), np.uint8)
    # Squared uniform: mostly snug masks, sometimes up to ~2.3x the part.
    scale = 1.0 + 1.3 * rng.random() ** 2
    for ellipse in PART_TEMPLATE[name]:
        cv2.fillPoly(mask, [_blob(rng, size, ellipse, scale)], 1)
    return mask


# Share of plain rectangles: what a selection tool makes, and the mask-only benchmark's
# hole (a centred square of half the side, a quarter of the picture).
P_BOX = 0.15
BOX_SIDE = (0.15, 0.6)


def box_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """An axis-aligned rectangle on the face, sides BOX_SIDE of the image side."""
    h, w = (rng.uniform(*BOX_SIDE, 2) * size).astype(int)
    cy, cx = rng.normal([0.55, 0.5], 0.06) * size
    y0 = int(np.clip(cy - h / 2, 0, size - h))
    x0 = int(np.clip(cx - w / 2, 0, size - w))
    mask = np.zeros((size, size), np.uint8)
    mask[y0 : y0 + h, x0 : x0 + w] = 1
    return mask


def random_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """A rectangle (P_BOX) or else strokes (40%), a face part (45%) or both (15%), between
    MIN_AREA and MAX_AREA."""
    if rng.random() < P_BOX:
        return box_mask(rng, size)
    mask = np.zeros((size, size), np.uint8)
    for _ in range(10):
        kind = rng.random()
        mask = stroke_mask(rng, size) if kind < 0.4 else part_mask(rng, size)
        if kind >= 0.85:
            mask |= stroke_mask(rng, size)
        if MIN_AREA <= mask.mean() <= MAX_AREA:
            break
    if mask.mean() > MAX_AREA:
        # Rare leftover: erode until within bounds rather than return a giant hole.
        kernel = np.ones((3, 3), np.uint8)
        while mask.mean() > MAX_AREA:
            mask = cv2.erode(mask, kernel)
    if not mask.any():
        mask = part_mask(rng, size, "nose")
    return mask
