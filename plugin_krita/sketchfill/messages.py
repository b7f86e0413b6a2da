"""The sentences SketchFill shows, in one place: what happened and what to do about it."""

from __future__ import annotations

NO_DOCUMENT = "Open an image first: SketchFill edits the active document."
BUSY = "SketchFill is still working on the last request: wait for it, or press Cancel."
CANCELLED = "Cancelled: no layer was added."
DOCUMENT_CLOSED = "The document was closed before the result arrived; nothing was added."
NO_HISTORY = "No earlier result to put back yet."
CONNECTING = "Connecting to the SketchFill engine..."
PRESTARTED = "Starting the SketchFill engine in the background, for the first Generate."
NO_TONE_TOOL = (
    "The running SketchFill engine has no auto tone (an older version): update SketchFill "
    "and restart the engine."
)
NO_COMPOSITE_TOOL = (
    "The running SketchFill engine cannot composite faces (an older version): update "
    "SketchFill and restart the engine."
)
NO_RESTORE_TOOL = (
    "The running SketchFill engine cannot restore faces (an older version): update "
    "SketchFill and restart the engine."
)
NOTHING_TO_RESTORE = (
    "Restore face: nothing marked. Select what hides the face (a hand, glasses, a strand of "
    "hair, text), or paint over it on a layer named 'mask'."
)
# How progress names the tools other than the edit (by engine op).
TOOL_TITLES = {"tone": "Auto tone", "composite": "Composite face", "restore": "Restore face"}
# Where Krita users find Before/after, for the sentence after each result.
TOGGLE_WHERE = "the panel's button, or the action SketchFill: Before/After"


def explain(code: str, message: str, tool: str = "edit") -> str:
    """The engine's or client's own sentence, with what to do about it when that helps
    (for `tool`, the engine op the request was for)."""
    # Imported here, not above: this module must import without pyzmq (missing.py tells the
    # user that pyzmq is missing), and the client package will not.
    from .sketchfill_client.errors import hint

    advice = hint(code, tool, host="krita")
    text = message.strip().rstrip(".")
    return f"{text}. {advice[0].upper()}{advice[1:]}." if advice else f"{text}."


def added(names: list[str], guides: bool = False) -> str:
    """What a run added, where (on top of its guides) and how to compare."""
    # Imported here: this module must load without pyzmq (missing.py's messages), and the
    # client package's __init__ needs it.
    from .sketchfill_client import roles

    return roles.added_above(names, TOGGLE_WHERE, guides)


def cancelled(names: list[str]) -> str:
    if not names:
        return CANCELLED
    if len(names) == 1:
        return f"Cancelled. Added the layer '{names[0]}'."
    return f"Cancelled. Added {len(names)} layers: " + ", ".join(f"'{n}'" for n in names) + "."


def bug(exc: Exception) -> str:
    return f"SketchFill hit a bug ({exc!r}); nothing was added. Please report this message."


def missing_client(error: str) -> str:
    """The client (pyzmq) does not import in Krita's Python; error says why and what to do."""
    return f"SketchFill cannot reach its engine from Krita's Python: {error}"


def tone_too_large(width: int, height: int, limit: int) -> str:
    return (
        f"The image layer is {width}x{height} pixels, over the engine's limit of {limit}: "
        "scale the image down, or start the engine with a larger --max-pixels."
    )


def restore_too_large(width: int, height: int, limit: int) -> str:
    return (
        f"Restore face: the area around the mask is {width}x{height} pixels, over the "
        f"engine's limit of {limit}: scale the image down, or start the engine with a larger "
        "--max-pixels."
    )


def composite_too_large(width: int, height: int, limit: int) -> str:
    return (
        f"Composite face: the face with the context around it is {width}x{height} pixels, "
        f"over the engine's limit of {limit}: select part of the face, scale the image down, "
        "or start the engine with a larger --max-pixels."
    )
