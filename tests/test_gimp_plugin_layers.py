"""The GIMP plug-in's pure-Python decisions (plugin_gimp/sketchfill/sketchfill_layers.py)
against a small fake of GIMP's layers: which layer plays which role, where the mask is,
which rectangle is sent. These run in milliseconds; tests/hosts/test_gimp_plugin.py proves
the same plug-in in the real GIMP."""

from __future__ import annotations

import importlib
import sys
from itertools import count

import pytest
from sketchfill.plugins import stage_gimp

_ids = count(1)
HELLO = {
    "model": {"name": "echo", "resolution": 64},
    "limits": {"max_pixels": 1_000_000},
    "context": {"margin": 0.5, "min_side": 64},
}


@pytest.fixture(scope="module")
def sl(tmp_path_factory):
    """sketchfill_layers as installed: staged with the sketchfill_client package beside."""
    folder = stage_gimp(tmp_path_factory.mktemp("gimp") / "plug-ins")
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module("sketchfill_layers")
    finally:
        sys.path.remove(str(folder))
        staged = ("sketchfill_layers", "sketchfill_settings", "sketchfill_client")
        for name in [m for m in sys.modules if m.startswith(staged)]:
            del sys.modules[name]


class Layer:
    """What sketchfill_layers asks of a Gimp.Layer. Pixels are RGBA bytes of its own size."""

    def __init__(self, name, x=0, y=0, w=8, h=8, rgba=None, children=None):
        self.name, self.x, self.y, self.w, self.h = name, x, y, w, h
        self.rgba = rgba if rgba is not None else bytes(4 * w * h)
        self.children = children
        self.parent = None
        self.id = next(_ids)
        for child in children or []:
            child.parent = self

    def get_name(self):
        return self.name

    def get_id(self):
        return self.id

    def is_layer(self):
        return True

    def is_group(self):
        return self.children is not None

    def get_children(self):
        return self.children

    def get_parent(self):
        return self.parent

    def get_offsets(self):
        return True, self.x, self.y

    def get_width(self):
        return self.w

    def get_height(self):
        return self.h


def painted(w, h, spots, value=(255, 255, 255, 255)):
    """RGBA bytes, transparent but for the (x, y) spots."""
    px = bytearray(4 * w * h)
    for x, y in spots:
        px[4 * (y * w + x) : 4 * (y * w + x) + 4] = bytes(value)
    return bytes(px)


class Host:
    """GimpHost's reads, done per pixel (fine for a fake): same coordinates, same zeros
    outside a layer, "Y'A u8" as luma and alpha."""

    def __init__(self, width=64, height=48, selection=None):
        self.width, self.height = width, height
        self.selection = selection  # canvas-sized "Y u8" bytes, or None
        self.reads = []

    def canvas_size(self):
        return self.width, self.height

    def layer_box(self, layer):
        from sketchfill_client.protocol import Box

        return Box(layer.x, layer.y, layer.w, layer.h)

    def read(self, layer, box, fmt):
        self.reads.append((layer.name, box, fmt))
        out = bytearray()
        for y in range(box.y, box.y1):
            for x in range(box.x, box.x1):
                lx, ly = x - layer.x, y - layer.y
                inside = 0 <= lx < layer.w and 0 <= ly < layer.h
                i = 4 * (ly * layer.w + lx)
                r, g, b, a = layer.rgba[i : i + 4] if inside else (0, 0, 0, 0)
                if fmt == "R'G'B'A u8":
                    out += bytes((r, g, b, a))
                else:
                    out += bytes(((299 * r + 587 * g + 114 * b + 500) // 1000, a))
        return bytes(out)

    def selection_bounds(self):
        from sketchfill_client.protocol import Box

        if self.selection is None:
            return None
        on = [i for i, v in enumerate(self.selection) if v]
        if not on:
            return None
        xs, ys = [i % self.width for i in on], [i // self.width for i in on]
        return Box(min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)

    def read_selection(self, box):
        self.reads.append(("selection", box, "Y u8"))
        w = self.width
        return b"".join(
            self.selection[y * w + box.x : y * w + box.x1] for y in range(box.y, box.y1)
        )


def stack():
    """Top to bottom: sketch, color, an earlier result, photo, background."""
    layers = {n: Layer(n) for n in ("sketch", "color", "SketchFill seed 7", "photo", "bg")}
    return layers, list(layers.values())


# -- layer roles ---------------------------------------------------------------------------


def test_image_layer_is_the_selected_plain_layer(sl):
    layers, top = stack()
    pick = sl.image_layer
    assert pick([layers["bg"]], top, sl.Settings()) is layers["bg"]
    # a selected guide is skipped: the topmost plain layer
    assert pick([layers["sketch"]], top, sl.Settings()) is layers["photo"]
    assert pick([], top, sl.Settings()) is layers["photo"]
    # a selected result stands for the layer it was made from, right below it
    assert pick([layers["SketchFill seed 7"]], top, sl.Settings()) is layers["photo"]
    # a name wins over the selection, ignoring case
    assert pick([layers["photo"]], top, sl.Settings(image_layer="BG")) is layers["bg"]


def test_image_layer_errors(sl):
    layers, top = stack()
    with pytest.raises(sl.PluginError, match="no layer named 'nope'"):
        sl.image_layer([], top, sl.Settings(image_layer="nope"))
    with pytest.raises(sl.PluginError, match="no image layer"):
        sl.image_layer([], [layers["sketch"], layers["color"]], sl.Settings())


def test_find_layer_looks_inside_groups_and_prefers_the_exact_name(sl):
    inner = Layer("Sketch")
    exact = Layer("sketch")
    group = Layer("guides", children=[inner])
    assert sl.find_layer([group], "sketch") is inner
    assert sl.find_layer([group, exact], "sketch") is exact
    assert sl.find_layer([group], "") is None
    assert sl.walk([group, exact]) == [group, inner, exact]


def test_new_results_go_above_the_photo_and_earlier_results(sl):
    layers, top = stack()
    assert sl.insert_position(layers["photo"], top) == 2  # above "SketchFill seed 7"
    assert sl.insert_position(layers["bg"], top) == 4
    inner = Layer("photo")
    group = Layer("group", children=[Layer("x"), inner])
    assert sl.insert_position(inner, [group]) == 1


# -- the mask ------------------------------------------------------------------------------


def test_bbox_of_values_at_least_half(sl):
    w, h = 7, 5
    values = bytearray(w * h)
    values[1 * w + 2] = 128
    values[3 * w + 5] = 255
    values[4 * w + 6] = 127  # under half: not part of the mask
    assert sl.bbox_of(bytes(values), w, h) == sl.Box(2, 1, 4, 3)
    assert sl.bbox_of(bytes(w * h), w, h) is None


def test_mask_channel_alpha_when_transparent_else_brightness(sl):
    assert sl.mask_channel(bytes((255, 255, 0, 255))) == 0
    assert sl.mask_channel(bytes((255, 255, 0, 0))) == 1


def test_mask_from_the_selection_or_the_mask_layer(sl):
    w, h = 64, 48
    selection = bytearray(w * h)
    for y in range(10, 20):
        selection[y * w + 30 : y * w + 40] = b"\xff" * 10
    host = Host(w, h, bytes(selection))
    mask = Layer("mask", x=-4, y=30, w=20, h=10, rgba=painted(20, 10, [(5, 2), (12, 7)]))
    photo = Layer("photo", w=w, h=h)
    top = [mask, photo]
    auto = sl.plan_edit(host, [photo], top, sl.Settings())
    assert auto.mask_layer is None and auto.bbox == sl.Box(30, 10, 10, 10)
    layer = sl.plan_edit(host, [photo], top, sl.Settings(mask_source="layer"))
    # the layer's own coordinates, clipped to the canvas, moved by its offsets
    assert layer.mask_layer is mask and layer.mask_channel == 1
    assert layer.bbox == sl.Box(1, 32, 8, 6)
    host.selection = None
    assert sl.plan_edit(host, [photo], top, sl.Settings()).mask_layer is mask
    with pytest.raises(sl.PluginError, match=r"no mask: .* given by a selection,"):
        sl.plan_edit(host, [photo], top, sl.Settings(mask_source="selection"))


def test_opaque_mask_layer_uses_brightness_and_empty_ones_are_refused(sl):
    w, h = 16, 12
    opaque = painted(w, h, [(x, y) for x in range(w) for y in range(h)], (0, 0, 0, 255))
    i = 4 * (5 * w + 9)
    opaque = opaque[:i] + b"\xff\xff\xff\xff" + opaque[i + 4 :]
    host = Host(w, h)
    photo = Layer("photo", w=w, h=h)
    mask = Layer("mask", w=w, h=h, rgba=opaque)
    plan = sl.plan_edit(host, [photo], [mask, photo], sl.Settings())
    assert plan.mask_channel == 0 and plan.bbox == sl.Box(9, 5, 1, 1)
    mask.rgba = bytes(4 * w * h)
    with pytest.raises(sl.PluginError, match="mask layer 'mask' is empty"):
        sl.plan_edit(host, [photo], [mask, photo], sl.Settings())


def test_guides_are_optional_and_never_the_photo(sl):
    host = Host(selection=b"\xff" * (64 * 48))
    photo = Layer("photo")
    settings = sl.Settings(image_layer="photo", sketch_layer="photo")
    plan = sl.plan_edit(host, [], [photo], settings)
    assert plan.sketch is None and plan.color is None


# -- the request ---------------------------------------------------------------------------


def test_region_checks_model_and_size(sl):
    plan = sl.Plan(4000, 3000, Layer("photo"), sl.Box(100, 200, 30, 20))
    assert sl.region_for(plan, HELLO, "E") == sl.Box(83, 178, 64, 64)
    with pytest.raises(sl.PluginError, match="no usable model: gone"):
        sl.region_for(plan, {**HELLO, "model": None, "model_error": {"message": "gone"}}, "E")
    big = sl.Plan(4000, 3000, Layer("photo"), sl.Box(0, 0, 2000, 1500))
    with pytest.raises(sl.PluginError, match=r"image too large .* 4000x3000 pixels"):
        sl.region_for(big, HELLO, "E")


def test_build_request_reads_only_the_region(sl):
    w, h = 64, 48
    selection = bytearray(w * h)
    selection[20 * w + 30] = 255
    host = Host(w, h, bytes(selection))
    photo = Layer("photo", w=w, h=h, rgba=bytes(range(256)) * (w * h // 64))
    color = Layer("color", x=28, y=18, w=4, h=4, rgba=painted(4, 4, [(2, 2)], (9, 8, 7, 255)))
    plan = sl.plan_edit(host, [photo], [color, photo], sl.Settings())
    region = sl.Box(26, 16, 8, 8)
    request = sl.build_request(host, plan, region, sl.Settings(seed=-1, feather=1.5))
    assert {box for _, box, _ in host.reads} == {region}
    layouts = (request.image_layout, request.mask_layout, request.color_layout)
    assert layouts == ("RGBA", "L", "RGBA")
    assert request.sketch is None and request.seed is None and request.feather == 1.5
    assert request.mask[4 * 8 + 4] == 255 and sum(request.mask) == 255
    # the colour layer sits at (28, 18): its dab at (30, 20), zeros outside the layer
    assert request.color[4 * (4 * 8 + 4) : 4 * (4 * 8 + 4) + 4] == bytes((9, 8, 7, 255))
    assert request.color[:4] == bytes(4)
    fixed = sl.build_request(host, plan, region, sl.Settings(seed=5))
    assert fixed.seed == 5


def test_engine_messages_say_what_to_do(sl):
    from sketchfill_client.client import EngineError

    text = sl.engine_message(EngineError("model_missing", "no model here."))
    hint = "install a model (see the SketchFill README) or restart the engine with --model"
    assert text == f"SketchFill: no model here ({hint})."
    assert sl.engine_message(EngineError("too_large", "big")).startswith(
        "SketchFill: image too large for the engine: big"
    )
    assert sl.engine_message(EngineError("timeout", "slow")) == "SketchFill: slow."
    assert sl.stage_text("queued", 2) == "SketchFill: waiting for the engine (position 2)"
    assert sl.stage_text("generate", None) == "SketchFill: generating"


TONE_HELLO = {**HELLO, "tools": {"tone": {"model": {"name": "sketchfill-tone"}}}}


def test_tone_plan_reads_the_photo_layer_and_the_selection(sl):
    w, h = 64, 48
    selection = bytearray(w * h)
    selection[20 * w + 30] = 128
    host = Host(w, h, bytes(selection))
    photo = Layer("photo", x=-4, y=6, w=60, h=50, rgba=bytes(range(256)) * (60 * 50 // 64))
    plan = sl.plan_tone(host, [photo], [photo], sl.Settings())
    assert plan.region == sl.Box(0, 6, 56, 42)  # the layer's part of the canvas
    request = sl.tone_request(host, plan, TONE_HELLO, "E")
    assert {box for _, box, _ in host.reads} == {plan.region}
    assert request.region == plan.region and request.mask_layout == "L"
    assert request.mask[14 * 56 + 30] == 128 and sum(request.mask) == 128
    host.selection = None
    whole = sl.tone_request(
        host, sl.plan_tone(host, [photo], [photo], sl.Settings()), TONE_HELLO, "E"
    )
    assert whole.mask is None
    assert whole.frames("id")[0]  # encodes as a protocol message


def test_tone_refusals_say_what_to_do(sl):
    host = Host(64, 48)
    photo = Layer("photo", w=64, h=48)
    plan = sl.plan_tone(host, [photo], [photo], sl.Settings())
    with pytest.raises(sl.PluginError, match=r"no auto tone .* update SketchFill"):
        sl.tone_request(host, plan, HELLO, "E")
    missing = {"tools": {"tone": {"model": None, "model_error": {"message": "not found"}}}}
    with pytest.raises(
        sl.PluginError, match=r"cannot tone: not found\. Install the sketchfill-tone"
    ):
        sl.tone_request(host, plan, missing, "E")
    small = {**TONE_HELLO, "limits": {"max_pixels": 1000}}
    with pytest.raises(sl.PluginError, match=r"image too large .* 64x48 pixels"):
        sl.tone_request(host, plan, small, "E")
    off = Layer("photo", x=100, y=0, w=10, h=10)
    with pytest.raises(sl.PluginError, match="outside the canvas"):
        sl.plan_tone(host, [off], [off], sl.Settings())
    selection = bytearray(64 * 48)
    selection[0] = 255
    elsewhere = Host(64, 48, bytes(selection))
    corner = Layer("photo", x=30, y=30, w=10, h=10)
    with pytest.raises(sl.PluginError, match="selection does not touch"):
        sl.plan_tone(elsewhere, [corner], [corner], sl.Settings())
    result = Layer("SketchFill tone")
    assert sl.is_result(result)
