"""The Generate... dialog: GimpUi's procedure dialog, with the layer roles as drop-downs of
the image's layer names (the arguments are names, so they carry over between images)."""

from __future__ import annotations

import gi

gi.require_version("GimpUi", "3.0")
gi.require_version("Gtk", "3.0")
from gi.repository import GimpUi, Gtk  # noqa: E402

ROLES = (
    ("image-layer", "_Image layer"),
    ("sketch-layer", "_Sketch layer"),
    ("color-layer", "_Color layer"),
    ("mask-layer", "_Mask layer"),
)


def run(procedure, config, names: list[str], image_default: str, note: str) -> bool:
    """Show the dialog for the image whose layers are `names`; True when OK was pressed
    (the choices are then in `config`, which GIMP remembers)."""
    GimpUi.init("sketchfill")
    dialog = GimpUi.ProcedureDialog.new(procedure, config, "SketchFill")
    grid = Gtk.Grid(row_spacing=6, column_spacing=12, margin_bottom=6)
    for row, (prop, label) in enumerate(ROLES):
        none = f"Selected layer ({image_default})" if prop == "image-layer" else "None"
        combo = _names_combo(config, prop, names, none)
        caption = Gtk.Label.new_with_mnemonic(label)
        caption.set_mnemonic_widget(combo)
        caption.set_xalign(0.0)
        grid.attach(caption, 0, row, 1, 1)
        grid.attach(combo, 1, row, 1, 1)
    content = dialog.get_content_area()
    content.pack_start(grid, False, False, 0)
    if note:
        content.pack_start(Gtk.Label(label=note, wrap=True, xalign=0.0), False, False, 0)
    content.show_all()
    dialog.fill(["mask-source", "seed", "feather", "endpoint"])
    ok = dialog.run()
    dialog.destroy()
    return bool(ok)


def _names_combo(config, prop: str, names: list[str], none: str) -> Gtk.Widget:
    current = config.get_property(prop) or ""
    if current and current not in names:
        # The remembered name may differ in case only (find_layer ignores case): show the
        # layer it stands for. A name this image lacks stays listed, so it is kept.
        match = next((n for n in names if n.casefold() == current.casefold()), None)
        if match is not None:
            config.set_property(prop, match)
    store = Gtk.ListStore(str, str)
    store.append(["", none])
    for name in names:
        store.append([name, name])
    current = config.get_property(prop) or ""
    if current and current not in names:
        store.append([current, f"{current} (not in this image)"])
    return GimpUi.prop_string_combo_box_new(config, prop, store, 0, 1)
