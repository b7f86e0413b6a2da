"""Shared bits of the GIMP batch probes (imported inside GIMP; probes dir is on PYTHONPATH)."""

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

FMT = "R'G'B'A u8"


def pattern_rgba(w, h, seed=0, alphas=(255,)):
    """Distinct R,G,B,A bytes per pixel; alphas cycle over the pixels."""
    out = bytearray()
    for i in range(w * h):
        x, y = i % w, i // w
        out += bytes(
            (
                (seed + 30 * x) % 256,
                (seed + 50 * y) % 256,
                (seed * 7 + 11) % 256,
                alphas[i % len(alphas)],
            )
        )
    return bytes(out)


def new_layer(image, name, w, h):
    return Gimp.Layer.new(
        image, name, w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL
    )


def write(drawable, data, x=0, y=0, w=None, h=None):
    w = drawable.get_width() if w is None else w
    h = drawable.get_height() if h is None else h
    buf = drawable.get_buffer()
    buf.set(Gegl.Rectangle.new(x, y, w, h), FMT, data)
    buf.flush()
    drawable.update(x, y, w, h)


def read(drawable, x=0, y=0, w=None, h=None, abyss=Gegl.AbyssPolicy.CLAMP):
    w = drawable.get_width() if w is None else w
    h = drawable.get_height() if h is None else h
    return bytes(drawable.get_buffer().get(Gegl.Rectangle.new(x, y, w, h), 1.0, FMT, abyss))
