"""From GIMP layers to an edit request, and engine errors to sentences (no GIMP imports).

The plug-in's decisions live here, apart from the Gimp.PlugIn glue, so they can be tested
with a small fake of the host: which layer is the photo, the sketch, the colour and the
mask; where the mask is; which rectangle of the canvas to send. Pixels are read through a
host object (sketchfill_host.GimpHost in GIMP) and never touched one by one in Python: the
few whole-buffer steps below (a byte table, slices, find) run in C.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sketchfill_client import protocol
from sketchfill_client.client import EditRequest, EngineError, ToneRequest, edit_region
from sketchfill_client.protocol import Box
from sketchfill_settings import MASK_SOURCES, Settings

RESULT_PREFIX = "SketchFill seed "
TONE_RESULT = "SketchFill tone"
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
    return layer.get_name().startswith((RESULT_PREFIX, TONE_RESULT))


def _is_guide(layer, settings: Settings) -> bool:
    names = {settings.sketch_layer, settings.color_layer, settings.mask_layer} - {""}
    return layer.get_name().casefold() in {n.casefold() for n in names}


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


def insert_position(image_layer, top_level) -> int:
    """Index (in the image layer's parent) for a new result: above the image layer and
    above the results already made from it, so the newest one shows."""
    siblings = _siblings(image_layer, top_level)
    index = _index(image_layer, siblings)
    while index > 0 and is_result(siblings[index - 1]):
        index -= 1
    return index


# -- the mask ----------------------------------------------------------------------------

_AT_LEAST_HALF = bytes(int(v >= MASK_THRESHOLD) for v in range(256))


def bbox_of(values: bytes, width: int, height: int) -> Box | None:
    """Bounding box of the values >= MASK_THRESHOLD in a width x height grey buffer."""
    on = values.translate(_AT_LEAST_HALF)
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


def _mask_from_layer(host, layer, canvas: Box) -> tuple[Box, int]:
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
            f"SketchFill: the mask layer {layer.get_name()!r} is empty: paint the area to "
            "regenerate on it (white, or any colour on a transparent layer)."
        )
    return Box(area.x + local.x, area.y + local.y, local.width, local.height), channel


def plan_edit(host, selected, top_level, settings: Settings) -> Plan:
    """Resolve the layers and find the mask. Raises PluginError with what to do."""
    width, height = host.canvas_size()
    canvas = Box(0, 0, width, height)
    photo = image_layer(selected, top_level, settings)
    source = settings.mask_source
    if source not in MASK_SOURCES:
        raise PluginError(f"SketchFill: mask source must be one of {', '.join(MASK_SOURCES)}.")
    mask = find_layer(top_level, settings.mask_layer) if source != "selection" else None
    selection = host.selection_bounds() if source != "layer" else None
    plan = Plan(width, height, photo, canvas)
    if selection is not None:
        plan.bbox = selection
    elif mask is not None:
        plan.mask_layer = mask
        plan.bbox, plan.mask_channel = _mask_from_layer(host, mask, canvas)
    else:
        wanted = {
            "selection": "a selection",
            "layer": f"a layer named {settings.mask_layer!r}",
            "auto": f"a selection or a layer named {settings.mask_layer!r}",
        }[source]
        raise PluginError(
            f"SketchFill: no mask: the area to regenerate is given by {wanted}, and there is "
            "none. Select the area (or paint it on the mask layer) and try again."
        )
    plan.sketch = _guide(top_level, settings.sketch_layer, photo)
    plan.color = _guide(top_level, settings.color_layer, photo)
    return plan


def _guide(top_level, name: str, photo):
    layer = find_layer(top_level, name)
    return None if layer is None or layer.get_id() == photo.get_id() else layer


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


def build_request(host, plan: Plan, region: Box, settings: Settings) -> EditRequest:
    """Read just the region's pixels: photo, mask, and the guides that exist."""
    if plan.mask_layer is None:
        mask = host.read_selection(region)
    else:
        mask = host.read(plan.mask_layer, region, GREY_ALPHA)[plan.mask_channel :: 2]
    return EditRequest(
        canvas_width=plan.canvas_width,
        canvas_height=plan.canvas_height,
        region=region,
        image=host.read(plan.image, region, RGBA),
        mask=mask,
        # Sketch and colour go as the layers' own RGBA: the engine reads strokes from
        # alpha (or darkness, on an opaque layer) and paint from alpha (engine/layers.py).
        sketch=host.read(plan.sketch, region, RGBA) if plan.sketch is not None else None,
        sketch_layout="RGBA",
        color=host.read(plan.color, region, RGBA) if plan.color is not None else None,
        seed=None if settings.seed < 0 else settings.seed,
        feather=settings.feather,
    )


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
    tool = (hello.get("tools") or {}).get("tone")
    if tool is None:
        raise PluginError(
            f"SketchFill: the engine at {endpoint} has no auto tone (it is an older version): "
            "update SketchFill and restart the engine."
        )
    if tool.get("model") is None:
        why = (tool.get("model_error") or {}).get("message", "it reports no tone model")
        raise PluginError(
            f"SketchFill: the engine at {endpoint} cannot tone: {why}. Install the "
            "sketchfill-tone model (see the SketchFill README)."
        )
    region = plan.region
    _check_size(region, hello, "the layer", "Scale")
    return ToneRequest(
        canvas_width=plan.canvas_width,
        canvas_height=plan.canvas_height,
        region=region,
        image=host.read(plan.image, region, RGBA),
        mask=host.read_selection(region) if plan.selection else None,
    )


_HINTS = {
    protocol.EMPTY_MASK: "the mask is less than half on everywhere: select or paint the area "
    "to regenerate more firmly",
    protocol.MODEL_MISSING: "install a model (see the SketchFill README) or restart the engine "
    "with --model",
    protocol.MODEL_INVALID: "reinstall the model or restart the engine with another --model",
    protocol.BUSY: "try again in a moment",
}


def engine_message(exc: EngineError) -> str:
    """What to tell the user about an engine error, with what to do about it."""
    if exc.code == protocol.TOO_LARGE:
        return f"SketchFill: image too large for the engine: {exc.message.rstrip('.')}."
    hint = _HINTS.get(exc.code)
    text = f"SketchFill: {exc.message.rstrip('.')}"
    return f"{text} ({hint})." if hint else f"{text}."


def stage_text(stage: str, queue_position: int | None) -> str:
    if stage == "queued":
        where = f" (position {queue_position})" if queue_position else ""
        return f"SketchFill: waiting for the engine{where}"
    return {
        "preprocess": "SketchFill: preparing",
        "generate": "SketchFill: generating",
        "composite": "SketchFill: blending the result",
        "analyse": "SketchFill: measuring the tones",
        "apply": "SketchFill: applying the tone curves",
    }.get(stage, f"SketchFill: {stage}")
