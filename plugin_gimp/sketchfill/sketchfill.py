#!/usr/bin/env python3
"""SketchFill for GIMP 3: Filters > SketchFill > Generate..., Generate again, Auto tone,
Composite face, Restore face.

GIMP glue only: procedure registration, the run functions, progress and messages. The
arguments are in sketchfill_settings, the decisions in sketchfill_layers, pixel access in
sketchfill_host, the dialog in sketchfill_dialog, and the engine connection in the shared
sketchfill_client.
"""

import dataclasses
import os
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, GLib, GObject  # noqa: E402
from sketchfill_settings import MAX_FEATHER, MAX_SEED, Settings  # noqa: E402

try:  # needs pyzmq: without it the menu stays and every run says what is missing
    from sketchfill_client.config import ClientConfig
    from sketchfill_client.errors import EngineError
    from sketchfill_client.launch import connect
    from sketchfill_client.protocol import Box
    from sketchfill_host import GimpHost
    from sketchfill_layers import (
        COMPOSITE_RESULT,
        RESTORE_RESULT,
        RESULT_PREFIX,
        TONE_RESULT,
        PluginError,
        build_request,
        composite_request,
        engine_message,
        image_layer,
        insert_position,
        plan_composite,
        plan_edit,
        plan_restore,
        plan_tone,
        region_for,
        restore_request,
        stage_text,
        tone_request,
        walk,
    )
except ImportError as exc:
    CANNOT_LOAD = str(exc) if str(exc).startswith("SketchFill") else f"SketchFill: {exc}"
else:
    CANNOT_LOAD = ""

GENERATE = "plug-in-sketchfill-generate"
AGAIN = "plug-in-sketchfill-generate-again"
TONE = "plug-in-sketchfill-tone"
COMPOSITE = "plug-in-sketchfill-composite"
RESTORE = "plug-in-sketchfill-restore"
HERE = os.path.dirname(os.path.abspath(__file__))
RW = GObject.ParamFlags.READWRITE
PRECISION_NOTE = (
    "This image is {precision}. SketchFill reads and returns 8-bit sRGB pixels; the new "
    "layer is converted to the image's precision. Your layers are not changed."
)


def _add_image_layer_argument(proc):
    proc.add_string_argument(
        "image-layer",
        "Image layer",
        "Name of the photo's layer; empty: the selected layer",
        Settings().image_layer,
        RW,
    )


def _add_endpoint_argument(proc):
    proc.add_string_argument(
        "endpoint",
        "E_ngine endpoint",
        "ZeroMQ endpoint of the engine; empty: from client.json",
        Settings().endpoint,
        RW,
    )


def _add_generate_arguments(proc):
    d = Settings()
    _add_image_layer_argument(proc)
    proc.add_string_argument(
        "sketch-layer",
        "Sketch layer",
        "Name of the layer with the strokes; empty: none",
        d.sketch_layer,
        RW,
    )
    proc.add_string_argument(
        "color-layer",
        "Color layer",
        "Name of the layer with the colour dabs; empty: none",
        d.color_layer,
        RW,
    )
    _add_mask_arguments(proc, "the area to regenerate", "where to regenerate")
    _add_endpoint_argument(proc)


def _add_mask_arguments(proc, what: str, where: str):
    """Where the mask comes from, seed and feather: Generate's, also Restore face's."""
    sources = Gimp.Choice.new()
    sources.add("auto", 0, "Selection, else the mask layer", "")
    sources.add("selection", 1, "Selection", "")
    sources.add("layer", 2, "Mask layer", "")
    d = Settings()
    proc.add_choice_argument(
        "mask-source",
        "Mask _from",
        f"Where {what} comes from",
        sources,
        d.mask_source,
        RW,
    )
    proc.add_string_argument(
        "mask-layer",
        "Mask layer",
        f"Name of the layer painted {where}",
        d.mask_layer,
        RW,
    )
    proc.add_int_argument(
        "seed",
        "S_eed (-1: random)",
        "Variation number; -1 draws a new one",
        -1,
        MAX_SEED,
        d.seed,
        RW,
    )
    proc.add_double_argument(
        "feather",
        "_Feather",
        "Blend the new pixels into the photo over this many pixels",
        0.0,
        MAX_FEATHER,
        d.feather,
        RW,
    )


def settings_of(config) -> Settings:
    """The procedure's arguments as Settings; those it does not take keep their defaults."""
    values = {}
    for field in dataclasses.fields(Settings):
        try:
            value = config.get_property(field.name.replace("_", "-"))
        except TypeError:  # this procedure has no such argument
            continue
        if isinstance(field.default, str):  # a string argument may be None: ""
            value = (value or "").strip() if field.name == "endpoint" else value or ""
        values[field.name] = value
    return Settings(**values)


class Progress:
    """GIMP's progress bar, fed by the client's progress events for operation `op`."""

    def __init__(self, text: str, op: str = ""):
        self.op = op
        Gimp.progress_init(text)

    def text(self, text: str) -> None:
        Gimp.progress_set_text(text)

    def engine(self, stage: str, fraction: float, queue_position) -> None:
        Gimp.progress_set_text(stage_text(stage, queue_position, self.op))
        Gimp.progress_update(fraction)


def _require_rgb(image) -> None:
    if image.get_base_type() != Gimp.ImageBaseType.RGB:
        mode = image.get_base_type().value_nick
        raise PluginError(
            f"SketchFill works on RGB images and this one is {mode}: use Image > Mode > RGB "
            "(on a copy if you want to keep this one as it is)."
        )


def generate(image, drawables, settings: Settings) -> Gimp.Layer:
    """One edit: read the layers, ask the engine, add its answer as a new layer."""
    _require_rgb(image)
    host = GimpHost(image)
    top = image.get_layers()
    plan = plan_edit(host, drawables, top, settings)
    progress = Progress("SketchFill: connecting to the engine")
    precision = image.get_precision()
    if precision != Gimp.Precision.U8_NON_LINEAR:
        progress.text(f"SketchFill: converting {precision.value_nick} pixels to 8-bit")

    def request(hello, endpoint):
        region = region_for(plan, hello, endpoint)
        return build_request(host, plan, region, settings)

    result = ask_engine(settings, progress, request, "SketchFill: sending the layers")
    return _add_layer(host, f"{RESULT_PREFIX}{result.seed}", result, plan.image, top)


def auto_tone(image, drawables, settings: Settings) -> Gimp.Layer:
    """Auto tone of the photo layer (within the selection, if any), as a new layer."""
    _require_rgb(image)
    host = GimpHost(image)
    top = image.get_layers()
    plan = plan_tone(host, drawables, top, settings)
    progress = Progress("SketchFill: connecting to the engine")

    def request(hello, endpoint):
        return tone_request(host, plan, hello, endpoint)

    result = ask_engine(settings, progress, request, "SketchFill: sending the photo")
    return _add_layer(host, TONE_RESULT, result, plan.image, top)


def composite_face(image, drawables, settings: Settings) -> Gimp.Layer:
    """The selected face layer put onto the photo right below it, its colour, light and
    edge matched to the photo, as a new layer above the face layer."""
    _require_rgb(image)
    host = GimpHost(image)
    top = image.get_layers()
    plan = plan_composite(host, drawables, top)
    progress = Progress("SketchFill: connecting to the engine", "composite")

    def request(hello, endpoint):
        return composite_request(host, plan, hello, endpoint)

    result = ask_engine(settings, progress, request, "SketchFill: sending the photo and the face")
    return _add_layer(host, COMPOSITE_RESULT, result, plan.face, top)


def restore_face(image, drawables, settings: Settings) -> Gimp.Layer:
    """What the mask (the selection, or the mask layer) hides on the face, restored, as a
    new layer above the photo layer."""
    _require_rgb(image)
    host = GimpHost(image)
    top = image.get_layers()
    plan = plan_restore(host, drawables, top, settings)
    progress = Progress("SketchFill: connecting to the engine", "restore")

    def request(hello, endpoint):
        return restore_request(host, plan, hello, endpoint, settings)

    result = ask_engine(settings, progress, request, "SketchFill: sending the photo and the mask")
    return _add_layer(host, RESTORE_RESULT, result, plan.image, top)


def ask_engine(settings: Settings, progress: Progress, make_request, sending: str):
    """Connect (or start the engine), build the request from its hello, wait for the result."""
    try:
        config = ClientConfig.for_plugin(HERE)
        if settings.endpoint:
            config.endpoint = settings.endpoint
        client, hello = connect(config, on_status=progress.text)
        with client:
            request = make_request(hello, config.endpoint)
            progress.text(sending)
            return client.edit(request, on_progress=progress.engine, timeout=config.reply_timeout)
    except EngineError as exc:
        raise PluginError(engine_message(exc, progress.op)) from None


def _add_layer(host, name: str, result, below, top) -> Gimp.Layer:
    """The engine's patch as a new layer above `below` (and the results already on it)."""
    box = Box(result.x, result.y, result.width, result.height)
    layer = host.add_result(name, box, result.data, below.get_parent(), insert_position(below, top))
    Gimp.progress_update(1.0)
    return layer


def _finish(procedure, action, image, drawables, settings: Settings):
    try:
        action(image, drawables, settings)
    except PluginError as exc:
        return _fail(procedure, str(exc))
    except Exception as exc:  # a bug: say so plainly, keep the details for a report
        traceback.print_exc()
        return _fail(procedure, f"SketchFill failed unexpectedly ({exc!r}); see GIMP's console.")
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _fail(procedure, text: str):
    # GIMP shows the text of a failing status itself (menu runs: "Execution error for
    # 'Generate...'", calls from scripts: "Calling error for procedure ..."), so it is not
    # also sent with Gimp.message, which would show every error twice.
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(text))


def _dialog(procedure, config, image, drawables) -> bool:
    """Generate...'s dialog, told the image's layers and what the defaults pick."""
    import sketchfill_dialog

    try:
        selected = dataclasses.replace(settings_of(config), image_layer="")
        default = image_layer(drawables, image.get_layers(), selected).get_name()
    except PluginError:
        default = "none"
    precision = image.get_precision()
    note = ""
    if precision != Gimp.Precision.U8_NON_LINEAR:
        note = PRECISION_NOTE.format(precision=precision.value_nick)
    names = [layer.get_name() for layer in walk(image.get_layers())]
    return sketchfill_dialog.run(procedure, config, names, default, note)


def run_generate(procedure, run_mode, image, drawables, config, data):
    if CANNOT_LOAD:
        return _fail(procedure, CANNOT_LOAD)
    if run_mode == Gimp.RunMode.INTERACTIVE and not _dialog(procedure, config, image, drawables):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    settings = settings_of(config)
    if run_mode == Gimp.RunMode.WITH_LAST_VALS:
        settings.seed = -1  # "again" (and Filters > Repeat) means a new variation
    return _finish(procedure, generate, image, drawables, settings)


def run_again(procedure, run_mode, image, drawables, config, data):
    """Generate with the last settings and a new seed: Generate, run with last values."""
    # Generate's error comes back to this run, which returns it for GIMP to show once.
    procedure.get_plug_in().set_pdb_error_handler(Gimp.PDBErrorHandler.PLUGIN)
    generate_proc = Gimp.get_pdb().lookup_procedure(GENERATE)
    call = generate_proc.create_config()
    call.set_property("run-mode", Gimp.RunMode.WITH_LAST_VALS)
    call.set_property("image", image)
    call.set_core_object_array("drawables", drawables)
    result = generate_proc.run(call)
    status = result.index(0)
    if status == Gimp.PDBStatusType.SUCCESS:
        return procedure.new_return_values(status, GLib.Error())
    text = Gimp.get_pdb().get_last_error() or "SketchFill: Generate failed."
    return procedure.new_return_values(status, GLib.Error(text))


def _runner(action):
    """The run function of a procedure without a dialog: its arguments, then `action`."""

    def run(procedure, run_mode, image, drawables, config, data):
        if CANNOT_LOAD:
            return _fail(procedure, CANNOT_LOAD)
        return _finish(procedure, action, image, drawables, settings_of(config))

    return run


RUNS = {
    GENERATE: run_generate,
    AGAIN: run_again,
    TONE: _runner(auto_tone),
    COMPOSITE: _runner(composite_face),
    RESTORE: _runner(restore_face),
}


class SketchFill(Gimp.PlugIn):
    def do_query_procedures(self):
        return list(RUNS)

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        run = RUNS[name]
        proc = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        proc.set_image_types("RGB*")
        if name == COMPOSITE:
            # The selected layer is the face: exactly one must be selected.
            proc.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        else:
            # The photo can be found by name or as the topmost layer: no selection needed.
            proc.set_sensitivity_mask(
                Gimp.ProcedureSensitivityMask.DRAWABLE
                | Gimp.ProcedureSensitivityMask.DRAWABLES
                | Gimp.ProcedureSensitivityMask.NO_DRAWABLES
            )
        proc.set_attribution("SketchFill", "SketchFill", "2026")
        if name == GENERATE:
            proc.set_menu_label("_Generate...")
            proc.set_documentation(
                "Regenerate a masked area following a sketch and colour dabs",
                "Fills the selection (or the layer named 'mask') with a new face region that "
                "follows the strokes on the 'sketch' layer and the colours on the 'color' "
                "layer, computed by the local SketchFill engine, and adds it as a new layer "
                "'SketchFill seed N' above the image layer. Your layers are not changed.",
                name,
            )
            _add_generate_arguments(proc)
        elif name == TONE:
            proc.set_menu_label("Auto _tone")
            proc.set_documentation(
                "Correct exposure, contrast and colour balance of the photo",
                "Measures the photo layer's tones and adds a corrected copy as a new layer "
                "'SketchFill tone' above it (only the selected part, softly, when there is a "
                "selection), computed by the local SketchFill engine. Lower the new layer's "
                "opacity for a lighter touch. Your layers are not changed.",
                name,
            )
            _add_image_layer_argument(proc)
            _add_endpoint_argument(proc)
        elif name == COMPOSITE:
            proc.set_menu_label("_Composite face")
            proc.set_documentation(
                "Put a face layer onto the photo below it, colour, light and edge matched",
                "The selected layer is the face (pasted and positioned over the photo, "
                "transparent around the face); the layer right below it is the photo. Adds "
                "the face blended into the photo as a new layer 'SketchFill composite' above "
                "the face layer (only inside the selection, when there is one), computed by "
                "the local SketchFill engine. Your layers are not changed.",
                name,
            )
            _add_endpoint_argument(proc)
        elif name == RESTORE:
            proc.set_menu_label("_Restore face")
            proc.set_documentation(
                "Restore what hides part of a face (a hand, glasses, hair, text)",
                "Fills the selection (or the layer named 'mask'), drawn over what hides part "
                "of a face, with the face as it would look there, computed by the local "
                "SketchFill engine from the face around it, and adds it as a new layer "
                "'SketchFill restore' above the image layer. Your layers are not changed.",
                name,
            )
            _add_image_layer_argument(proc)
            _add_mask_arguments(proc, "what hides the face", "over what hides the face")
            _add_endpoint_argument(proc)
        else:
            proc.set_menu_label("Generate _again")
            proc.set_documentation(
                "SketchFill with the last settings and a new seed",
                "Runs SketchFill Generate with the settings of its last dialog and a new seed, "
                "without showing the dialog.",
                name,
            )
        proc.add_menu_path("<Image>/Filters/SketchFill")
        return proc


if __name__ == "__main__":
    Gimp.main(SketchFill.__gtype__, sys.argv)
