"""Engine errors as a client sees them, and the one table of what a user can do about each.

Both plug-ins and the CLI read this table, so a code means the same advice everywhere. A
hint is a clause in lower case; each plug-in sets it in its own sentence (GIMP in
parentheses after the message, Krita as a sentence of its own). Standard library only: it
must import where pyzmq does not.
"""

from __future__ import annotations

from . import protocol


class EngineError(Exception):
    """What went wrong, as a stable `code` (protocol error codes, plus `unreachable` and
    `timeout` from this side) and a sentence a user can act on."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# What to do, by error code.
HINTS: dict[str, str] = {
    protocol.BUSY: "try again in a moment",
    protocol.TOO_LARGE: "select a smaller area, or start the engine with a larger --max-pixels",
    protocol.EMPTY_MASK: "the mask is less than half on everywhere: select or paint the area "
    "to regenerate more firmly",
    protocol.MODEL_MISSING: "install a model (see the SketchFill README) or restart the engine "
    "with --model",
    protocol.MODEL_INVALID: "reinstall the model or restart the engine with another --model",
    protocol.INTERNAL: "this is a bug in the engine: its log has the details",
    protocol.SHUTTING_DOWN: "the engine is stopping; try again once it is back",
    protocol.DROPPED: "the result waited too long to be read; try again",
    protocol.UNAUTHORIZED: "ask for this machine's key to be added to the engine's "
    "authorised folder",
}
# Codes whose advice differs for one tool, by engine op.
TOOL_HINTS: dict[str, dict[str, str]] = {
    protocol.OP_RESTORE: {
        protocol.EMPTY_MASK: "the mask is less than half on everywhere: select or paint what "
        "hides the face more firmly",
        protocol.NO_FACE: "mark only what covers part of a face; the engine looks for the "
        "face around the mask",
    },
}
# Krita's own words for some hints: its users install models with the installer only, and
# pick the photo in the SketchFill panel's Image layer. By (op, or "" for every op; code).
KRITA_HINTS: dict[tuple[str, str], str] = {
    ("", protocol.MODEL_MISSING): "install a model with the SketchFill installer, then "
    "restart the engine",
    ("", protocol.MODEL_INVALID): "reinstall the model with the SketchFill installer",
    (protocol.OP_RESTORE, protocol.EMPTY_MASK): "select what hides the face (or paint over "
    "it on the mask layer, at least half opaque) and try again",
    (protocol.OP_RESTORE, protocol.NO_FACE): "restore face works on a photo of a face: check "
    "that the Image layer in the SketchFill panel is the photo, and mark only what covers "
    "the face",
}
HOSTS = ("gimp", "krita")


def hint(code: str, op: str = "", host: str = "gimp") -> str | None:
    """What to do about error `code` of engine operation `op` (any when empty), in words
    for `host`; None when there is nothing useful to add."""
    if host not in HOSTS:
        raise ValueError(f"unknown host {host!r}")
    if host == "krita":
        words = KRITA_HINTS.get((op, code)) or KRITA_HINTS.get(("", code))
        if words:
            return words
    return TOOL_HINTS.get(op, {}).get(code) or HINTS.get(code)
