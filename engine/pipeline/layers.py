"""Host layer pixels in any wire layout -> the canonical edit inputs.

Hosts hand out whole layers; what a layer means depends on how it was drawn. A layer
with transparency carries its meaning in alpha (strokes or a mask painted on an empty
layer); an opaque one in brightness (dark pen lines on white paper, a white-on-black mask
like a layer mask). Doing this here keeps per-pixel work out of the plug-ins' Python.
"""

from __future__ import annotations

import numpy as np

from ..wire.protocol import LAYOUTS

# ITU-R BT.601 luma weights, in integer form to stay exact on uint8.
_LUMA = np.array([299, 587, 114], dtype=np.uint32)


def as_array(data, width: int, height: int, layout: str) -> np.ndarray:
    """A read-only HxWxC uint8 view of raw pixel bytes (no copy)."""
    channels = LAYOUTS[layout]
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width, channels)


def to_rgba(a: np.ndarray, layout: str) -> np.ndarray:
    if layout == "RGBA":
        return a
    out = np.empty((*a.shape[:2], 4), np.uint8)
    if layout == "BGRA":
        out[...] = a[..., [2, 1, 0, 3]]
    else:  # RGB, or L spread to grey
        out[..., :3], out[..., 3] = a, 255
    return out


def from_rgba(rgba: np.ndarray, layout: str) -> np.ndarray:
    """RGBA pixels in the layout a client asked its reply in."""
    if layout == "RGBA":
        return rgba
    if layout == "BGRA":
        return np.ascontiguousarray(rgba[..., [2, 1, 0, 3]])
    if layout == "RGB":
        return np.ascontiguousarray(rgba[..., :3])
    raise ValueError(f"cannot reply in layout {layout!r}")


def luma(rgba: np.ndarray) -> np.ndarray:
    return ((rgba[..., :3].astype(np.uint32) @ _LUMA + 500) // 1000).astype(np.uint8)


def _has_transparency(rgba: np.ndarray) -> bool:
    return bool((rgba[..., 3] < 255).any())


def mask_channel(a: np.ndarray, layout: str) -> np.ndarray:
    """Mask values (>= 128 regenerates): alpha on a transparent layer, else brightness."""
    if layout == "L":
        return a[..., 0]
    rgba = to_rgba(a, layout)
    return rgba[..., 3].copy() if _has_transparency(rgba) else luma(rgba)


def stroke_channel(a: np.ndarray, layout: str) -> np.ndarray:
    """Stroke strength: alpha on a transparent layer, else darkness (pen on paper)."""
    if layout == "L":
        return a[..., 0]
    rgba = to_rgba(a, layout)
    return rgba[..., 3].copy() if _has_transparency(rgba) else 255 - luma(rgba)
