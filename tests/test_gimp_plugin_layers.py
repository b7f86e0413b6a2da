"""The GIMP plug-in's pure-Python decisions (plugin_gimp/sketchfill/sketchfill_layers.py)
against a small fake of GIMP's layers: which layer plays which role, where the mask is,
which rectangle is sent. These run in milliseconds; tests/hosts/test_gimp_plugin.py proves
the same plug-in in the real GIMP."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from itertools import count

import pytest
from sketchfill.install.plugins import stage_gimp

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
    bare = sl.Settings(sketch_layer="", color_layer="")  # guides set to None
    auto = sl.plan_edit(host, [photo], top, bare)
    assert auto.mask_layer is None and auto.bbox == sl.Box(30, 10, 10, 10)
    layer = sl.plan_edit(host, [photo], top, dataclasses.replace(bare, mask_source="layer"))
    # the layer's own coordinates, clipped to the canvas, moved by its offsets
    assert layer.mask_layer is mask and layer.mask_channel == 1
    assert layer.bbox == sl.Box(1, 32, 8, 6)
    host.selection = None
    assert sl.plan_edit(host, [photo], top, bare).mask_layer is mask
    with pytest.raises(sl.PluginError, match=r"no mask: .* given by a selection,"):
        sl.plan_edit(host, [photo], top, dataclasses.replace(bare, mask_source="selection"))
    # Mask layer set to None: the message names that, not "a layer named ''"
    with pytest.raises(sl.PluginError, match=r"Mask layer is set to None") as refused:
        sl.plan_edit(host, [photo], top, dataclasses.replace(bare, mask_layer=""))
    assert "''" not in str(refused.value)


def test_opaque_mask_layer_uses_brightness_and_empty_ones_are_refused(sl):
    w, h = 16, 12
    opaque = painted(w, h, [(x, y) for x in range(w) for y in range(h)], (0, 0, 0, 255))
    i = 4 * (5 * w + 9)
    opaque = opaque[:i] + b"\xff\xff\xff\xff" + opaque[i + 4 :]
    host = Host(w, h)
    photo = Layer("photo", w=w, h=h)
    mask = Layer("mask", w=w, h=h, rgba=opaque)
    bare = sl.Settings(sketch_layer="", color_layer="")
    plan = sl.plan_edit(host, [photo], [mask, photo], bare)
    assert plan.mask_channel == 0 and plan.bbox == sl.Box(9, 5, 1, 1)
    mask.rgba = bytes(4 * w * h)
    with pytest.raises(sl.PluginError, match="mask layer 'mask' is empty"):
        sl.plan_edit(host, [photo], [mask, photo], bare)


def test_a_missing_guide_refuses_the_run_and_none_goes_on_without(sl):
    """A guide is never dropped without a word: a named layer that is not there, a role
    whose names find no layer, and the photo named as its own guide are refused, saying
    how to go on; None (an empty name) goes on without the guide."""
    host = Host(selection=b"\xff" * (64 * 48))
    photo = Layer("photo")
    with pytest.raises(sl.PluginError, match="no layer named 'photo'"):
        sl.plan_edit(host, [], [photo], sl.Settings(image_layer="photo", sketch_layer="photo"))
    with pytest.raises(sl.PluginError, match=r"no layer named 'Lines 2'\. Pick the sketch"):
        sl.plan_edit(host, [], [photo], sl.Settings(sketch_layer="Lines 2", color_layer=""))
    with pytest.raises(sl.PluginError, match=r"No colour layer: .* 'color', 'colour'"):
        sl.plan_edit(host, [], [photo], sl.Settings(sketch_layer=""))
    plan = sl.plan_edit(host, [], [photo], sl.Settings(sketch_layer="", color_layer=""))
    assert plan.sketch is None and plan.color is None


def test_the_roles_own_names_find_the_shared_list(sl):
    """A guide setting left at the role's own name finds any of the role's names (one
    list for GIMP and Krita); another name only itself."""
    host = Host(selection=b"\xff" * (64 * 48))
    lines, colour, photo = Layer(" Lines "), Layer("COLOUR"), Layer("photo")
    top = [lines, colour, photo]
    plan = sl.plan_edit(host, [photo], top, sl.Settings())
    assert plan.sketch is lines and plan.color is colour
    assert sl.image_layer([lines], top, sl.Settings()) is photo  # a guide, not the photo
    assert sl.find_role_layer(top, "sketch", " lines ") is lines  # another name: itself
    assert sl.find_role_layer(top, "sketch", "lineart") is None


def test_results_go_on_top_of_the_guides(sl):
    """Above the photo AND the guides it was made with (a guide in a group counts as its
    group), then above the results already there: the new result is what shows."""
    photo, sketch, color = Layer("photo"), Layer("sketch"), Layer("color")
    group = Layer("guides", children=[sketch])
    old = Layer("SF 3 fill")
    top = [old, group, color, photo]
    assert sl.insert_position(photo, top, [sketch, color]) == 0
    assert sl.insert_position(photo, top, [color]) == 2
    assert sl.insert_position(photo, top) == 3
    outside = Layer("elsewhere")
    assert sl.insert_position(photo, [outside, photo], [Layer("x", children=[])]) == 1


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
    plan = sl.plan_edit(host, [photo], [color, photo], sl.Settings(sketch_layer=""))
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
    from sketchfill_client.errors import EngineError

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


# -- composite face ------------------------------------------------------------------------

COMPOSITE_TOOL = {
    "model": {"name": "sketchfill-composite", "resolution": 32},
    "context": {"margin": 0.5, "min_side": 32},
}
COMPOSITE_HELLO = {**HELLO, "tools": {"composite": COMPOSITE_TOOL}}


def blob(w, h, x0, y0, bw, bh, value=(90, 140, 200, 255)):
    """RGBA bytes of a w x h layer, transparent but for a bw x bh block at (x0, y0)."""
    return painted(w, h, [(x, y) for x in range(x0, x0 + bw) for y in range(y0, y0 + bh)], value)


def composite_stack():
    """Top to bottom: face (offset, smaller than the canvas, a block of face at 4..9 x
    3..7 of its own pixels), photo (offset the other way), background."""
    face = Layer("face", x=20, y=10, w=16, h=12, rgba=blob(16, 12, 4, 3, 6, 5))
    photo = Layer("photo", x=-3, y=2, w=70, h=50, rgba=bytes(range(250)) * 56)
    return face, photo, [face, photo, Layer("bg")]


def test_composite_plan_face_is_selected_photo_is_right_below(sl):
    face, photo, top = composite_stack()
    host = Host(96, 64)
    plan = sl.plan_composite(host, [face], top)
    assert plan.face is face and plan.photo is photo and not plan.selection
    # the face's alpha > 0, in canvas coordinates (its offsets added)
    assert plan.bbox == sl.Box(24, 13, 6, 5)
    # a selected composite result stands for the face it was made from, right below it
    result = Layer("SketchFill composite")
    assert sl.plan_composite(host, [result], [result, *top]).face is face
    # inside a group, the photo is the layer below in that group, not the next one outside
    inner_photo = Layer("inner photo", w=96, h=64)
    group = Layer("group", children=[face, inner_photo])
    plan = sl.plan_composite(host, [face], [group, photo])
    assert plan.photo is inner_photo


def test_composite_request_reads_the_region_of_photo_face_and_selection(sl):
    from sketchfill_client.protocol import context_box

    face, _, top = composite_stack()
    host = Host(96, 64)
    plan = sl.plan_composite(host, [face], top)
    request = sl.composite_request(host, plan, COMPOSITE_HELLO, "E")
    # the composite tool's context (its model's side, 32), not the edit model's (64)
    assert request.region == context_box(plan.bbox, 96, 64, 0.5, 32) == sl.Box(11, 0, 32, 32)
    assert host.reads[-2:] == [
        ("photo", request.region, "R'G'B'A u8"),
        ("face", request.region, "R'G'B'A u8"),
    ]
    assert request.mask is None and request.face_layout == "RGBA"
    # the face at (24, 13) of the canvas is (13, 13) of the region, fully opaque
    i = 4 * (13 * 32 + 13)
    assert request.face[i : i + 4] == bytes((90, 140, 200, 255))
    assert request.face[:4] == bytes(4)  # outside the face layer: transparent
    # the photo at (-3, 2): canvas (11, 2) is its own pixel (14, 0); above it, nothing
    assert request.image[4 * 2 * 32 : 4 * 2 * 32 + 4] == bytes((56, 57, 58, 59))
    assert request.image[:4] == bytes(4)
    header = request.frames("id")[0]
    assert b'"op":"composite"' in header.replace(b" ", b"")
    # an older engine's hello without per-tool context: its top-level one
    plain = {**HELLO, "tools": {"composite": {"model": COMPOSITE_TOOL["model"]}}}
    assert sl.composite_request(host, plan, plain, "E").region.width == 64


def test_composite_with_a_selection_composites_there(sl):
    w, h = 96, 64
    selection = bytearray(w * h)
    for y in range(14, 20):
        selection[y * w + 26 : y * w + 34] = b"\x80" * 8
    face, _, top = composite_stack()
    host = Host(w, h, bytes(selection))
    plan = sl.plan_composite(host, [face], top)
    assert plan.selection and plan.bbox == sl.Box(26, 14, 8, 6)
    request = sl.composite_request(host, plan, COMPOSITE_HELLO, "E")
    assert request.mask_layout == "L" and len(request.mask) == 32 * 32
    assert sum(request.mask) == 0x80 * 8 * 6
    # an opaque face layer (no alpha channel) is fine when the selection says where
    face.rgba = blob(16, 12, 0, 0, 16, 12)
    assert sl.plan_composite(host, [face], top).bbox == sl.Box(26, 14, 8, 6)


def test_composite_refusals_say_what_to_do(sl):
    face, photo, top = composite_stack()
    host = Host(96, 64)
    needs = r"Composite face: select the face layer; the photo must be the layer right below it"
    with pytest.raises(sl.PluginError, match=needs + r", and 'face' has no layer below it"):
        sl.plan_composite(host, [face], [face])
    with pytest.raises(sl.PluginError, match=needs + r" \(no layer is selected\)"):
        sl.plan_composite(host, [], top)
    with pytest.raises(sl.PluginError, match=needs + r" \(2 layers are selected\)"):
        sl.plan_composite(host, [face, photo], top)
    channel = Layer("mask channel")
    channel.is_layer = lambda: False
    with pytest.raises(sl.PluginError, match=r"\(no layer is selected\)"):
        sl.plan_composite(host, [channel], top)
    empty = Layer("face", w=16, h=12)
    with pytest.raises(sl.PluginError, match=r"face layer 'face' is empty \(fully transparent\)"):
        sl.plan_composite(host, [empty], [empty, photo])
    opaque = Layer("pasted", x=20, y=10, w=16, h=12, rgba=blob(16, 12, 0, 0, 16, 12))
    with pytest.raises(sl.PluginError, match=r"'pasted' has no transparency.* or select"):
        sl.plan_composite(host, [opaque], [opaque, photo])
    off = Layer("face", x=200, y=0, w=16, h=12)
    with pytest.raises(sl.PluginError, match="'face' lies outside the canvas"):
        sl.plan_composite(host, [off], [off, photo])
    corner = bytearray(96 * 64)
    corner[0] = 255
    with pytest.raises(sl.PluginError, match="selection does not touch the face"):
        sl.plan_composite(Host(96, 64, bytes(corner)), [face], top)

    plan = sl.plan_composite(host, [face], top)
    with pytest.raises(sl.PluginError, match=r"no face compositing .* update SketchFill"):
        sl.composite_request(host, plan, HELLO, "E")
    missing = {"tools": {"composite": {"model": None, "model_error": {"message": "not found"}}}}
    with pytest.raises(
        sl.PluginError,
        match=r"cannot composite faces: not found\. Install the sketchfill-composite model",
    ):
        sl.composite_request(host, plan, missing, "E")
    small = {**COMPOSITE_HELLO, "limits": {"max_pixels": 500}}
    with pytest.raises(sl.PluginError, match=r"too large .* area around the face is 32x32"):
        sl.composite_request(host, plan, small, "E")


def test_composite_results_stack_above_the_face(sl):
    face, _, top = composite_stack()
    earlier = Layer("SketchFill composite")
    assert sl.is_result(earlier)
    assert sl.insert_position(face, top) == 0
    assert sl.insert_position(face, [earlier, *top]) == 0  # above the earlier result
    assert (
        sl.stage_text("analyse", None, "composite") == "SketchFill: matching the face to the photo"
    )
    assert sl.stage_text("apply", None, "composite") == "SketchFill: blending the face in"
    assert sl.stage_text("apply", None, "tone") == "SketchFill: applying the tone curves"
    assert (
        sl.stage_text("queued", 1, "composite") == "SketchFill: waiting for the engine (position 1)"
    )


# -- restore face --------------------------------------------------------------------------

RESTORE_TOOL = {
    "model": {"name": "sketchfill-restore", "resolution": 512},
    "context": {"margin": 2.0, "min_side": 2048},
}
# No edit model: Restore face needs only its own tool's.
RESTORE_HELLO = {**HELLO, "model": None, "tools": {"restore": RESTORE_TOOL}}


def ellipse_selection(w, h, box):
    """Canvas-sized "Y u8" bytes: 255 in the (x, y, w, h) box but for its corners."""
    x0, y0, bw, bh = box
    sel = bytearray(w * h)
    for y in range(y0, y0 + bh):
        for x in range(x0, x0 + bw):
            if ((x - x0 - (bw - 1) / 2) / (bw / 2)) ** 2 + (
                (y - y0 - (bh - 1) / 2) / (bh / 2)
            ) ** 2 <= 1:
                sel[y * w + x] = 255
    return bytes(sel)


def restore_stack():
    """Top to bottom: sketch and color guides, an earlier restore result, photo (offset),
    background."""
    photo = Layer("photo", x=-2, y=3, w=70, h=50, rgba=bytes(range(250)) * 56)
    layers = {
        "sketch": Layer("sketch", rgba=blob(8, 8, 0, 0, 8, 8)),
        "color": Layer("color", rgba=blob(8, 8, 0, 0, 8, 8)),
        "SketchFill restore": Layer("SketchFill restore"),
        "photo": photo,
        "bg": Layer("bg"),
    }
    return layers, list(layers.values())


def test_restore_plan_finds_photo_and_mask_as_generate_does(sl):
    w, h = 64, 48
    layers, top = restore_stack()
    host = Host(w, h, ellipse_selection(w, h, (20, 10, 9, 14)))
    # the selected restore result stands for the photo below it; guides are not read
    plan = sl.plan_restore(host, [layers["SketchFill restore"]], top, sl.Settings())
    assert plan.image is layers["photo"]
    assert plan.mask_layer is None and plan.bbox == sl.Box(20, 10, 9, 14)
    assert plan.sketch is None and plan.color is None
    # a layer named "mask" when there is no selection (its alpha, offset, clipped)
    mask = Layer("mask", x=-4, y=30, w=20, h=10, rgba=painted(20, 10, [(5, 2), (12, 7)]))
    host.selection = None
    plan = sl.plan_restore(host, [layers["photo"]], [mask, *top], sl.Settings())
    assert plan.mask_layer is mask and plan.mask_channel == 1
    assert plan.bbox == sl.Box(1, 32, 8, 6)
    # a named image layer, and the mask source, as Generate's settings say
    settings = sl.Settings(image_layer="bg", mask_source="layer")
    assert sl.plan_restore(host, [], [mask, *top], settings).image is layers["bg"]


def test_restore_plan_refusals_say_what_the_mask_marks(sl):
    layers, top = restore_stack()
    host = Host(64, 48)
    with pytest.raises(
        sl.PluginError,
        match=r"^SketchFill: no mask: what hides the face is given by a selection or a "
        r"layer named 'mask', and there is none",
    ):
        sl.plan_restore(host, [layers["photo"]], top, sl.Settings())
    with pytest.raises(sl.PluginError, match=r"no mask: what hides the face .* a selection,"):
        sl.plan_restore(host, [], top, sl.Settings(mask_source="selection"))
    empty = Layer("mask", w=16, h=12)
    with pytest.raises(
        sl.PluginError, match=r"mask layer 'mask' is empty: paint what hides the face on it"
    ):
        sl.plan_restore(host, [], [empty, *top], sl.Settings())
    # Generate says the same in its own words
    with pytest.raises(sl.PluginError, match=r"no mask: the area to regenerate is given by"):
        sl.plan_edit(host, [], top, sl.Settings())


def test_restore_request_sends_the_restore_tools_context(sl):
    from sketchfill_client.protocol import context_box

    w, h = 64, 48
    layers, top = restore_stack()
    host = Host(w, h, ellipse_selection(w, h, (30, 20, 4, 4)))
    plan = sl.plan_restore(host, [layers["photo"]], top, sl.Settings())
    settings = sl.Settings(seed=-1, feather=2.5)
    # the engine's context for restore (2048 px at least): the whole of this small canvas
    request = sl.restore_request(host, plan, RESTORE_HELLO, "E", settings)
    assert request.region == sl.Box(0, 0, w, h)
    assert host.reads[-2:] == [
        ("photo", request.region, "R'G'B'A u8"),
        ("selection", request.region, "Y u8"),
    ]
    assert (request.image_layout, request.mask_layout, request.reply_layout) == (
        "RGBA",
        "L",
        "RGBA",
    )
    assert request.seed is None and request.feather == 2.5
    assert len(request.mask) == w * h and request.mask[21 * w + 31] == 255
    # the photo at (-2, 3): canvas (0, 3) is its own pixel (2, 0); above it, nothing
    assert request.image[4 * 3 * w : 4 * 3 * w + 4] == bytes((8, 9, 10, 11))
    assert request.image[:4] == bytes(4)
    header = request.frames("id")[0]
    assert b'"op":"restore"' in header.replace(b" ", b"")
    # a smaller context (margin 2 around the mask's box, at least 16 px), not the edit one
    small = {"margin": 2.0, "min_side": 16}
    hello = {**RESTORE_HELLO, "tools": {"restore": {**RESTORE_TOOL, "context": small}}}
    request = sl.restore_request(host, plan, hello, "E", sl.Settings(seed=5))
    assert request.region == context_box(plan.bbox, w, h, 2.0, 16) == sl.Box(22, 12, 20, 20)
    assert request.seed == 5 and request.feather == 1.0  # auto, for a small mask: 1 px
    assert host.reads[-1] == ("selection", request.region, "Y u8")


def test_restore_request_reads_a_mask_layers_channel(sl):
    w, h = 64, 48
    layers, top = restore_stack()
    opaque = painted(16, 12, [(x, y) for x in range(16) for y in range(12)], (0, 0, 0, 255))
    i = 4 * (5 * 16 + 9)
    opaque = opaque[:i] + b"\xff\xff\xff\xff" + opaque[i + 4 :]
    mask = Layer("mask", x=10, y=20, w=16, h=12, rgba=opaque)  # white on black
    host = Host(w, h)
    plan = sl.plan_restore(host, [layers["photo"]], [mask, *top], sl.Settings())
    assert plan.mask_channel == 0 and plan.bbox == sl.Box(19, 25, 1, 1)
    request = sl.restore_request(host, plan, RESTORE_HELLO, "E", sl.Settings())
    assert host.reads[-1] == ("mask", request.region, "Y'A u8")
    assert request.mask[25 * w + 19] == 255 and sum(request.mask) == 255


def test_restore_refusals_say_what_to_do(sl):
    layers, top = restore_stack()
    host = Host(64, 48, ellipse_selection(64, 48, (30, 20, 4, 4)))
    plan = sl.plan_restore(host, [layers["photo"]], top, sl.Settings())
    settings = sl.Settings()
    with pytest.raises(sl.PluginError, match=r"no face restoration .* update SketchFill"):
        sl.restore_request(host, plan, HELLO, "E", settings)
    missing = {"tools": {"restore": {"model": None, "model_error": {"message": "not found"}}}}
    with pytest.raises(
        sl.PluginError,
        match=r"^SketchFill: the engine at E cannot restore faces: not found\. Install the "
        r"sketchfill-restore model",
    ):
        sl.restore_request(host, plan, missing, "E", settings)
    small = {**RESTORE_HELLO, "limits": {"max_pixels": 1000}}
    with pytest.raises(sl.PluginError, match=r"too large .* area around the mask is 64x48"):
        sl.restore_request(host, plan, small, "E", settings)
    assert host.reads == []  # nothing read for a refused request


def test_restore_engine_errors_and_progress(sl):
    from sketchfill_client.errors import EngineError

    no_face = EngineError("no_face", "no face found in the picture: the restore tool needs a face")
    text = sl.engine_message(no_face, "restore")
    assert text.startswith("SketchFill: no face found in the picture: the restore tool needs")
    assert "mark only what covers part of a face" in text
    empty = sl.engine_message(EngineError("empty_mask", "the mask selects nothing"), "restore")
    assert empty == (
        "SketchFill: the mask selects nothing (the mask is less than half on everywhere: "
        "select or paint what hides the face more firmly)."
    )
    # other tools keep their hints; other errors of restore the common ones
    assert "the area to regenerate" in sl.engine_message(EngineError("empty_mask", "x"))
    busy = sl.engine_message(EngineError("busy", "queue full"), "restore")
    assert busy == "SketchFill: queue full (try again in a moment)."
    assert sl.stage_text("face", None, "restore") == "SketchFill: finding the face"
    assert sl.stage_text("generate", None, "restore") == "SketchFill: generating"


def test_restore_results_stack_above_the_photo(sl):
    layers, top = restore_stack()
    assert sl.is_result(layers["SketchFill restore"])  # an older version's name
    # above the photo and above the earlier restore result
    assert sl.insert_position(layers["photo"], top) == 2
