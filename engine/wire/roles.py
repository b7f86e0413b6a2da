"""Layer roles, result names and the sentences both plug-ins say about them.

Standard library only: the installer copies this file into the `sketchfill_client` package
beside each plug-in, so GIMP and Krita pick the same layers by the same names, name their
results alike and warn in the same words. README.md ("Layer names") documents ROLE_NAMES;
change them here and there together.
"""

from __future__ import annotations

import re

ROLES = ("image", "sketch", "color", "mask")
# The layer names each role picks by itself, compared with surrounding spaces trimmed and
# case ignored. The first name is the role's own: the one "Create SketchFill layers" gives
# and the default a GIMP setting holds.
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "image": ("image", "photo", "face"),
    "sketch": ("sketch", "lines", "lineart", "line art", "strokes"),
    "color": ("color", "colour", "colors", "colours"),
    "mask": ("mask",),
}
# What each guide role is for, in the sentences below.
ROLE_WORDS = {"sketch": "sketch", "color": "colour", "mask": "mask"}
# The guide layers "Create SketchFill layers" adds, top to bottom: strokes over the colour
# dabs, both over the mask, so nothing painted hides another guide.
NEW_GUIDES = ("sketch", "color", "mask")
GUIDE_HINTS = {
    "mask": "paint the area to regenerate in white on 'mask'",
    "sketch": "draw the new shape with a thin dark brush on 'sketch'",
    "color": "dab the wanted colours on 'color'",
}

# Result layers: "SF <seed> <tool>" keeps the seed readable where a Layers panel cuts long
# names; the tools without a seed are "SF <tool>".
RESULT_PREFIX = "SF "
TOOL_WORDS = {"edit": "fill", "tone": "tone", "composite": "composite", "restore": "restore"}
_RESULT = re.compile(r"SF (\d+ )?(fill|tone|composite|restore)( #\d+)?$")
# Names of results made before 0.2 (documents keep them): still results, never a photo.
_OLD_RESULTS = ("SketchFill seed ", "SketchFill tone", "SketchFill composite", "SketchFill restore")


def is_role_name(role: str, name: str) -> bool:
    return name.strip().casefold() in ROLE_NAMES[role]


def result_name(tool: str, seed: int | None = None) -> str:
    """The new layer's name for a result of engine op `tool`."""
    word = TOOL_WORDS[tool]
    return f"{RESULT_PREFIX}{seed} {word}" if seed is not None else f"{RESULT_PREFIX}{word}"


def is_result_name(name: str) -> bool:
    # Hosts add " #2" to duplicated names; older versions named results "SketchFill ...".
    return bool(_RESULT.match(name)) or name.startswith(_OLD_RESULTS)


def seed_of(name: str) -> int | None:
    m = _RESULT.match(name)
    return int(m.group(1)) if m and m.group(1) else None


def auto_feather(box_width: int, box_height: int, canvas_width: int, canvas_height: int) -> float:
    """The default feather in pixels: a soft seam that stays thin next to the mask (4 % of
    its shorter side) and next to the photo (0.3 % of its longer side), whichever is less,
    so a small mask on a small photo gets 1-2 px and a portrait at 6000 px about 16. A
    wide feather blends the old pixels back in: ghosts of what was erased."""
    by_mask = 0.04 * min(box_width, box_height)
    by_photo = 0.003 * max(canvas_width, canvas_height)
    return float(min(64, max(1, round(min(by_mask, by_photo)))))


def _quoted(names) -> str:
    names = [f"'{n}'" for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def missing_guide(role: str, wanted: str = "") -> str:
    """Why a run is refused when its `role` guide ("sketch" or "color") is not there:
    `wanted` is the layer name the user gave, "" when the role looks by its own names.
    Says how to go on without it, so the guide is never dropped without a word."""
    word = ROLE_WORDS[role]
    names = [wanted] if wanted else list(ROLE_NAMES[role])
    return (
        f"No {word} layer: this image has no layer named {_quoted(names)}. Pick the {word} "
        f"layer, or set the {word} layer to None to generate without one."
    )


def added_above(names: list[str], toggle: str, guides: bool = True) -> str:
    """What a run added, that it is on top of the guides it was made with (when it had
    any), and how to compare (`toggle`: where the host's Before/after command is)."""
    if len(names) == 1:
        what = f"the layer '{names[0]}'"
    else:
        what = f"{len(names)} layers: " + ", ".join(f"'{n}'" for n in names)
    where = " on top of the guides" if guides else ""
    it = "it" if len(names) == 1 else "the newest"
    return f"Added {what}{where}. Before/after ({toggle}) hides and shows {it}."


def created_guides(made: list[str], kept: list[str], photo: str) -> str:
    """What "Create SketchFill layers" did, with the brush hints a first run needs."""
    hints = "; ".join(GUIDE_HINTS[role] for role in ("mask", "sketch", "color"))
    parts = []
    if made:
        parts.append(f"Added {_listed(made)} above '{photo}'.")
    if kept:
        parts.append(f"Kept {_listed(kept)}, already there.")
    return " ".join(parts) + f" Then {hints[0].lower()}{hints[1:]}; then Generate."


def _listed(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    if len(quoted) == 1:
        return f"the layer {quoted[0]}"
    return "the layers " + ", ".join(quoted[:-1]) + " and " + quoted[-1]


def toggled(name: str, visible: bool) -> str:
    return f"{'After' if visible else 'Before'}: '{name}' {'shown' if visible else 'hidden'}."


NO_RESULT_TO_TOGGLE = "Before/after: this image has no SketchFill result yet."

# Engine progress stages in words, for the status line (an unknown stage shows as is).
STAGE_WORDS = {
    "preprocess": "preparing the layers",
    "generate": "generating",
    "composite": "blending the result in",
    "analyse": "measuring the tones",
    "apply": "applying the tone curves",
    "face": "finding the face",
    "prior": "mapping the visible face",
}
# Tools that name their stages like another tool's but do something else in them.
TOOL_STAGE_WORDS = {
    "composite": {"analyse": "matching the face to the photo", "apply": "blending the face in"},
}


def stage_words(stage: str, op: str = "") -> str:
    """What engine stage `stage` of operation `op` is doing, in words."""
    return TOOL_STAGE_WORDS.get(op, {}).get(stage) or STAGE_WORDS.get(stage, stage)
