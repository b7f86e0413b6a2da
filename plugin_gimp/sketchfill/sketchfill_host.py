"""GIMP's side of sketchfill_layers' host: pixels in and out through Gegl buffers."""

from __future__ import annotations

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402
from sketchfill_client.protocol import Box  # noqa: E402
from sketchfill_layers import RGBA, SELECTION  # noqa: E402


class GimpHost:
    """Reads an image's layers and selection in canvas coordinates; adds result layers."""

    def __init__(self, image: Gimp.Image):
        self.image = image

    def canvas_size(self) -> tuple[int, int]:
        return self.image.get_width(), self.image.get_height()

    def layer_box(self, layer: Gimp.Drawable) -> Box:
        _, x, y = layer.get_offsets()
        return Box(x, y, layer.get_width(), layer.get_height())

    def read(self, drawable: Gimp.Drawable, box: Box, fmt: str) -> bytes:
        """`box` of the canvas in Babl format `fmt`, whatever the layer's precision;
        what lies outside the layer reads as transparent black."""
        _, ox, oy = drawable.get_offsets()
        rect = Gegl.Rectangle.new(box.x - ox, box.y - oy, box.width, box.height)
        return bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))

    def selection_bounds(self) -> Box | None:
        _, non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(self.image)
        return Box(x1, y1, x2 - x1, y2 - y1) if non_empty else None

    def read_selection(self, box: Box) -> bytes:
        return self.read(self.image.get_selection(), box, SELECTION)

    def add_result(
        self, name: str, box: Box, rgba: bytes, parent, position: int, opacity: float = 100.0
    ) -> Gimp.Layer:
        """A new layer holding `rgba` at `box`, inserted as one undo step. It takes the
        image's precision: Babl converts the 8-bit pixels into it."""
        image = self.image
        image.undo_group_start()
        try:
            layer = Gimp.Layer.new(
                image,
                name,
                box.width,
                box.height,
                Gimp.ImageType.RGBA_IMAGE,
                opacity,
                Gimp.LayerMode.NORMAL,
            )
            image.insert_layer(layer, parent, position)
            layer.set_offsets(box.x, box.y)
            buffer = layer.get_buffer()
            buffer.set(Gegl.Rectangle.new(0, 0, box.width, box.height), RGBA, rgba)
            buffer.flush()
            layer.update(0, 0, box.width, box.height)
        finally:
            image.undo_group_end()
        return layer

    def add_empty_layers(self, names: list[str], parent, position: int) -> list[Gimp.Layer]:
        """Transparent canvas-sized layers, `names` top to bottom, at `position` in
        `parent`, as one undo step."""
        image = self.image
        width, height = self.canvas_size()
        added = []
        image.undo_group_start()
        try:
            for offset, name in enumerate(names):
                layer = Gimp.Layer.new(
                    image,
                    name,
                    width,
                    height,
                    Gimp.ImageType.RGBA_IMAGE,
                    100.0,
                    Gimp.LayerMode.NORMAL,
                )
                image.insert_layer(layer, parent, position + offset)
                layer.fill(Gimp.FillType.TRANSPARENT)
                added.append(layer)
        finally:
            image.undo_group_end()
        return added

    def toggle_visible(self, layer: Gimp.Layer) -> bool:
        """Show a hidden layer, hide a shown one, as one undo step; returns the new state."""
        self.image.undo_group_start()
        try:
            layer.set_visible(not layer.get_visible())
        finally:
            self.image.undo_group_end()
        return layer.get_visible()
