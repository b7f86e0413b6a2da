"""Find a face and its 468 MediaPipe face-mesh landmarks, with ONNX Runtime only.

The two networks are MediaPipe's short-range face detector and face-mesh model (Apache-2.0),
converted to ONNX by training/facemesh_convert.py. The pipeline follows MediaPipe's own
graphs: detect on the whole picture at 128 px, crop a square 1.5x the face box turned so the
eyes are level, predict the mesh at 192 px, then crop again around that mesh and predict once
more (MediaPipe's tracking step), which settles the mesh on faces the detector boxed loosely.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

FACEMESH_DIR = Path(__file__).resolve().parents[1] / "assets" / "facemesh"
DETECTOR_FILE = "face_detection.onnx"
MESH_FILE = "face_landmark.onnx"
DETECT_SIZE = 128
MESH_SIZE = 192
MIN_DETECTION = 0.5
MIN_PRESENCE = 0.5
ROI_SCALE = 1.5
NMS_IOU = 0.3
# MediaPipe's eye landmarks that level the crop (image-left eye first).
EYE_OUTER = (33, 263)


class FaceNotFound(Exception):
    """No face in the picture the mesh could be fitted to."""


@dataclass(frozen=True)
class Roi:
    """A square crop: centre, side and the rotation (radians) that levels the eyes."""

    cx: float
    cy: float
    size: float
    angle: float

    def to_crop(self, out: int) -> np.ndarray:
        """2x3 affine from picture pixels to the `out`-sized crop's pixels."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        k = out / self.size
        # rotate by -angle about the centre, scale, move the centre to the crop's middle
        m = np.array([[c, s], [-s, c]]) * k
        t = np.array([out / 2, out / 2]) - m @ np.array([self.cx, self.cy])
        return np.hstack([m, t[:, None]])


@dataclass(frozen=True)
class FaceLandmarks:
    points: np.ndarray  # (468, 3) float32: x, y in picture pixels, z in the same scale
    presence: float  # the mesh model's face score, 0-1


def _anchors() -> np.ndarray:
    """(896, 2) anchor centres of the short-range detector (MediaPipe's SSD anchor options:
    4 layers, strides 8, 16, 16, 16, two anchors per layer and cell, fixed size)."""
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):
        n = DETECT_SIZE // stride
        ys, xs = np.mgrid[0:n, 0:n]
        centres = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], -1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80, 80)))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def _warp(rgb: np.ndarray, affine: np.ndarray, out: int) -> np.ndarray:
    """The `out`-sized crop given by a picture->crop affine (bilinear, black outside)."""
    inv = np.linalg.inv(np.vstack([affine, [0, 0, 1]]))[:2]
    img = as_image(rgb)
    crop = img.transform((out, out), Image.Transform.AFFINE, inv.ravel(), Image.BILINEAR)
    return np.asarray(crop, np.float32)[..., :3]


def as_image(pixels: np.ndarray) -> Image.Image:
    """A PIL view of an RGB or RGBA uint8 picture; contiguous RGBA is shared, not copied (a
    50 MP photo would cost a 150 MB copy for two small crops)."""
    if pixels.ndim == 3 and pixels.shape[2] == 4 and pixels.flags.c_contiguous:
        h, w = pixels.shape[:2]
        return Image.frombuffer("RGBA", (w, h), pixels, "raw", "RGBA", 0, 1)
    return Image.fromarray(np.ascontiguousarray(pixels[..., :3]))


class FaceMesh:
    """The detector and mesh sessions from one folder (see DETECTOR_FILE, MESH_FILE)."""

    def __init__(self, folder: str | os.PathLike[str], threads: int = 1):
        import onnxruntime as ort

        from .runtime import session_options

        folder = Path(folder)
        opts = session_options(threads)
        cpu = ["CPUExecutionProvider"]
        self.detector = ort.InferenceSession(str(folder / DETECTOR_FILE), opts, providers=cpu)
        self.mesh = ort.InferenceSession(str(folder / MESH_FILE), opts, providers=cpu)
        self.anchors = _anchors()

    def detect(
        self, rgb: np.ndarray, roi: Roi | None = None
    ) -> list[tuple[np.ndarray, np.ndarray, float]]:
        """Faces as (box x0 y0 x1 y1, 6 keypoints (x, y), score) in picture pixels, best
        first, in the square `roi` (default: the whole picture, letterboxed)."""
        h, w = rgb.shape[:2]
        roi = roi or Roi(w / 2, h / 2, max(h, w), 0.0)
        affine = roi.to_crop(DETECT_SIZE)
        x = _warp(rgb, affine, DETECT_SIZE) / 127.5 - 1.0
        raw, logits = self.detector.run(None, {"input": x.transpose(2, 0, 1)[None]})
        scores = _sigmoid(logits[0, :, 0])
        keep = scores >= MIN_DETECTION
        if not keep.any():
            return []
        raw, scores, anchors = raw[0][keep] / DETECT_SIZE, scores[keep], self.anchors[keep]
        centre = raw[:, :2] + anchors
        half = raw[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], 1)
        keypoints = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None]
        back = np.linalg.inv(np.vstack([affine, [0, 0, 1]]))[:2]

        def to_px(a: np.ndarray) -> np.ndarray:  # detector units (0-1) -> picture pixels
            return (a * DETECT_SIZE) @ back[:, :2].T + back[:, 2]

        faces = []
        order = np.argsort(-scores)
        while order.size:  # weighted NMS, as MediaPipe blends overlapping detections
            overlap = _iou(boxes[order[0]], boxes[order]) > NMS_IOU
            group, order = order[overlap], order[~overlap]
            wts = scores[group][:, None]
            box = to_px(((boxes[group] * wts).sum(0) / wts.sum()).reshape(2, 2))
            kps = to_px((keypoints[group] * wts[:, :, None]).sum(0) / wts.sum())
            box = np.concatenate([box.min(0), box.max(0)])
            faces.append((box, kps, float(scores[group[0]])))
        return faces

    def _mesh(self, rgb: np.ndarray, roi: Roi) -> FaceLandmarks:
        affine = roi.to_crop(MESH_SIZE)
        x = _warp(rgb, affine, MESH_SIZE) / 255.0
        raw, presence = self.mesh.run(None, {"input": x.transpose(2, 0, 1)[None]})
        pts = raw.reshape(468, 3).astype(np.float64)
        inv = np.linalg.inv(np.vstack([affine, [0, 0, 1]]))[:2]
        xy = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        z = pts[:, 2] * roi.size / MESH_SIZE
        points = np.concatenate([xy, z[:, None]], 1).astype(np.float32)
        return FaceLandmarks(points, float(_sigmoid(presence.reshape(()))))

    def landmarks(
        self, rgb: np.ndarray, near: tuple[float, float, float, float] | None = None
    ) -> FaceLandmarks:
        """The mesh of the face in `rgb` (RGB or RGBA uint8) nearest `near` (a box x0 y0 x1
        y1, e.g. the occluder's),
        else of the most confident face; FaceNotFound when there is none. A face too small
        to be seen in the whole picture is looked for again around `near`."""
        faces = self.detect(rgb)
        if not faces and near is not None:
            cx, cy = (near[0] + near[2]) / 2, (near[1] + near[3]) / 2
            for scale in (3.0, 6.0):
                side = scale * max(near[2] - near[0], near[3] - near[1], 8)
                faces = self.detect(rgb, Roi(cx, cy, side, 0.0))
                if faces:
                    break
        if not faces:
            raise FaceNotFound(
                "no face found in the picture: the restore tool needs a face seen from the "
                "front or side, at least about a tenth of the picture's width"
            )
        if near is not None:
            box = np.asarray(near, np.float64)
            faces = sorted(faces, key=lambda f: -_iou(box, f[0][None])[0] - f[2] * 1e-3)
        box, kps, _ = faces[0]
        (ex0, ey0), (ex1, ey1) = kps[0], kps[1]
        roi = Roi(
            (box[0] + box[2]) / 2,
            (box[1] + box[3]) / 2,
            ROI_SCALE * max(box[2] - box[0], box[3] - box[1]),
            float(np.arctan2(ey1 - ey0, ex1 - ex0)),
        )
        first = self._mesh(rgb, roi)
        found = self._mesh(rgb, roi_from_points(first.points))
        if found.presence < MIN_PRESENCE:
            raise FaceNotFound(
                f"the face mesh does not fit the detected face (score {found.presence:.2f})"
            )
        return found


def roi_from_points(points: np.ndarray) -> Roi:
    """MediaPipe's tracking crop: eyes levelled, 1.5x the mesh's extent in that frame."""
    (x0, y0), (x1, y1) = points[EYE_OUTER[0], :2], points[EYE_OUTER[1], :2]
    angle = float(np.arctan2(y1 - y0, x1 - x0))
    c, s = np.cos(angle), np.sin(angle)
    rot = points[:, :2] @ np.array([[c, -s], [s, c]])  # into the levelled frame
    lo, hi = rot.min(0), rot.max(0)
    cx, cy = (lo + hi) / 2 @ np.array([[c, s], [-s, c]])  # the middle, back in the picture
    return Roi(float(cx), float(cy), float(ROI_SCALE * (hi - lo).max()), angle)


@functools.cache
def face_finder() -> FaceMesh:
    """The shipped detector and mesh, loaded once per process (restore, face-framed edits)."""
    return FaceMesh(FACEMESH_DIR)
