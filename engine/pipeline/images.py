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
            return np.asarray(img.convert("RGBA"))
    except FileNotFoundError:
        raise ImageFileError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise ImageFileError(f"{path}: not an image this tool can read ({exc})") from None


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
        return img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info


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
    write_atomic(path, buf.getvalue())


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
