"""From GIMP layers to engine requests, and engine errors to sentences (no GIMP imports).

The plug-in's decisions live here, apart from the Gimp.PlugIn glue, so they can be tested
with a small fake of the host: which layer is the photo, the sketch, the colour, the mask
and the face; where the mask or the face is; which rectangle of the canvas to send. Pixels
are read through a host object (sketchfill_host.GimpHost in GIMP) and never touched one by
one in Python: the few whole-buffer steps below (a byte table, slices, find) run in C.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sketchfill_client import protocol, roles
from sketchfill_client.errors import EngineError, hint
from sketchfill_client.protocol import Box
from sketchfill_client.requests import (
    CompositeRequest,
    EditRequest,
    RestoreRequest,
    ToneRequest,
    edit_region,
)
from sketchfill_settings import MASK_SOURCES, Settings

# Where GIMP users find the Before/after command, for the sentence after each result.
TOGGLE_WHERE = "Filters > SketchFill > Before/after"
# Babl formats: 8-bit sRGB-encoded RGBA for photo, sketch and colour (the engine's wire
# format; Babl converts any precision), and grey + alpha to read a mask layer.
RGBA = "R'G'B'A u8"
GREY_ALPHA = "Y'A u8"
SELECTION = "Y u8"
# A selection or mask layer regenerates where it is at least half on.
MASK_THRESHOLD = 128


class PluginError(Exception):
    """A problem the user can fix; the message is shown as is."""


@dataclass
class Plan:
    """What one edit reads, decided before any pixel of the photo is fetched."""

    canvas_width: int
    canvas_height: int
    image: Any
    bbox: Box  # the mask's bounding box on the canvas (at least half on)
    mask_layer: Any = None  # None: the selection
    mask_channel: int = 0  # in GREY_ALPHA: 0 brightness, 1 alpha
    sketch: Any = None
    color: Any = None

    def guides(self) -> list:
        """The guide layers this run reads: the result goes on top of them, to be seen."""
        return [g for g in (self.mask_layer, self.sketch, self.color) if g is not None]


# -- layers ------------------------------------------------------------------------------


def walk(layers) -> list:
    """Every layer, groups' children right after their group, top to bottom."""
    out = []
    for layer in layers:
        out.append(layer)
        if layer.is_group():
            out.extend(walk(layer.get_children()))
    return out


def find_layer(layers, name: str):
    """The layer called `name` (exact, else ignoring case), anywhere in the stack."""
    if not name:
        return None
    everything = walk(layers)
    for layer in everything:
        if layer.get_name() == name:
            return layer
    folded = name.casefold()
    return next((lay for lay in everything if lay.get_name().casefold() == folded), None)


def is_result(layer) -> bool:
    return roles.is_result_name(layer.get_name())


def _by_role_names(role: str, name: str) -> bool:
    """Whether a guide setting is the role's own name, which also picks its other names."""
    return name.strip().casefold() == roles.ROLE_NAMES[role][0]


def _guide_settings(settings: Settings) -> dict[str, str]:
    return {
        "sketch": settings.sketch_layer,
        "color": settings.color_layer,
        "mask": settings.mask_layer,
    }


def _is_guide(layer, settings: Settings) -> bool:
    name = layer.get_name()
    for role, wanted in _guide_settings(settings).items():
        if wanted and (
            name.casefold() == wanted.casefold()
            or (_by_role_names(role, wanted) and roles.is_role_name(role, name))
        ):
            return True
    return False


def guide_layers(top_level, settings: Settings) -> list:
    """The guide layers the settings name that the image has (none required)."""
    found = (find_role_layer(top_level, r, n) for r, n in _guide_settings(settings).items())
    return [layer for layer in found if layer is not None]


def find_role_layer(layers, role: str, name: str):
    """The layer a guide setting names: exactly `name` (else ignoring case), or, when
    `name` is the role's own name, any layer with one of the role's names."""
    layer = find_layer(layers, name)
    if layer is None and name and _by_role_names(role, name):
        layer = next(
            (lay for lay in walk(layers) if roles.is_role_name(role, lay.get_name())), None
        )
    return layer


def _siblings(layer, top_level) -> list:
    parent = layer.get_parent()
    return list(parent.get_children() if parent is not None else top_level)


def _index(layer, layers) -> int:
    # GIMP items are compared by id: two wrappers may stand for the same layer.
    return [lay.get_id() for lay in layers].index(layer.get_id())


def image_layer(selected, top_level, settings: Settings):
    """The photo: the named layer; else the selected layer that is neither a guide nor a
    result (a selected result stands for the layer it was made from, the first plain
    layer below it); else the topmost plain layer."""
    if settings.image_layer:
        layer = find_layer(top_level, settings.image_layer)
        if layer is None:
            raise PluginError(f"SketchFill: there is no layer named {settings.image_layer!r}.")
        return layer

    def plain(layer) -> bool:
        return layer.is_layer() and not _is_guide(layer, settings) and not is_result(layer)

    for layer in selected:
        if not layer.is_layer() or _is_guide(layer, settings):
            continue
        if is_result(layer):
            below = _siblings(layer, top_level)
            below = below[_index(layer, below) + 1 :]
            layer = next((lay for lay in below if plain(lay)), None)
        if layer is not None:
            return layer
    layer = next((lay for lay in top_level if plain(lay)), None)
    if layer is None:
        raise PluginError(
            "SketchFill: no image layer: select the photo's layer (sketch, color and mask "
            "layers are guides, not the photo)."
        )
    return layer


def insert_position(image_layer, top_level, guides=()) -> int:
    """Index (in the image layer's parent) for a new result: above the image layer, above
    the guides it was made with (a guide inside a group counts as its group), so the
    result is seen and not hidden under the mask, sketch and colour; and above the results
    already there, so the newest one shows."""
    siblings = _siblings(image_layer, top_level)
    ids = [lay.get_id() for lay in siblings]
    index = ids.index(image_layer.get_id())
    for guide in guides:
        while guide is not None and guide.get_id() not in ids:
            guide = guide.get_parent()
        if guide is not None:  # a guide outside the image layer's parent does not count
            index = min(index, ids.index(guide.get_id()))
    while index > 0 and is_result(siblings[index - 1]):
        index -= 1
    return index


# -- the mask ----------------------------------------------------------------------------


def _at_least(threshold: int) -> bytes:
    """A byte table: 1 for values >= threshold, else 0 (bytes.translate runs it in C)."""
    return bytes(int(v >= threshold) for v in range(256))


_AT_LEAST_HALF = _at_least(MASK_THRESHOLD)
_ANY = _at_least(1)


def bbox_of(values: bytes, width: int, height: int, table: bytes = _AT_LEAST_HALF) -> Box | None:
    """Bounding box of the values >= MASK_THRESHOLD (or where `table` says) in a width x
    height grey buffer."""
    on = values.translate(table)
    first = on.find(1)
    if first < 0:
        return None
    top, bottom = first // width, on.rfind(1) // width
    left, right = width, -1
    for y in range(top, bottom + 1):
        row = y * width
        start = on.find(1, row, row + width)
        if start >= 0:
            left = min(left, start - row)
            right = max(right, on.rfind(1, row, row + width) - row)
    return Box(left, top, right - left + 1, bottom - top + 1)


def mask_channel(grey_alpha: bytes) -> int:
    """Which channel of a GREY_ALPHA layer is its mask: alpha when the layer has any
    transparency (a mask painted on an empty layer), else brightness (white on black)."""
    alpha = grey_alpha[1::2]
    return 1 if alpha.count(255) != len(alpha) else 0


def intersect(a: Box, b: Box) -> Box | None:
    x, y = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x1, b.x1), min(a.y1, b.y1)
    return Box(x, y, x1 - x, y1 - y) if x < x1 and y < y1 else None


def _mask_from_layer(host, layer, canvas: Box, what: str) -> tuple[Box, int]:
    """Bounding box and channel of a mask layer; pixels outside the layer mask nothing."""
    area = intersect(host.layer_box(layer), canvas)
    if area is None:
        raise PluginError(
            f"SketchFill: the mask layer {layer.get_name()!r} lies outside the canvas."
        )
    grey_alpha = host.read(layer, area, GREY_ALPHA)
    channel = mask_channel(grey_alpha)
    local = bbox_of(grey_alpha[channel::2], area.width, area.height)
    if local is None:
        raise PluginError(
            f"SketchFill: the mask layer {layer.get_name()!r} is empty: paint {what} on it "
            "(white, or any colour on a transparent layer)."
        )
    return Box(area.x + local.x, area.y + local.y, local.width, local.height), channel


# What the mask marks, in the messages of each command that reads one.
REGENERATE = "the area to regenerate"
OCCLUDER = "what hides the face"


def plan_edit(host, selected, top_level, settings: Settings) -> Plan:
    """Resolve the layers and find the mask. Raises PluginError with what to do."""
    plan = plan_mask(host, selected, top_level, settings, REGENERATE)
    plan.sketch = _guide(top_level, "sketch", settings.sketch_layer, plan.image)
    plan.color = _guide(top_level, "color", settings.color_layer, plan.image)
    return plan


def plan_mask(host, selected, top_level, settings: Settings, what: str) -> Plan:
    """The photo and the mask (the selection, or the mask layer, as settings.mask_source
    says), without guides; `what` the mask marks, for the messages. Raises PluginError
    with what to do."""
    width, height = host.canvas_size()
    canvas = Box(0, 0, width, height)
    photo = image_layer(selected, top_level, settings)
    source = settings.mask_source
    if source not in MASK_SOURCES:
        raise PluginError(f"SketchFill: mask source must be one of {', '.join(MASK_SOURCES)}.")
    mask = None
    if source != "selection":
        mask = find_role_layer(top_level, "mask", settings.mask_layer)
    selection = host.selection_bounds() if source != "layer" else None
    plan = Plan(width, height, photo, canvas)
    if selection is not None:
        plan.bbox = selection
    elif mask is not None:
        plan.mask_layer = mask
        plan.bbox, plan.mask_channel = _mask_from_layer(host, mask, canvas, what)
    else:
        # Mask layer set to None names no layer: say that, not "a layer named ''".
        layer = f"a layer named {settings.mask_layer!r}"
        if not settings.mask_layer:
            layer = "a mask layer (Mask layer is set to None: pick the mask layer)"
        wanted = {
            "selection": "a selection",
            "layer": layer,
            "auto": f"a selection or {layer}",
        }[source]
        raise PluginError(
            f"SketchFill: no mask: {what} is given by {wanted}, and there is none. Select "
            "it (or paint it on the mask layer) and try again."
        )
    return plan


def _guide(top_level, role: str, name: str, photo):
    """The guide layer for `role`, or None when the setting is None (""). A name that
    finds no layer refuses the run before anything is sent: a guide is never dropped
    without a word."""
    if not name:
        return None
    layer = find_role_layer(top_level, role, name)
    if layer is None or layer.get_id() == photo.get_id():
        wanted = "" if _by_role_names(role, name) else name
        raise PluginError(f"SketchFill: {roles.missing_guide(role, wanted)}")
    return layer


# -- the engine --------------------------------------------------------------------------


def region_for(plan: Plan, hello: dict[str, Any], endpoint: str) -> Box:
    """The rectangle to send, after checking that the engine can take it."""
    model_error = hello.get("model_error")
    if hello.get("model") is None:
        why = (model_error or {}).get("message", "it reports no model")
        raise PluginError(
            f"SketchFill: the engine at {endpoint} has no usable model: {why}. Install a model "
            "(see the SketchFill README) or restart the engine with --model."
        )
    region = edit_region(plan.bbox, plan.canvas_width, plan.canvas_height, hello)
    _check_size(region, hello, "the area around the mask", "Regenerate a smaller area, scale")
    return region


def _check_size(region: Box, hello: dict[str, Any], what: str, fix: str) -> None:
    limit = (hello.get("limits") or {}).get("max_pixels")
    if limit and region.width * region.height > limit:
        raise PluginError(
            f"SketchFill: image too large for the engine: {what} is {region.width}x"
            f"{region.height} pixels, over its limit of {limit}. {fix} the image down, or "
            "start the engine with a larger --max-pixels."
        )


def read_mask(host, plan: Plan, region: Box) -> bytes:
    """The plan's mask over `region`, one byte a pixel: the selection, or the mask layer's
    channel that holds it."""
    if plan.mask_layer is None:
        return host.read_selection(region)
    return host.read(plan.mask_layer, region, GREY_ALPHA)[plan.mask_channel :: 2]


def feather_for(plan: Plan, settings: Settings) -> float:
    """The feather to ask for: the setting, or (when it is -1) the automatic one, which
    scales with the mask and the photo."""
    if settings.feather >= 0:
        return settings.feather
    box = plan.bbox
    return roles.auto_feather(box.width, box.height, plan.canvas_width, plan.canvas_height)


def build_request(host, plan: Plan, region: Box, settings: Settings) -> EditRequest:
    """Read just the region's pixels: photo, mask, and the guides that exist."""
    return EditRequest(
        canvas_width=plan.canvas_width,
        canvas_height=plan.canvas_height,
        region=region,
        image=host.read(plan.image, region, RGBA),
        mask=read_mask(host, plan, region),
        # Sketch and colour go as the layers' own RGBA: the engine reads strokes from
        # alpha (or darkness, on an opaque layer) and paint from alpha (engine/pipeline/layers.py).
        sketch=host.read(plan.sketch, region, RGBA) if plan.sketch is not None else None,
        sketch_layout="RGBA",
        color=host.read(plan.color, region, RGBA) if plan.color is not None else None,
        seed=None if settings.seed < 0 else settings.seed,
        feather=feather_for(plan, settings),
    )


def _engine_tool(
    hello: dict[str, Any], op: str, endpoint: str, feature: str, verb: str
) -> dict[str, Any]:
    """The engine's description of tool `op` (its model, its context), after checking that
    the engine has the tool and a model for it."""
    tool = (hello.get("tools") or {}).get(op)
    if tool is None:
        raise PluginError(
            f"SketchFill: the engine at {endpoint} has no {feature} (it is an older version): "
            "update SketchFill and restart the engine."
        )
    if tool.get("model") is None:
        why = (tool.get("model_error") or {}).get("message", f"it reports no {op} model")
        raise PluginError(
            f"SketchFill: the engine at {endpoint} cannot {verb}: {why}. Install the "
            f"sketchfill-{op} model (see the SketchFill README)."
        )
    return tool


# -- auto tone ---------------------------------------------------------------------------


@dataclass
class TonePlan:
    """What one auto tone reads: the photo layer's part of the canvas, and the selection
    (soft) if there is one."""

    canvas_width: int
    canvas_height: int
    image: Any
    region: Box
    selection: bool


def plan_tone(host, selected, top_level, settings: Settings) -> TonePlan:
    width, height = host.canvas_size()
    photo = image_layer(selected, top_level, settings)
    region = intersect(host.layer_box(photo), Box(0, 0, width, height))
    if region is None:
        raise PluginError(f"SketchFill: the layer {photo.get_name()!r} lies outside the canvas.")
    selection = host.selection_bounds()
    if selection is not None and intersect(selection, region) is None:
        raise PluginError(
            "SketchFill: the selection does not touch the photo's layer: select part of the "
            "photo, or nothing to tone all of it."
        )
    return TonePlan(width, height, photo, region, selection is not None)


def tone_request(host, plan: TonePlan, hello: dict[str, Any], endpoint: str) -> ToneRequest:
    """Check that the engine can tone, then read the photo (and selection) over the
    whole layer: the curves are measured on all of it, even when a selection limits
    where they apply."""
    _engine_tool(hello, "tone", endpoint, "auto tone", "tone")
    region = plan.region
    _check_size(region, hello, "the layer", "Scale")
    return ToneRequest(
        canvas_width=plan.canvas_width,
        canvas_height=plan.canvas_height,
        region=region,
        image=host.read(plan.image, region, RGBA),
        mask=host.read_selection(region) if plan.selection else None,
    )


# -- composite face ----------------------------------------------------------------------

COMPOSITE_NEEDS = (
    "SketchFill: Composite face: select the face layer; the photo must be the layer right below it"
)


@dataclass
class CompositePlan:
    """What one composite reads: the face layer, the photo right below it, and where to
    composite (the face's alpha, or the selection when there is one)."""

    canvas_width: int
    canvas_height: int
    face: Any
    photo: Any
    bbox: Box  # on the canvas: the face's alpha > 0, or the selection's bounds
    selection: bool


def face_layer(selected, top_level):
    """The one selected layer; a selected SketchFill result stands for the first plain
    layer below it (the face it was made from), as image_layer does for the photo."""
    layers = [layer for layer in selected if layer.is_layer()]
    if len(layers) != 1:
        what = "no layer is selected" if not layers else f"{len(layers)} layers are selected"
        raise PluginError(f"{COMPOSITE_NEEDS} ({what}).")
    face = layers[0]
    if is_result(face):
        below = _siblings(face, top_level)
        below = below[_index(face, below) + 1 :]
        face = next((lay for lay in below if not is_result(lay)), face)
    return face


def _face_bbox(host, face, canvas: Box) -> tuple[Box, bool]:
    """Bounding box on the canvas of the face layer's visible pixels (alpha > 0), and
    whether the layer is opaque all over its part of the canvas (as a layer without an
    alpha channel reads)."""
    name = face.get_name()
    area = intersect(host.layer_box(face), canvas)
    if area is None:
        raise PluginError(
            f"SketchFill: Composite face: the face layer {name!r} lies outside the canvas."
        )
    alpha = host.read(face, area, GREY_ALPHA)[1::2]
    local = bbox_of(alpha, area.width, area.height, _ANY)
    if local is None:
        raise PluginError(
            f"SketchFill: Composite face: the face layer {name!r} is empty (fully "
            "transparent): paste the face onto it, or select the layer that holds the face."
        )
    box = Box(area.x + local.x, area.y + local.y, local.width, local.height)
    return box, alpha.count(255) == len(alpha)


def plan_composite(host, selected, top_level) -> CompositePlan:
    """Resolve the face and the photo and find where to composite. Raises PluginError
    with what to do."""
    width, height = host.canvas_size()
    face = face_layer(selected, top_level)
    siblings = _siblings(face, top_level)
    index = _index(face, siblings)
    if index + 1 >= len(siblings):
        raise PluginError(f"{COMPOSITE_NEEDS}, and {face.get_name()!r} has no layer below it.")
    photo = siblings[index + 1]
    bbox, opaque = _face_bbox(host, face, Box(0, 0, width, height))
    selection = host.selection_bounds()
    if selection is not None:
        if intersect(selection, bbox) is None:
            raise PluginError(
                "SketchFill: Composite face: the selection does not touch the face: select "
                "part of the face, or nothing to use the face layer's own outline."
            )
        return CompositePlan(width, height, face, photo, selection, True)
    if opaque:
        # Without transparency the whole layer would count as the face, background and all.
        raise PluginError(
            f"SketchFill: Composite face: the face layer {face.get_name()!r} has no "
            "transparency, so it does not show where the face is: erase around the face "
            "(Layer > Transparency > Add Alpha Channel first), or select the face's area."
        )
    return CompositePlan(width, height, face, photo, bbox, False)


def composite_request(
    host, plan: CompositePlan, hello: dict[str, Any], endpoint: str
) -> CompositeRequest:
    """Check that the engine can composite, then read just the region it needs: photo,
    face and selection."""
    _engine_tool(hello, "composite", endpoint, "face compositing", "composite faces")
    # The composite tool's own context (its model's resolution as the least side): the
    # region then holds the whole square its network reads.
    region = edit_region(plan.bbox, plan.canvas_width, plan.canvas_height, hello, "composite")
    _check_size(region, hello, "the area around the face", "Composite a smaller face, scale")
    return CompositeRequest(
        canvas_width=plan.canvas_width,
        canvas_height=plan.canvas_height,
        region=region,
        image=host.read(plan.photo, region, RGBA),
        face=host.read(plan.face, region, RGBA),
        mask=host.read_selection(region) if plan.selection else None,
    )


# -- restore face ------------------------------------------------------------------------


def plan_restore(host, selected, top_level, settings: Settings) -> Plan:
    """The photo and the mask over what hides the face, found as Generate finds them (no
    guides). Raises PluginError with what to do."""
    return plan_mask(host, selected, top_level, settings, OCCLUDER)


def restore_request(
    host, plan: Plan, hello: dict[str, Any], endpoint: str, settings: Settings
) -> RestoreRequest:
    """Check that the engine can restore faces, then read photo and mask over the restore
    tool's context around the mask: a large area, since the engine finds the whole face in
    what it is sent."""
    _engine_tool(hello, "restore", endpoint, "face restoration", "restore faces")
    region = edit_region(plan.bbox, plan.canvas_width, plan.canvas_height, hello, "restore")
    _check_size(region, hello, "the area around the mask", "Restore a smaller area, scale")
    return RestoreRequest(
        canvas_width=plan.canvas_width,
        canvas_height=plan.canvas_height,
        region=region,
        image=host.read(plan.image, region, RGBA),
        mask=read_mask(host, plan, region),
        seed=None if settings.seed < 0 else settings.seed,
        feather=feather_for(plan, settings),
    )


def engine_message(exc: EngineError, op: str = "") -> str:
    """What to tell the user about an engine error of operation `op`, with what to do
    about it (the hint table all plug-ins share: sketchfill_client/errors.py)."""
    text = exc.message.rstrip(".")
    if exc.code == protocol.TOO_LARGE:
        text = f"image too large for the engine: {text}"
    advice = hint(exc.code, op)
    return f"SketchFill: {text} ({advice})." if advice else f"SketchFill: {text}."


def stage_text(stage: str, queue_position: int | None, op: str = "") -> str:
    """The progress text for an engine stage of operation `op`, in the words both
    plug-ins use (sketchfill_client.roles.stage_words)."""
    if stage == "queued":
        where = f" (position {queue_position})" if queue_position else ""
        return f"SketchFill: waiting for the engine{where}"
    return f"SketchFill: {roles.stage_words(stage, op)}"


# -- guide layers and before/after -------------------------------------------------------


@dataclass
class GuidesPlan:
    """What "Create SketchFill layers" adds: the roles' layers that are not there yet,
    above the photo, top to bottom; and the names of those already there."""

    photo: Any
    make: list[str]
    kept: list[str]


def plan_guides(selected, top_level) -> GuidesPlan:
    photo = image_layer(selected, top_level, Settings())
    make, kept = [], []
    for role in roles.NEW_GUIDES:
        own = roles.ROLE_NAMES[role][0]
        layer = find_role_layer(top_level, role, own)
        if layer is None:
            make.append(own)
        else:
            kept.append(layer.get_name())
    return GuidesPlan(photo, make, kept)


def newest_result(top_level):
    """The SketchFill result that shows: the topmost one (each run stacks its result on top
    of the earlier ones)."""
    return next((layer for layer in walk(top_level) if is_result(layer)), None)
