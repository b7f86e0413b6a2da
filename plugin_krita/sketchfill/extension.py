"""Krita actions for every SketchFill command, so keys and pen buttons can be bound to them
(Settings > Configure Krita > Keyboard Shortcuts, section Scripts)."""

from __future__ import annotations

from krita import Extension, Krita
from PyQt5.QtGui import QIcon

from .ids import ACTIONS, DOCKER_ID, MENU
from .job import controller


def _active_document():
    return Krita.instance().activeDocument()


def generate() -> None:
    controller().generate(_active_document())


def variation() -> None:
    """One more result from the same layers, with a new random seed."""
    controller().generate(_active_document(), count=1, random_seed=True)


def before_after() -> None:
    """Hide the newest result to see the photo before; again to show it."""
    controller().before_after(_active_document())


def create_layers() -> None:
    controller().create_layers(_active_document())


def tone() -> None:
    controller().tone(_active_document())


def composite() -> None:
    """The active layer (a pasted face) onto the layer right below it (the photo)."""
    controller().composite(_active_document())


def restore() -> None:
    """What the mask hides on the face in the image layer, restored as a new layer."""
    controller().restore(_active_document())


def cancel() -> None:
    controller().cancel()


def put_back() -> None:
    controller().put_back(_active_document())


def toggle_docker() -> None:
    for dock in Krita.instance().dockers():  # the active window's
        if dock.objectName() == DOCKER_ID:
            dock.setVisible(not dock.isVisible())
            if dock.isVisible():
                dock.raise_()


COMMANDS = {
    "sketchfill_generate": generate,
    "sketchfill_variation": variation,
    "sketchfill_before_after": before_after,
    "sketchfill_create_layers": create_layers,
    "sketchfill_tone": tone,
    "sketchfill_composite": composite,
    "sketchfill_restore": restore,
    "sketchfill_cancel": cancel,
    "sketchfill_put_back": put_back,
    "sketchfill_toggle_docker": toggle_docker,
}


def show_on_canvas(text: str, error: bool) -> None:
    """Also show notices over the canvas: with the panel hidden, a pen user who pressed a
    bound button still learns what happened."""
    window = Krita.instance().activeWindow()
    view = window.activeView() if window is not None else None
    if view is not None and hasattr(view, "showFloatingMessage"):
        view.showFloatingMessage(text, QIcon(), 6000 if error else 3000, 1)


class SketchFillExtension(Extension):
    def setup(self) -> None:
        controller().notice.connect(show_on_canvas)

    def createActions(self, window) -> None:
        for action_id, text in ACTIONS:
            action = window.createAction(action_id, text, MENU)
            action.triggered.connect(COMMANDS[action_id])
