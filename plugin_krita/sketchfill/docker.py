"""The SketchFill panel: role pickers, seed, variations, Generate, Auto tone, Composite
face, Restore face, progress, Cancel and the history. Wiring only: every command goes to the shared
Controller (job.py)."""

from __future__ import annotations

from krita import DockWidget, Krita
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from . import document
from .document import AUTO, NONE, SELECTION, Choice
from .ids import TITLE
from .job import SEED_LIMIT, controller

MAX_VARIATIONS = 16

# (role, label, fixed entries offered before the document's layers)
_ROLE_ROWS = (
    ("image", "Image", ((AUTO, "Auto: layer 'image', 'photo' or 'face', else the lowest"),)),
    ("sketch", "Sketch", ((AUTO, "Auto: layer 'sketch'"), (NONE, "None"))),
    ("color", "Colour", ((AUTO, "Auto: layer 'color'"), (NONE, "None"))),
    ("mask", "Mask", ((AUTO, "Auto: the selection, else layer 'mask'"), (SELECTION, "Selection"))),
)


class RoleCombo(QComboBox):
    """Picks the layer for one role; lists the document's layers afresh when opened."""

    def __init__(self, fixed, list_layers, parent=None):
        super().__init__(parent)
        self._fixed = fixed
        self._list_layers = list_layers
        self.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        self.refresh()

    def choice(self) -> Choice:
        return self.currentData() or AUTO

    def refresh(self) -> None:
        """Rebuild the list, keeping the pick while its layer still exists."""
        keep = self.choice() if self.count() else AUTO
        self.blockSignals(True)
        self.clear()
        for choice, label in self._fixed:
            self.addItem(label, choice)
        for node in self._list_layers():
            self.addItem(node.name(), Choice("layer", document.node_id(node)))
        index = next((i for i in range(self.count()) if self.itemData(i) == keep), 0)
        self.setCurrentIndex(index)
        self.blockSignals(False)
        if self.itemData(index) != keep:
            self.currentIndexChanged.emit(index)

    def showPopup(self) -> None:
        self.refresh()
        super().showPopup()


class SketchFillDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle(TITLE)
        self.controller = controller()
        # Where Generate looks for the document; tests without a window point it elsewhere.
        self.document_source = lambda: Krita.instance().activeDocument()

        root = QWidget(self)
        outer = QVBoxLayout(root)
        form = QFormLayout()
        self.roles: dict[str, RoleCombo] = {}
        for role, label, fixed in _ROLE_ROWS:
            combo = RoleCombo(fixed, self._layers, root)
            combo.currentIndexChanged.connect(self._push_options)
            self.roles[role] = combo
            form.addRow(label, combo)

        seed_row = QHBoxLayout()
        self.fixed_seed = QCheckBox("Fixed", root)
        self.fixed_seed.setToolTip("Unticked: a new random seed for every result")
        self.seed = QSpinBox(root)
        self.seed.setRange(0, SEED_LIMIT - 1)
        self.seed.setEnabled(False)
        self.fixed_seed.toggled.connect(self.seed.setEnabled)
        self.fixed_seed.toggled.connect(self._push_options)
        self.seed.valueChanged.connect(self._push_options)
        seed_row.addWidget(self.fixed_seed)
        seed_row.addWidget(self.seed, 1)
        form.addRow("Seed", seed_row)

        self.variations = QSpinBox(root)
        self.variations.setRange(1, MAX_VARIATIONS)
        self.variations.setToolTip("How many results, each with its own seed and layer")
        self.variations.valueChanged.connect(self._push_options)
        form.addRow("Variations", self.variations)
        outer.addLayout(form)

        self.generate_button = QPushButton("Generate", root)
        self.generate_button.setMinimumHeight(56)  # a large target for a pen
        font = self.generate_button.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.4)
        self.generate_button.setFont(font)
        self.generate_button.clicked.connect(self.generate)
        outer.addWidget(self.generate_button)
        self.tone_button = QPushButton("Auto tone", root)
        self.tone_button.setToolTip(
            "Correct exposure, contrast and colour of the image layer (within the selection, "
            "if any) as a new layer; lower its opacity for a lighter touch"
        )
        self.tone_button.clicked.connect(self.tone)
        outer.addWidget(self.tone_button)
        self.composite_button = QPushButton("Composite face", root)
        self.composite_button.setToolTip(
            "Select a face pasted on its own layer (transparent around it) over the photo: "
            "puts it onto the layer right below, matching colour, light and edges (within "
            "the selection, if any), as a new layer"
        )
        self.composite_button.clicked.connect(self.composite)
        outer.addWidget(self.composite_button)
        self.restore_button = QPushButton("Restore face", root)
        self.restore_button.setToolTip(
            "Select what hides the face (a hand, glasses, a strand of hair, text), or paint "
            "over it on the mask layer: the face under it is restored on the image layer, as "
            "a new layer"
        )
        self.restore_button.clicked.connect(self.restore)
        outer.addWidget(self.restore_button)

        busy_row = QHBoxLayout()
        self.progress = QProgressBar(root)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel", root)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.controller.cancel)
        busy_row.addWidget(self.progress, 1)
        busy_row.addWidget(self.cancel_button)
        outer.addLayout(busy_row)

        self.status = QLabel("", root)
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        outer.addWidget(self.status)

        outer.addWidget(QLabel("Recent results", root))
        self.history = QListWidget(root)
        self.history.setMaximumHeight(140)
        self.history.itemDoubleClicked.connect(self.put_back)
        outer.addWidget(self.history)
        self.put_back_button = QPushButton("Put back as a new layer", root)
        self.put_back_button.clicked.connect(self.put_back)
        outer.addWidget(self.put_back_button)
        outer.addStretch(1)
        self.setWidget(root)

        c = self.controller
        c.stateChanged.connect(self._on_state)
        c.progressed.connect(self._on_progress)
        c.notice.connect(self._on_notice)
        c.historyChanged.connect(self._show_history)
        self._show_history()
        self._on_state(c.state)

    # -- commands --------------------------------------------------------------------

    def generate(self) -> None:
        self._push_options()
        self.controller.generate(self.document_source())

    def tone(self) -> None:
        self._push_options()
        self.controller.tone(self.document_source())

    def composite(self) -> None:
        # No panel options apply: the active layer is the face, the one below the photo.
        self.controller.composite(self.document_source())

    def restore(self) -> None:
        self._push_options()  # the image and mask roles, the seed
        self.controller.restore(self.document_source())

    def put_back(self) -> None:
        self.controller.put_back(self.document_source(), max(0, self.history.currentRow()))

    # -- wiring ----------------------------------------------------------------------

    def _layers(self) -> list:
        doc = self.document_source()
        return document.layers(doc) if doc is not None else []

    def _push_options(self) -> None:
        options = self.controller.options
        options.roles = {role: combo.choice() for role, combo in self.roles.items()}
        options.seed = self.seed.value() if self.fixed_seed.isChecked() else None
        options.variations = self.variations.value()

    def _on_state(self, state: str) -> None:
        idle = state == "idle"
        self.generate_button.setEnabled(idle)
        self.tone_button.setEnabled(idle)
        self.composite_button.setEnabled(idle)
        self.restore_button.setEnabled(idle)
        self.cancel_button.setEnabled(state in ("connecting", "running"))

    def _on_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(round(fraction * 1000))
        if text:
            self.status.setStyleSheet("")
            self.status.setText(text)

    def _on_notice(self, text: str, error: bool) -> None:
        self.status.setStyleSheet("color: #d04040;" if error else "")
        self.status.setText(text)

    def _show_history(self) -> None:
        self.history.clear()
        for entry in self.controller.history.entries:
            self.history.addItem(entry.label())
        self.put_back_button.setEnabled(len(self.controller.history) > 0)

    def canvasChanged(self, canvas) -> None:
        for combo in self.roles.values():
            combo.refresh()
