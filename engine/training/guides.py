"""Per-image guide cache: HED ridges and region maps, computed once per image.

HED costs ~1.6 s per 512-px image on two CPU cores and the segmentations ~0.7 s, far too
slow per training sample. They are computed once, at the guide size, into
`<cache>/<content hash>-<size>.npz`; training then warps image, ridges and regions together
and derives thinned partial sketches and colour maps on the fly. The cache holds no pixels
of the images (edge strengths and region ids only), and with the images it is all a GPU
box needs (see bundle.py).
"""

from __future__ import annotations

import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..pipeline.modelcard import write_atomic
from .images import content_key, load_square
from .weights import cache_dir

GUIDE_VERSION = 1


@dataclass
class Guides:
    ridges: np.ndarray  # uint8 (S, S): HED strength on one-pixel ridges, see sketches.ridge_map
    coarse: np.ndarray  # uint16 (S, S): Felzenszwalb regions
    fine: np.ndarray  # uint16 (S, S): SLIC superpixels


def guide_file(cache: Path, key: str, size: int) -> Path:
    return Path(cache) / f"{key}-{size}-v{GUIDE_VERSION}.npz"


def compute_guides(image: np.ndarray, hed) -> Guides:
    from .colors import segment
    from .hed import edge_map
    from .sketches import ridge_map

    coarse, fine = segment(image)
    return Guides(ridge_map(edge_map(hed, image)), coarse, fine)


def save_guides(path: Path, guides: Guides) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, ridges=guides.ridges, coarse=guides.coarse, fine=guides.fine)
    write_atomic(path, buf.getvalue())


def load_guides(path: Path) -> Guides:
    with np.load(path) as z:
        return Guides(z["ridges"], z["coarse"], z["fine"])


def prepare(images: list[Path], cache: Path, size: int, quiet: bool = False) -> list[Path]:
    """Guide files for `images` (computing the missing ones); same order as `images`.
    HED weights are only needed when something is missing."""
    import torch

    files = [guide_file(cache, content_key(p), size) for p in images]
    todo = [(p, f) for p, f in zip(images, files, strict=True) if not f.is_file()]
    if not todo:
        return files
    from .hed import load_hed

    hed = load_hed()
    start = time.monotonic()
    tty = sys.stderr.isatty()
    with torch.inference_mode():
        for i, (path, out) in enumerate(todo, 1):
            save_guides(out, compute_guides(load_square(path, size), hed))
            # One updating line on a terminal, a line per 25 images in a log file.
            if not quiet and (tty or i % 25 == 0 or i == len(todo)):
                eta = (time.monotonic() - start) / i * (len(todo) - i)
                line = f"guides {i}/{len(todo)} (ETA {eta:.0f} s)"
                print("\r" + line if tty else line, end="" if tty else "\n", file=sys.stderr)
    if not quiet and tty:
        print(file=sys.stderr)
    return files


def default_cache() -> Path:
    """Where guides are cached when no --cache is given: beside the weights' cache."""
    return cache_dir().parent / "guides"
