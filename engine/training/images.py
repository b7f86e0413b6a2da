"""Image folders for training and evaluation: any images, any sizes, square-cropped."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside `folder`, sorted. Not recursive on purpose: a dataset's
    subfolders hold other things (faces/labels/ holds parsing maps, not photos). A folder
    made by `prepare-faces` lists its crops only: its MANIFEST.tsv, rejected.tsv and
    report.json are no images, and hidden files (its temp files while it runs) are left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    return sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".") and p.is_file()
    )


def list_photos(folders: list[Path]) -> list[Path]:
    """The photos directly inside each folder (not recursive, as for the generator:
    faces/labels/ holds parsing maps, not photos)."""
    try:
        found = sorted(p for folder in folders for p in list_images(folder))
    except FileNotFoundError as exc:
        raise ValueError(str(exc)) from None
    if not found:
        where = ", ".join(str(f) for f in folders)
        raise ValueError(f"no photos ({', '.join(IMAGE_EXTS)}) found in {where}")
    return found


def content_key(path: str | Path) -> str:
    """Cache key of an image: its content hash, so renamed or copied files still match."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:24]


def load_square(path: str | Path, size: int) -> np.ndarray:
    """RGB uint8 (size, size, 3): the centred square crop, resized (area filter when
    shrinking). Alpha is dropped, greyscale is expanded."""
    data = np.fromfile(str(path), np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode image {path}")
    h, w = bgr.shape[:2]
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    crop = bgr[y0 : y0 + side, x0 : x0 + side]
    if side != size:
        interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
        crop = cv2.resize(crop, (size, size), interpolation=interp)
    return np.ascontiguousarray(crop[:, :, ::-1])
