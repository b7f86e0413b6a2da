"""FFHQ-like face alignment from MediaPipe's face mesh: find faces, fit the mesh, measure the
head's pose, and cut a square crop that puts the eye centres and the mouth centre where they
sit in the project's aligned faces (../shared/data/faces/).

The crop's frame is FFHQ's (Karras et al.'s ffhq-dataset script): rotation from the eye line
and the eye-to-mouth line together, scale from max(2 x eye distance, 1.8 x eye-to-mouth
distance), so that a turned head (short eye distance) or a tilted one (short eye-to-mouth
distance) is not blown up. The frame of a face is matched to the frame of TEMPLATE, which was
measured with this very mesh on the 96 crops of ../shared/data/faces/ whose MANIFEST kind is
`aligned` (median, made left-right symmetric): the mesh's eye centres sit a few pixels below
dlib's, so FFHQ's own constants would frame ~4 % too tight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# The one place that names the face-mesh module: the layout refactor moves it.
from ..pipeline.facemesh import FaceMesh, Roi, roi_from_points

FACEMESH_DIR = Path(__file__).resolve().parents[1] / "assets" / "facemesh"
CANONICAL_OBJ = "canonical_face_model.obj"

# Eye centres (image-left eye first) and mouth centre as fractions of the crop's side,
# measured at 512 px: (192.1, 245.0), (319.9, 245.0), (256.0, 374.5).
TEMPLATE = np.array([[0.37523, 0.47852], [0.62477, 0.47852], [0.5, 0.73145]])

# MediaPipe mesh indices: the two eye contours (16 points each) and the mouth corners (FFHQ
# takes the mouth centre from the corners, which stay put when the mouth opens).
EYE_IMAGE_LEFT = (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173)
EYE_IMAGE_RIGHT = (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398)
MOUTH_CORNERS = (61, 291)
# Face width: the mesh's cheek-to-cheek points (jaw line at the ears).
CHEEKS = (234, 454)

MIN_PRESENCE = 0.5
ROI_SCALE = 1.5


@dataclass(frozen=True)
class Detection:
    box: np.ndarray  # x0 y0 x1 y1, picture pixels
    keypoints: np.ndarray  # (6, 2) the detector's keypoints (eyes first)
    score: float

    @property
    def width(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def _rot90_back(k: int, w: int, h: int) -> np.ndarray:
    """2x3 affine from np.rot90(picture, k) pixels back to the picture's (w x h) pixels."""
    # np.rot90 turns counter-clockwise; pixel centres at i + 0.5, as MediaPipe's.
    if k % 4 == 1:  # rotated is h wide, w high: (x', y') = (y, w - x)
        return np.array([[0.0, -1.0, w], [1.0, 0.0, 0.0]])
    if k % 4 == 2:
        return np.array([[-1.0, 0.0, w], [0.0, -1.0, h]])
    if k % 4 == 3:  # (x', y') = (h - y, x)
        return np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, h]])
    return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def _apply(affine: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ affine[:, :2].T + affine[:, 2]


def find_faces(fm: FaceMesh, rgb: np.ndarray) -> list[Detection]:
    """Every face the short-range detector sees, largest first. The detector looks at the
    whole picture at 128 px, so a face under about a tenth of the picture is looked for again
    in overlapping half-size tiles; a picture turned on its side or upside down is tried in
    its three other quarter turns (the detector is trained on upright faces)."""
    h, w = rgb.shape[:2]
    found = [Detection(b, k, s) for b, k, s in fm.detect(rgb)]
    if not found:
        side = max(h, w) / 2
        for cy in np.linspace(side / 2, max(h - side / 2, side / 2), 3):
            for cx in np.linspace(side / 2, max(w - side / 2, side / 2), 3):
                found += [Detection(b, k, s) for b, k, s in fm.detect(rgb, Roi(cx, cy, side, 0))]
        found = _merge(found)
    for k in (1, 3, 2):
        if found:
            break
        back = _rot90_back(k, w, h)
        for b, kps, s in fm.detect(np.ascontiguousarray(np.rot90(rgb, k))):
            corners = _apply(back, b.reshape(2, 2))
            box = np.concatenate([corners.min(0), corners.max(0)])
            found.append(Detection(box, _apply(back, kps), s))
    return sorted(found, key=lambda d: -d.width)


def _merge(found: list[Detection]) -> list[Detection]:
    """Drop tile detections that repeat a better one (tiles overlap by half)."""
    keep: list[Detection] = []
    for d in sorted(found, key=lambda d: -d.score):
        if all(_iou(d.box, k.box) < 0.3 for k in keep):
            keep.append(d)
    return keep


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / max(union, 1e-9)


def fit_mesh(fm: FaceMesh, rgb: np.ndarray, face: Detection) -> tuple[np.ndarray, float]:
    """(468, 3) mesh points of one detected face and the mesh model's presence score, the
    way FaceMesh.landmarks does it (detector crop, then MediaPipe's tracking crop) but for a
    face chosen here rather than the detector's most confident one."""
    box, kps = face.box, face.keypoints
    (ex0, ey0), (ex1, ey1) = kps[0], kps[1]
    roi = Roi(
        (box[0] + box[2]) / 2,
        (box[1] + box[3]) / 2,
        ROI_SCALE * face.width,
        float(np.arctan2(ey1 - ey0, ex1 - ex0)),
    )
    first = fm._mesh(rgb, roi)  # FaceMesh has no public call for "mesh in this crop"
    found = fm._mesh(rgb, roi_from_points(first.points))
    return found.points.astype(np.float64), found.presence


def key_points(mesh: np.ndarray) -> np.ndarray:
    """(3, 2): image-left eye centre, image-right eye centre, mouth centre."""
    xy = mesh[:, :2]
    return np.stack(
        [
            xy[list(EYE_IMAGE_LEFT)].mean(0),
            xy[list(EYE_IMAGE_RIGHT)].mean(0),
            xy[list(MOUTH_CORNERS)].mean(0),
        ]
    )


def _frame(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """FFHQ's crop frame of three key points: centre, angle of its x axis, half side."""
    eye_l, eye_r, mouth = points
    eye_avg = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    eye_to_mouth = mouth - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    return eye_avg + eye_to_mouth * 0.1, float(np.arctan2(x[1], x[0])), float(half)


def alignment(points: np.ndarray, size: int) -> np.ndarray:
    """2x3 similarity from picture pixels to the `size` crop that frames these key points as
    TEMPLATE's are framed."""
    c0, a0, h0 = _frame(points)
    c1, a1, h1 = _frame(TEMPLATE * size)
    k, a = h1 / h0, a1 - a0
    m = k * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.hstack([m, (c1 - m @ c0)[:, None]])


def scale_of(affine: np.ndarray) -> float:
    return float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))


def face_width(mesh: np.ndarray) -> float:
    """Cheek-to-cheek width of the face in picture pixels."""
    a, b = mesh[list(CHEEKS), :2]
    return float(np.hypot(*(b - a)))


_CANONICAL: np.ndarray | None = None


def _canonical() -> np.ndarray:
    """MediaPipe's canonical face (468 x 3) in picture axes: x right, y down, z away."""
    global _CANONICAL
    if _CANONICAL is None:
        lines = (FACEMESH_DIR / CANONICAL_OBJ).read_text().splitlines()
        v = np.array([[float(t) for t in ln.split()[1:4]] for ln in lines if ln.startswith("v ")])
        _CANONICAL = v * np.array([1.0, -1.0, -1.0])  # the OBJ has y up and z towards us
    return _CANONICAL


def head_pose(mesh: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees: the rotation that best takes the canonical face onto
    this mesh (Kabsch; the mesh's z is in picture-pixel units, so scale is one number)."""
    src = _canonical()
    src = src - src.mean(0)
    dst = mesh - mesh.mean(0)
    u, _, vt = np.linalg.svd(dst.T @ src)
    d = np.sign(np.linalg.det(u @ vt))
    r = u @ np.diag([1.0, 1.0, d]) @ vt
    forward = r @ np.array([0.0, 0.0, -1.0])  # where the nose points; (0, 0, -1) is at us
    yaw = np.degrees(np.arctan2(forward[0], -forward[2]))
    pitch = np.degrees(np.arctan2(-forward[1], np.hypot(forward[0], forward[2])))
    roll = np.degrees(np.arctan2(r[1, 0], r[0, 0]))
    return float(yaw), float(pitch), float(roll)


def warp_face(rgb: np.ndarray, affine: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """The aligned crop (uint8 RGB) and the fraction of it that lies outside the photo.

    Outside the photo the crop is the photo mirrored at its edge, blurred more the farther it
    lies from the edge and faded a little towards the mean colour, as FFHQ pads: a hard
    black or a sharp mirror would be learnt as part of the face."""
    affine = affine.astype(np.float64)
    k = scale_of(affine)
    src = rgb
    if k < 0.5:  # shrink with area averaging first: bilinear at < 1/2 aliases
        f = min(1.0, 2 * k)
        src = cv2.resize(rgb, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        # with pixel centres at i + 0.5 a resize is a pure scale
        fx = src.shape[1] / rgb.shape[1]
        fy = src.shape[0] / rgb.shape[0]
        to_small = np.diag([fx, fy, 1.0])
        affine = affine @ np.linalg.inv(to_small)
    # cv2 maps pixel centres at integers; MediaPipe's (and ours) at i + 0.5
    shift = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1]])
    m = (np.linalg.inv(shift) @ np.vstack([affine, [0, 0, 1]]) @ shift)[:2]
    interp = cv2.INTER_CUBIC if scale_of(m) > 1.0 else cv2.INTER_LINEAR
    crop = cv2.warpAffine(src, m, (size, size), flags=interp, borderMode=cv2.BORDER_REFLECT_101)
    inside = cv2.warpAffine(
        np.ones(src.shape[:2], np.uint8),
        m,
        (size, size),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    padded = 1.0 - float(inside.mean())
    if padded <= 0.0:
        return crop, 0.0
    outside = inside == 0
    dist = cv2.distanceTransform(outside.astype(np.uint8), cv2.DIST_L2, 5)[outside][:, None]
    near = np.clip(dist / (0.05 * size), 0.0, 1.0)  # lightly blurred by the edge
    far = np.clip(dist / (0.25 * size), 0.0, 1.0)  # mirrored faces blur away
    # only the padded pixels are touched: whole-crop float arithmetic cost 3x the warp
    px = crop[outside].astype(np.float32)
    px += (cv2.GaussianBlur(crop, (0, 0), 0.01 * size)[outside].astype(np.float32) - px) * near
    px += (_wide_blur(crop, 0.05 * size)[outside] - px) * far
    mean = np.array(cv2.mean(crop, mask=inside)[:3], np.float32) if inside.any() else px.mean(0)
    px += (mean - px) * (0.6 * far)
    out = crop.copy()
    out[outside] = np.clip(px + 0.5, 0, 255).astype(np.uint8)
    return out, padded


def _wide_blur(rgb: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian blur of large sigma, done at a quarter of the size (16x fewer pixels, and
    the kernel a quarter as long: what it removes is all fine detail anyway)."""
    h, w = rgb.shape[:2]
    small = cv2.resize(rgb, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small.astype(np.float32), (0, 0), sigma / 4)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def is_grey(crop: np.ndarray, tolerance: float = 3.0) -> bool:
    """A black-and-white photo stored as RGB: channels that (nearly) never differ."""
    c = crop.astype(np.int16)
    spread = np.abs(c[..., 0] - c[..., 1]) + np.abs(c[..., 1] - c[..., 2])
    return float(spread.mean()) < tolerance


PHASH_SIDE = 12  # low DCT frequencies per axis: 143 bits with the DC term left out


def phash(crop: np.ndarray) -> int:
    """143-bit DCT perceptual hash of the aligned crop (grey 48x48, the lowest 12x12
    frequencies but DC against their median). Hashing the crop, not the photo, finds the
    same face saved at another size, re-compressed or re-framed. Not the usual 64 bits: on
    crops that are all aligned alike, 8x8 frequencies are mostly the common face layout, and
    measured on ../shared/data/public/ they put two different congress members 4 bits apart;
    at 143 bits only one sitter's near-identical neutral/smiling pairs come within 6."""
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    n = PHASH_SIDE
    small = cv2.resize(grey, (4 * n, 4 * n), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:n, :n].ravel()[1:]
    bits = low > np.median(low)
    return int("".join("1" if b else "0" for b in bits), 2)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
