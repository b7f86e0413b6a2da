"""What a client sends and gets back: one request class per tool, encoded as protocol
frames, and the results and events read from the engine's replies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import protocol
from .errors import EngineError
from .protocol import Box, Buffer, context_box


@dataclass
class EditRequest:
    """Pixels of one rectangle (`region`) of a `canvas_width` x `canvas_height` canvas.

    Each layer is raw bytes in the named layout (protocol.LAYOUTS), `region` sized. Only
    image and mask are required; see engine/pipeline/layers.py for how each layout is read.
    """

    canvas_width: int
    canvas_height: int
    region: Box
    image: Any
    mask: Any
    image_layout: str = "RGBA"
    mask_layout: str = "L"
    sketch: Any = None
    sketch_layout: str = "L"
    color: Any = None
    color_layout: str = "RGBA"
    seed: int | None = None
    feather: float = 0.0
    reply_layout: str = "RGBA"

    def frames(self, request_id: str) -> list[Any]:
        layers = [
            ("image", self.image_layout, self.image),
            ("mask", self.mask_layout, self.mask),
            ("sketch", self.sketch_layout, self.sketch),
            ("color", self.color_layout, self.color),
        ]
        fields = {"seed": self.seed, "feather": self.feather}
        return _encode(protocol.OP_EDIT, request_id, self, layers, fields)


@dataclass
class ToneRequest:
    """Auto tone of the photo in `region` (normally the whole canvas: the curves are
    measured on what is sent); with a mask (the selection, 0-255) only there, softly."""

    canvas_width: int
    canvas_height: int
    region: Box
    image: Any
    image_layout: str = "RGBA"
    mask: Any = None
    mask_layout: str = "L"
    reply_layout: str = "RGBA"

    def frames(self, request_id: str) -> list[Any]:
        layers = [("image", self.image_layout, self.image), ("mask", self.mask_layout, self.mask)]
        return _encode(protocol.OP_TONE, request_id, self, layers, {})


@dataclass
class CompositeRequest:
    """The face layer (`face`, its alpha says where) put onto the photo, harmonised; with a
    mask (the selection, 0-255) only there. Send the region `edit_region(..., tool=
    "composite")` gives for the face's bounding box: the network reads context around it."""

    canvas_width: int
    canvas_height: int
    region: Box
    image: Any
    face: Any
    image_layout: str = "RGBA"
    face_layout: str = "RGBA"
    mask: Any = None
    mask_layout: str = "L"
    reply_layout: str = "RGBA"

    def frames(self, request_id: str) -> list[Any]:
        layers = [
            ("image", self.image_layout, self.image),
            ("face", self.face_layout, self.face),
            ("mask", self.mask_layout, self.mask),
        ]
        return _encode(protocol.OP_COMPOSITE, request_id, self, layers, {})


@dataclass
class RestoreRequest:
    """Restore what the mask (>= 128: the occluder) hides on the face in `image`. Send the
    region `edit_region(..., tool="restore")` gives for the mask's bounding box: the engine
    finds the face in what is sent."""

    canvas_width: int
    canvas_height: int
    region: Box
    image: Any
    mask: Any
    image_layout: str = "RGBA"
    mask_layout: str = "L"
    seed: int | None = None
    feather: float = 0.0
    reply_layout: str = "RGBA"

    def frames(self, request_id: str) -> list[Any]:
        layers = [("image", self.image_layout, self.image), ("mask", self.mask_layout, self.mask)]
        fields = {"seed": self.seed, "feather": self.feather}
        return _encode(protocol.OP_RESTORE, request_id, self, layers, fields)


Request = EditRequest | ToneRequest | CompositeRequest | RestoreRequest


def _encode(
    op: str, request_id: str, request: Request, layers: list[tuple], fields: dict[str, Any]
) -> list[Any]:
    """A request's frames: the header and the layers that are present, each region-sized."""
    r = request.region
    buffers = [
        Buffer(name, r.width, r.height, layout, data)
        for name, layout, data in layers
        if data is not None
    ]
    header = {
        "op": op,
        "id": request_id,
        "canvas": {"width": request.canvas_width, "height": request.canvas_height},
        "region": r.to_json(),
        **fields,
        "reply_layout": request.reply_layout,
    }
    return protocol.encode(header, buffers)


@dataclass
class EditResult:
    """The patch to put on the canvas at (x, y): raw bytes in `layout`."""

    x: int
    y: int
    width: int
    height: int
    layout: str
    data: bytes
    seed: int
    header: dict[str, Any]


@dataclass
class Event:
    """One message for a request: kind is "progress", "result", "error" or "cancel" (the
    engine's acknowledgement of a cancel)."""

    kind: str
    id: str
    header: dict[str, Any]
    result: EditResult | None = None

    @property
    def error(self) -> EngineError | None:
        if self.kind != protocol.OP_ERROR:
            return None
        code, text = self.header.get("code"), self.header.get("message")
        return EngineError(
            code if isinstance(code, str) else protocol.INTERNAL,
            text if isinstance(text, str) else "the engine sent an error without a message",
        )


def edit_region(
    bbox: Box, canvas_width: int, canvas_height: int, hello: dict[str, Any], tool: str = "edit"
) -> Box:
    """The rectangle of the canvas the engine will read for a mask with bounding box
    `bbox` when `tool` runs: send just these pixels, whatever the canvas size."""
    ctx = (hello.get("tools") or {}).get(tool, {}).get("context") or hello.get("context") or {}
    margin = float(ctx.get("margin", 0.5))
    min_side = int(ctx.get("min_side", 0))
    return context_box(bbox, canvas_width, canvas_height, margin, min_side)
