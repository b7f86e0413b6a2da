"""The sentences SketchFill shows, in one place: what happened and what to do about it."""

from __future__ import annotations

NO_DOCUMENT = "Open an image first: SketchFill edits the active document."
BUSY = "SketchFill is still working on the last request: wait for it, or press Cancel."
CANCELLED = "Cancelled: no layer was added."
DOCUMENT_CLOSED = "The document was closed before the result arrived; nothing was added."
NO_HISTORY = "No earlier result to put back yet."
CONNECTING = "Connecting to the SketchFill engine..."
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
# Engine progress stages worth a clearer word than their name.
STAGE_NAMES = {"face": "finding the face", "prior": "face structure"}

# What to do, by the stable error code of the engine or the client.
_HINTS = {
    "busy": "The engine has too many edits queued; try again in a moment.",
    "too_large": "Select a smaller area, or start the engine with a larger --max-pixels.",
    "empty_mask": "Select the area to regenerate (or paint it on the mask layer) and try again.",
    "model_missing": "Install a model with the SketchFill installer, then restart the engine.",
    "model_invalid": "Reinstall the model with the SketchFill installer.",
    "internal": "This is a bug in the engine: its log has the details.",
}
# Hints that differ for one tool, by engine op.
_TOOL_HINTS = {
    "restore": {
        "empty_mask": (
            "Select what hides the face (or paint over it on the mask layer, at least half "
            "opaque) and try again."
        ),
        "no_face": (
            "Restore face works on a photo of a face: check that the Image layer in the "
            "SketchFill panel is the photo, and mark only what covers the face."
        ),
    },
}


def explain(code: str, message: str, tool: str = "edit") -> str:
    """The engine's or client's own sentence, with what to do about it when that helps
    (for `tool`, the engine op the request was for)."""
    hint = _TOOL_HINTS.get(tool, {}).get(code) or _HINTS.get(code)
    text = message.strip().rstrip(".")
    return f"{text}. {hint}" if hint else f"{text}."


def added(names: list[str]) -> str:
    if len(names) == 1:
        return f"Added the layer '{names[0]}'."
    return f"Added {len(names)} layers: " + ", ".join(f"'{n}'" for n in names) + "."


def cancelled(names: list[str]) -> str:
    return f"Cancelled. {added(names)}" if names else CANCELLED


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
