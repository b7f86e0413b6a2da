"""Image files <-> edit inputs, for the CLI and the demo."""

from __future__ import annotations

import io
import os
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from . import layers
from .modelcard import write_atomic
from .preprocess import EditInputs


class ImageFileError(ValueError):
    pass


def load_rgba(path: str | os.PathLike[str]) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img.load()
            return _to_rgba(img, path)
    except ImageFileError:
        raise
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such file") from None
    except Image.DecompressionBombError as exc:
        raise ImageFileError(f"{path}: refused, too many pixels to read safely ({exc})") from None
    except IsADirectoryError:
        raise ImageFileError(f"{path} is a folder, not an image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageFileError(f"{path}: not an image this tool can read ({exc})") from None


def _to_rgba(img: Image.Image, path: str | os.PathLike[str]) -> np.ndarray:
    """8-bit RGBA from any mode Pillow opens. Pillow's own convert() clips 16-bit and
    integer grey to 255 (a 16-bit mask of 32768 would read as full white), so those are
    scaled here; what has no plain 8-bit reading is refused with a sentence."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        grey = np.asarray(img).astype(np.int64)
        if grey.size and (grey.min() < 0 or grey.max() > 65535):
            raise ImageFileError(
                f"{path}: a 32-bit integer image with values outside 0-65535; save it as "
                "8- or 16-bit"
            )
        return _grey_rgba((grey >> 8).astype(np.uint8))
    if mode == "F":
        grey = np.asarray(img, dtype=np.float64)
        if not np.isfinite(grey).all() or grey.min() < 0 or grey.max() > 1:
            raise ImageFileError(
                f"{path}: a floating-point image with values outside 0-1; save it as 8- or 16-bit"
            )
        return _grey_rgba(np.rint(grey * 255).astype(np.uint8))
    if mode == "P" and "transparency" in img.info:
        img = img.convert("PA")  # the palette's transparency becomes alpha, then RGBA
    return np.asarray(img.convert("RGBA"))


def _grey_rgba(grey: np.ndarray) -> np.ndarray:
    out = np.empty((*grey.shape, 4), np.uint8)
    out[..., :3] = grey[..., None]
    out[..., 3] = 255
    return out


def check_output(path: str | os.PathLike[str]) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    path = Path(path)
    if path.is_dir():
        raise ImageFileError(f"-o {path} is a folder; name the file to write")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ImageFileError(f"-o {path}: {parent} is a file, not a folder")
            break


def load_inputs(
    image: str | os.PathLike[str],
    mask: str | os.PathLike[str],
    sketch: str | os.PathLike[str] | None = None,
    color: str | os.PathLike[str] | None = None,
) -> EditInputs:
    """Read the four layers as a host would send them (RGBA, same size as the image)."""
    rgba = load_rgba(image)

    def guide(path: str | os.PathLike[str]) -> np.ndarray:
        return load_layer(path, rgba)

    return EditInputs(
        image=rgba,
        mask=layers.mask_channel(guide(mask), "RGBA"),
        sketch=None if sketch is None else layers.stroke_channel(guide(sketch), "RGBA"),
        color=None if color is None else guide(color),
    )


def load_layer(path: str | os.PathLike[str], image: np.ndarray) -> np.ndarray:
    """A guide or mask layer (RGBA) that must cover `image` exactly."""
    a = load_rgba(path)
    h, w = image.shape[:2]
    if a.shape[:2] != (h, w):
        raise ImageFileError(
            f"{path} is {a.shape[1]}x{a.shape[0]} but the image is {w}x{h}; "
            "guide layers must cover the image exactly"
        )
    return a


def has_alpha(path: str | os.PathLike[str]) -> bool:
    with Image.open(path) as img:
        return img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info


def save_image(path: str | os.PathLike[str], rgba: np.ndarray, *, keep_alpha: bool = True) -> None:
    """Save an RGBA (or RGB) array atomically in the format the suffix names; never leaves
    a half-written file."""
    path = Path(path)
    img = Image.fromarray(np.ascontiguousarray(rgba), "RGBA" if rgba.shape[2] == 4 else "RGB")
    if not keep_alpha or path.suffix.lower() in (".jpg", ".jpeg"):
        img = img.convert("RGB")
    buf = io.BytesIO()
    try:
        img.save(buf, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    except (KeyError, OSError) as exc:
        raise ImageFileError(f"cannot write {path}: {exc}") from None
    check_output(path)
    try:
        write_atomic(path, buf.getvalue())
    except OSError as exc:
        raise ImageFileError(f"cannot write {path}: {exc.strerror or exc}") from None


def demo_inputs() -> EditInputs:
    """The bundled demo: the public-domain portrait with its mask, sketch and colour."""
    assets = resources.files("sketchfill") / "assets" / "demo"
    with resources.as_file(assets) as folder:
        return load_inputs(
            folder / "astronaut.png",
            folder / "mask.png",
            folder / "sketch.png",
            folder / "color.png",
        )
