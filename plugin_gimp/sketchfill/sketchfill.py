#!/usr/bin/env python3
"""SketchFill for GIMP 3: Filters > SketchFill > Generate..., Generate again, Create
SketchFill layers, Before/after, Auto tone, Composite face, Restore face.

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
from sketchfill_settings import AUTO_FEATHER, MAX_FEATHER, MAX_SEED, Settings  # noqa: E402

try:  # needs pyzmq: without it the menu stays and every run says what is missing
    from sketchfill_client import roles
    from sketchfill_client.config import ClientConfig
    from sketchfill_client.errors import EngineError
    from sketchfill_client.launch import connect, prestart
    from sketchfill_client.protocol import Box
    from sketchfill_host import GimpHost
    from sketchfill_layers import (
        TOGGLE_WHERE,
        PluginError,
        build_request,
        composite_request,
        engine_message,
        guide_layers,
        image_layer,
        insert_position,
        newest_result,
        plan_composite,
        plan_edit,
        plan_guides,
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
PRESTART = "plug-in-sketchfill-prestart"  # run by GIMP at every start (an init procedure)
GUIDES = "plug-in-sketchfill-create-layers"
BEFORE_AFTER = "plug-in-sketchfill-before-after"
# Menu paths: GIMP sorts a menu's plug-in items by path and label; the bracketed section
# names sort first, in the order given here, so Generate... comes first and Generate again
# second whatever the labels (see README, "GIMP menu").
MENU = "<Image>/Filters/SketchFill"
MENU_ORDER = (GENERATE, AGAIN, GUIDES, BEFORE_AFTER, TONE, COMPOSITE, RESTORE)
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
        "_Feather (-1: auto)",
        "Blend the new pixels into the photo over this many pixels; -1 scales it with the "
        "mask and the photo (a wide feather lets the old content show through)",
        AUTO_FEATHER,
        MAX_FEATHER,
        d.feather,
        RW,
    )
    proc.add_double_argument(
        "strength",
        "S_trength (%)",
        "Opacity of the new layer: lower it to let some of the photo through",
        0.0,
        100.0,
        d.strength,
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
    name = roles.result_name("edit", result.seed)
    return _add_layer(host, name, result, plan.image, top, plan.guides(), settings.strength)


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
    # On top of the guide layers too: they would hide the toned photo.
    guides = guide_layers(top, settings)
    return _add_layer(host, roles.result_name("tone"), result, plan.image, top, guides)


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
    return _add_layer(host, roles.result_name("composite"), result, plan.face, top)


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
    name = roles.result_name("restore", result.seed)
    return _add_layer(host, name, result, plan.image, top, plan.guides(), settings.strength)


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


def _add_layer(host, name: str, result, below, top, guides=(), opacity=100.0) -> str:
    """The engine's patch as a new layer above `below`, the guides it was made with and
    the results already on it, so it is what the canvas shows. Returns what to tell."""
    box = Box(result.x, result.y, result.width, result.height)
    position = insert_position(below, top, guides)
    layer = host.add_result(name, box, result.data, below.get_parent(), position, opacity)
    # Selected, the new layer is what GIMP's status bar names; Generate again still finds
    # the photo (a selected result stands for the plain layer below it).
    host.image.set_selected_layers([layer])
    Gimp.progress_update(1.0)
    return f"SketchFill: {roles.added_above([name], TOGGLE_WHERE, bool(guides))}"


def create_layers(image, drawables, settings: Settings) -> str:
    """Transparent 'sketch', 'color' and 'mask' layers above the photo (those not there
    yet), the mask one selected: what a first run needs, with the brush hints to say."""
    host = GimpHost(image)
    top = image.get_layers()
    plan = plan_guides(drawables, top)
    if plan.make:
        parent = plan.photo.get_parent()
        siblings = list(parent.get_children() if parent is not None else top)
        position = [lay.get_id() for lay in siblings].index(plan.photo.get_id())
        added = host.add_empty_layers(plan.make, parent, position)
        # Painting the mask comes first: select its layer.
        first = next((lay for lay in added if lay.get_name() == "mask"), added[0])
        image.set_selected_layers([first])
    return f"SketchFill: {roles.created_guides(plan.make, plan.kept, plan.photo.get_name())}"


def before_after(image, drawables, settings: Settings) -> str:
    """Hide the newest result to see the photo before, show it again to see after."""
    layer = newest_result(image.get_layers())
    if layer is None:
        raise PluginError(f"SketchFill: {roles.NO_RESULT_TO_TOGGLE}")
    visible = GimpHost(image).toggle_visible(layer)
    return f"SketchFill: {roles.toggled(layer.get_name(), visible)}"


def _finish(procedure, action, image, drawables, settings: Settings, run_mode=None):
    try:
        text = action(image, drawables, settings)
    except PluginError as exc:
        return _fail(procedure, str(exc))
    except Exception as exc:  # a bug: say so plainly, keep the details for a report
        traceback.print_exc()
        return _fail(procedure, f"SketchFill failed unexpectedly ({exc!r}); see GIMP's console.")
    Gimp.displays_flush()
    if run_mode is not None and run_mode != Gimp.RunMode.NONINTERACTIVE:
        # The status bar shows it as the run ends (GIMP 3 gives plug-ins no lasting status
        # text; Gimp.message would open a dialog to click away after every run).
        Gimp.progress_init(text)
        Gimp.progress_update(1.0)
    return _succeed(procedure, text)


def _succeed(procedure, text: str):
    """Success, with the sentence for the status line as the "message" return value
    (scripts and the tests read it)."""
    values = procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())
    values.remove(1)
    values.insert(1, GObject.Value(GObject.TYPE_STRING, text))
    return values


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
    return _finish(procedure, generate, image, drawables, settings, run_mode)


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
        return _succeed(procedure, result.index(1))
    text = Gimp.get_pdb().get_last_error() or "SketchFill: Generate failed."
    return procedure.new_return_values(status, GLib.Error(text))


def prestart_engine() -> None:
    """GIMP is starting: start the engine (detached, no wait) so that it is loaded by the
    first Generate. Quiet: a problem shows when Generate runs, with what to do."""
    if CANNOT_LOAD:
        return
    try:
        prestart(ClientConfig.for_plugin(HERE))
    except EngineError as exc:
        print(f"SketchFill: the engine was not started with GIMP: {exc.message}")


def run_prestart(procedure, config, data):
    """The same, when a script calls plug-in-sketchfill-prestart."""
    prestart_engine()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _runner(action):
    """The run function of a procedure without a dialog: its arguments, then `action`."""

    def run(procedure, run_mode, image, drawables, config, data):
        if CANNOT_LOAD:
            return _fail(procedure, CANNOT_LOAD)
        return _finish(procedure, action, image, drawables, settings_of(config), run_mode)

    return run


RUNS = {
    GENERATE: run_generate,
    AGAIN: run_again,
    GUIDES: _runner(create_layers),
    BEFORE_AFTER: _runner(before_after),
    TONE: _runner(auto_tone),
    COMPOSITE: _runner(composite_face),
    RESTORE: _runner(restore_face),
}


class SketchFill(Gimp.PlugIn):
    def do_query_procedures(self):
        return list(RUNS)

    def do_init_procedures(self):
        # GIMP asks for its "init procedures" at every start (it registers them afresh),
        # so this is where the plug-in runs when GIMP starts: the engine then loads while
        # the user opens and prepares a photo, and the first Generate finds it up.
        prestart_engine()
        return [PRESTART]

    def do_set_i18n(self, name):
        return False

    def do_create_procedure(self, name):
        if name == PRESTART:
            proc = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_prestart, None)
            proc.set_attribution("SketchFill", "SketchFill", "2026")
            proc.set_documentation(
                "Start the SketchFill engine in the background",
                "Run by GIMP when it starts: starts the local SketchFill engine without waiting "
                "for it, when client.json allows it (autostart and start_with_host) and none "
                "runs yet.",
                name,
            )
            return proc
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
                "'SF <seed> fill' on top of the image layer and its guides, where it is "
                "seen. A sketch or color layer that is not in the image stops the run with "
                "a message (set it to None to go on without). Your layers are not changed.",
                name,
            )
            _add_generate_arguments(proc)
        elif name == TONE:
            proc.set_menu_label("Auto _tone")
            proc.set_documentation(
                "Correct exposure, contrast and colour balance of the photo",
                "Measures the photo layer's tones and adds a corrected copy as a new layer "
                "'SF tone' above it (only the selected part, softly, when there is a "
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
                "the face blended into the photo as a new layer 'SF composite' above "
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
                "'SF <seed> restore' on top of the image layer and the mask layer. Your "
                "layers are not changed.",
                name,
            )
            _add_image_layer_argument(proc)
            _add_mask_arguments(proc, "what hides the face", "over what hides the face")
            _add_endpoint_argument(proc)
        elif name == GUIDES:
            proc.set_menu_label("_Create SketchFill layers")
            proc.set_documentation(
                "Add the mask, sketch and color layers SketchFill reads, above the photo",
                "Adds transparent layers 'sketch', 'color' and 'mask' above the selected "
                "photo layer (those the image does not have yet) and selects 'mask': paint "
                "the area to regenerate in white on it, the new shape with a thin dark "
                "brush on 'sketch', colour dabs on 'color', then Generate.",
                name,
            )
        elif name == BEFORE_AFTER:
            proc.set_menu_label("_Before/after")
            proc.set_documentation(
                "Hide or show the newest SketchFill result, to compare",
                "Hides the topmost SketchFill result layer to show the photo as it was, or "
                "shows it again. Filters > Repeat (Ctrl+F) runs it again; bind a key to it "
                "in Edit > Keyboard Shortcuts.",
                name,
            )
        else:
            proc.set_menu_label("Generate _again")
            proc.set_documentation(
                "SketchFill with the last settings and a new seed",
                "Runs SketchFill Generate with the settings of its last dialog and a new seed, "
                "without showing the dialog.",
                name,
            )
        proc.add_menu_path(f"{MENU}/[{MENU_ORDER.index(name) + 1}]")
        proc.add_string_return_value(
            "message", "Message", "What was done, as the status line says it", "", RW
        )
        return proc


if __name__ == "__main__":
    Gimp.main(SketchFill.__gtype__, sys.argv)
