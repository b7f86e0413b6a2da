"""Wire protocol 1 (docs/ARCHITECTURE.md, "Wire protocol"), shared by the engine and the
thin client.

Standard library only: the plug-ins run this inside the host's own Python.

A message is multipart. Frame 0 is a UTF-8 JSON object (the header) with `"protocol": 1`,
an `op` and, for requests and their replies, an `id`. Frames 1..n are raw pixel buffers,
described in order by the header's `buffers` list (name, width, height, layout, bytes).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5737"

# Client -> engine operations (one op per tool, see engine/tools/registry.py).
OP_HELLO = "hello"
OP_EDIT = "edit"
OP_TONE = "tone"
OP_COMPOSITE = "composite"
OP_RESTORE = "restore"
OP_CANCEL = "cancel"
# Engine -> client message kinds (a hello is answered with op "hello").
OP_PROGRESS = "progress"
OP_RESULT = "result"
OP_ERROR = "error"

# Stable error codes: clients branch on these, humans read the message beside them.
BAD_REQUEST = "bad_request"
UNSUPPORTED_PROTOCOL = "unsupported_protocol"
TOO_LARGE = "too_large"
EMPTY_MASK = "empty_mask"
NO_FACE = "no_face"  # restore: no face found in what was sent
BUSY = "busy"
NOT_FOUND = "not_found"
MODEL_MISSING = "model_missing"
MODEL_INVALID = "model_invalid"
CANCELLED = "cancelled"
INTERNAL = "internal"
# Raised on the client side only, never sent by the engine.
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
UNAUTHORIZED = "unauthorized"

# Pixel layouts a buffer may have: name -> bytes per pixel. Krita hands out BGRA, so the
# engine accepts it as is instead of making the plug-in swap bytes in pure Python.
LAYOUTS: dict[str, int] = {"L": 1, "RGB": 3, "RGBA": 4, "BGRA": 4}

MAX_HEADER_BYTES = 64 * 1024
MAX_SIDE = 1 << 17


class ProtocolError(Exception):
    """A message that cannot be accepted; carries the stable code sent back to the peer."""

    def __init__(self, code: str, message: str, request_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class Box:
    """An axis-aligned rectangle in pixels; x1/y1 are exclusive."""

    x: int
    y: int
    width: int
    height: int

    @property
    def x1(self) -> int:
        return self.x + self.width

    @property
    def y1(self) -> int:
        return self.y + self.height

    def to_json(self) -> dict[str, int]:
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}


@dataclass
class Buffer:
    name: str
    width: int
    height: int
    layout: str
    data: Any  # bytes, bytearray, memoryview or a zmq.Frame's buffer

    @property
    def nbytes(self) -> int:
        return self.width * self.height * LAYOUTS[self.layout]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "layout": self.layout,
            "bytes": self.nbytes,
        }


@dataclass
class Message:
    header: dict[str, Any]
    buffers: dict[str, Buffer]

    @property
    def op(self) -> str:
        return self.header["op"]

    @property
    def id(self) -> str | None:
        return self.header.get("id")


def encode(header: dict[str, Any], buffers: Sequence[Buffer] = ()) -> list[bytes | Any]:
    """Frames for one message: the JSON header (with protocol and buffer list) then pixels."""
    for buf in buffers:
        if buf.layout not in LAYOUTS:
            raise ValueError(f"unknown pixel layout {buf.layout!r}")
        if len(memoryview(buf.data).cast("B")) != buf.nbytes:
            raise ValueError(
                f"buffer {buf.name!r} holds {len(memoryview(buf.data).cast('B'))} bytes, "
                f"expected {buf.nbytes} for {buf.width}x{buf.height} {buf.layout}"
            )
    full = {"protocol": PROTOCOL_VERSION, **header}
    if buffers:
        full["buffers"] = [b.describe() for b in buffers]
    return [json.dumps(full, separators=(",", ":")).encode("utf-8"), *(b.data for b in buffers)]


def decode(frames: Sequence[Any]) -> Message:
    """Parse and check one message. Frames may be bytes or anything with a buffer.

    Raises ProtocolError with a stable code; the request id is attached whenever the header
    was readable, so the error can be routed to the request that caused it.
    """
    if not frames:
        raise ProtocolError(BAD_REQUEST, "empty message")
    raw = _as_bytes(frames[0])
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(TOO_LARGE, f"header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(BAD_REQUEST, f"frame 0 is not a UTF-8 JSON header: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError(BAD_REQUEST, "frame 0 must be a JSON object")
    rid = header.get("id")
    if rid is not None and not (isinstance(rid, str) and 0 < len(rid) <= 128):
        raise ProtocolError(BAD_REQUEST, "id must be a string of 1 to 128 characters")
    if header.get("protocol") != PROTOCOL_VERSION:
        raise ProtocolError(
            UNSUPPORTED_PROTOCOL,
            f"protocol {header.get('protocol')!r} is not supported; this peer speaks "
            f"protocol {PROTOCOL_VERSION}",
            rid,
        )
    if not isinstance(header.get("op"), str):
        raise ProtocolError(BAD_REQUEST, "header has no op", rid)
    buffers = _decode_buffers(header, frames[1:], rid)
    return Message(header, buffers)


def _decode_buffers(header: dict[str, Any], frames: Sequence[Any], rid: str | None):
    specs = header.get("buffers", [])
    if not isinstance(specs, list):
        raise ProtocolError(BAD_REQUEST, "buffers must be a list", rid)
    if len(specs) != len(frames):
        raise ProtocolError(
            BAD_REQUEST,
            f"header describes {len(specs)} buffers but {len(frames)} frames follow",
            rid,
        )
    buffers: dict[str, Buffer] = {}
    for spec, frame in zip(specs, frames, strict=True):
        if not isinstance(spec, dict):
            raise ProtocolError(BAD_REQUEST, "each buffer description must be an object", rid)
        name, layout = spec.get("name"), spec.get("layout")
        width, height, size = spec.get("width"), spec.get("height"), spec.get("bytes")
        if not isinstance(name, str) or name in buffers:
            raise ProtocolError(BAD_REQUEST, f"buffer name {name!r} is missing or repeated", rid)
        if layout not in LAYOUTS:
            raise ProtocolError(
                BAD_REQUEST, f"buffer {name!r}: layout {layout!r} not in {sorted(LAYOUTS)}", rid
            )
        if not all(_is_size(v) for v in (width, height)) or not _is_count(size):
            raise ProtocolError(BAD_REQUEST, f"buffer {name!r}: bad width/height/bytes", rid)
        buf = Buffer(name, width, height, layout, _as_buffer(frame))
        actual = len(buf.data)
        if size != buf.nbytes or actual != buf.nbytes:
            raise ProtocolError(
                BAD_REQUEST,
                f"buffer {name!r}: {width}x{height} {layout} needs {buf.nbytes} bytes; "
                f"header says {size}, frame has {actual}",
                rid,
            )
        buffers[name] = buf
    return buffers


def _is_size(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 < v <= MAX_SIDE


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _as_buffer(frame: Any) -> memoryview:
    buf = getattr(frame, "buffer", frame)  # zmq.Frame exposes .buffer without copying
    return memoryview(buf).cast("B")


def _as_bytes(frame: Any) -> bytes:
    return bytes(_as_buffer(frame))


def error_header(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    return {"op": OP_ERROR, "id": request_id, "code": code, "message": message}


def context_box(
    bbox: Box, canvas_width: int, canvas_height: int, margin: float, min_side: int
) -> Box:
    """The square the engine edits for a mask bounding box: the box grown by `margin` of
    its longer side on every side, at least `min_side` wide, centred on the mask and
    shifted to lie inside the canvas. Where the canvas is narrower than the square, the
    square is cut to the canvas (the engine pads it back to a square).

    Client and engine both call this, so a plug-in can send just the pixels the engine
    will read, and a 50-megapixel photo costs no more than its edited region.
    """
    side = max(bbox.width, bbox.height)
    side = max(side + 2 * round(side * margin), min_side)
    cx2, cy2 = 2 * bbox.x + bbox.width, 2 * bbox.y + bbox.height  # twice the centre
    x = _fit((cx2 - side) // 2, side, canvas_width)
    y = _fit((cy2 - side) // 2, side, canvas_height)
    return Box(x, y, min(side, canvas_width), min(side, canvas_height))


def _fit(start: int, side: int, limit: int) -> int:
    if side >= limit:
        return 0
    return min(max(start, 0), limit - side)
