"""Wire protocol 1 (docs/ARCHITECTURE.md, "Wire protocol"), shared by the engine and the
thin client.

Standard library only: the plug-ins run this inside the host's own Python.

A message is multipart. Frame 0 is a UTF-8 JSON object (the header) with `"protocol": 1`,
an `op` and, for requests and their replies, an `id`. Frames 1..n are raw pixel buffers,
described in order by the header's `buffers` list (name, width, height, layout, bytes).
"""

from __future__ import annotations

import json
import math
import re
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
SHUTTING_DOWN = "shutting_down"  # the engine is stopping: queued and running work ends
# A result held for a client that did not read it was given up (ServeConfig.hold_seconds).
DROPPED = "dropped"
INTERNAL = "internal"
# Also sent by an engine whose authorised-keys folder no longer lists the client's key.
UNAUTHORIZED = "unauthorized"
# Raised on the client side only, never sent by the engine.
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"

# Pixel layouts a buffer may have: name -> bytes per pixel. Krita hands out BGRA, so the
# engine accepts it as is instead of making the plug-in swap bytes in pure Python.
LAYOUTS: dict[str, int] = {"L": 1, "RGB": 3, "RGBA": 4, "BGRA": 4}

MAX_HEADER_BYTES = 64 * 1024
# Nesting a header may have: real ones need 3 ({"buffers": [{...}]}). Checked before
# json.loads, whose recursion on '[' * 60000 would otherwise end the reading thread.
MAX_JSON_DEPTH = 16
MAX_SIDE = 1 << 17
MAX_NAME = 128  # characters in an id, op or buffer name


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


_JSON_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)
_JSON_BRACKETS = re.compile(r"[\[\]{}]")


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `text` nests arrays or objects deeper than `limit`: a linear scan outside
    strings, so a hostile header is refused before any recursive parser sees it."""
    depth = 0
    for match in _JSON_BRACKETS.finditer(_JSON_STRINGS.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        if depth > limit:
            return True
    return False


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads_header(raw: bytes) -> Any:
    """Strict, bounded JSON: size and depth checked first; NaN and Infinity refused."""
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError(TOO_LARGE, f"header of {len(raw)} bytes exceeds {MAX_HEADER_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(BAD_REQUEST, f"frame 0 is not a UTF-8 JSON header: {exc}") from None
    if json_depth_exceeds(text):
        raise ProtocolError(BAD_REQUEST, f"header nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(BAD_REQUEST, f"frame 0 is not a UTF-8 JSON header: {exc}") from None


def is_int(v: Any) -> bool:
    """A JSON integer: not a bool (True == 1 in Python) and not a float such as 1.0."""
    return type(v) is int


def is_number(v: Any) -> bool:
    return (type(v) is int or type(v) is float) and math.isfinite(v)


def is_name(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= MAX_NAME


def encode(header: dict[str, Any], buffers: Sequence[Buffer] = ()) -> list[bytes | Any]:
    """Frames for one message: the JSON header (with protocol and buffer list) then pixels."""
    payloads = []
    for buf in buffers:
        if not isinstance(buf.layout, str) or buf.layout not in LAYOUTS:
            raise ValueError(f"unknown pixel layout {buf.layout!r}")
        data = contiguous(buf.data, buf.name)
        if len(data) != buf.nbytes:
            raise ValueError(
                f"buffer {buf.name!r} holds {len(data)} bytes, "
                f"expected {buf.nbytes} for {buf.width}x{buf.height} {buf.layout}"
            )
        payloads.append(buf.data if data.obj is buf.data else data)
    full = {"protocol": PROTOCOL_VERSION, **header}
    if buffers:
        full["buffers"] = [b.describe() for b in buffers]
    return [json.dumps(full, separators=(",", ":")).encode("utf-8"), *payloads]


def contiguous(data: Any, name: str = "buffer") -> memoryview:
    """The bytes of `data` as a flat view, copied once when it is not C-contiguous (a
    numpy slice or transpose): ZeroMQ sends contiguous memory only."""
    try:
        view = memoryview(data)
    except TypeError:
        raise ValueError(f"{name!r} is {type(data).__name__}, not a pixel buffer") from None
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


def decode(frames: Sequence[Any]) -> Message:
    """Parse and check one message. Frames may be bytes or anything with a buffer.

    Raises ProtocolError with a stable code; the request id is attached whenever the header
    was readable, so the error can be routed to the request that caused it.
    """
    if not frames:
        raise ProtocolError(BAD_REQUEST, "empty message")
    header = loads_header(_as_bytes(frames[0]))
    if not isinstance(header, dict):
        raise ProtocolError(BAD_REQUEST, "frame 0 must be a JSON object")
    rid = header.get("id")
    if rid is not None and not is_name(rid):
        raise ProtocolError(BAD_REQUEST, f"id must be a string of 1 to {MAX_NAME} characters")
    version = header.get("protocol")
    if not (is_int(version) and version == PROTOCOL_VERSION):
        shown = repr(version) if is_number(version) or isinstance(version, bool) else "that"
        raise ProtocolError(
            UNSUPPORTED_PROTOCOL,
            f"protocol {shown[:40]} is not supported; this peer speaks the integer "
            f"protocol {PROTOCOL_VERSION}",
            rid,
        )
    if not is_name(header.get("op")):
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
        if not is_name(name) or name in buffers:
            shown = repr(name)[:40] if isinstance(name, str) else "that"
            raise ProtocolError(BAD_REQUEST, f"buffer name {shown} is missing or repeated", rid)
        if not isinstance(layout, str) or layout not in LAYOUTS:
            shown = repr(layout)[:20] if isinstance(layout, str) else type(layout).__name__
            raise ProtocolError(
                BAD_REQUEST, f"buffer {name!r}: layout {shown} not in {sorted(LAYOUTS)}", rid
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
    return is_int(v) and 0 < v <= MAX_SIDE


def _is_count(v: Any) -> bool:
    return is_int(v) and v >= 0


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
