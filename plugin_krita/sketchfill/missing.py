"""Stand-ins registered when the plug-in cannot reach its engine code (pyzmq missing from
Krita's Python): the panel and every action say what is wrong instead of vanishing."""

from __future__ import annotations

from krita import DockWidget, Extension, Krita
from PyQt5.QtWidgets import QLabel, QMessageBox

from .ids import ACTIONS, MENU, TITLE
from .messages import missing_client


def missing_docker(error: str):
    class MissingDocker(DockWidget):
        def __init__(self):
            super().__init__()
            self.setWindowTitle(TITLE)
            label = QLabel(missing_client(error), self)
            label.setWordWrap(True)
            self.setWidget(label)

        def canvasChanged(self, canvas) -> None:
            pass

    return MissingDocker


class MissingExtension(Extension):
    def __init__(self, parent, error: str):
        super().__init__(parent)
        self.error = error

    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:
        for action_id, text in ACTIONS:
            window.createAction(action_id, text, MENU).triggered.connect(self.explain)

    def explain(self) -> None:
        window = Krita.instance().activeWindow()
        parent = window.qwindow() if window is not None else None
        QMessageBox.warning(parent, TITLE, missing_client(self.error))
