"""The SketchFill panel: Generate, Before/after, Create layers, Strength; the role pickers,
seed, variations and feather in a section that folds away once set; Auto tone, Composite
face, Restore face; progress, Cancel and the history (folded too). Compact, so Krita's
Layers docker beside it keeps its rows. Wiring only: every command goes to the shared
Controller (job.py)."""

from __future__ import annotations

from krita import DockWidget, Krita
from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from . import document
from .document import AUTO, NONE, ROLE_NAMES, SELECTION, Choice
from .ids import TITLE
from .job import SEED_LIMIT, controller

MAX_VARIATIONS = 16
MAX_FEATHER = 64.0  # the engine's limit


def _names(role: str) -> str:
    return ", ".join(f"'{n}'" for n in ROLE_NAMES[role])


# (role, label, fixed entries offered before the document's layers). The entries are short
# so the drop-downs stay narrow; their tooltips say what Auto looks for.
_ROLE_ROWS = (
    ("image", "Image", ((AUTO, "Auto"),)),
    ("sketch", "Sketch", ((AUTO, "Auto"), (NONE, "None"))),
    ("color", "Colour", ((AUTO, "Auto"), (NONE, "None"))),
    ("mask", "Mask", ((AUTO, "Auto"), (SELECTION, "Selection"))),
)
_ROLE_TIPS = {
    "image": f"Auto: a layer named {_names('image')}, else the lowest paint layer",
    "sketch": f"Auto: a layer named {_names('sketch')}; None: generate without strokes",
    "color": f"Auto: a layer named {_names('color')}; None: generate without colours",
    "mask": "Auto: the selection, else a layer named 'mask'",
}


class RoleCombo(QComboBox):
    """Picks the layer for one role; lists the document's layers afresh when opened."""

    def __init__(self, fixed, list_layers, parent=None):
        super().__init__(parent)
        self._fixed = fixed
        self._list_layers = list_layers
        self.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(8)
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
        # The list may be wider than the narrow box: long layer names stay readable.
        view = self.view()
        view.setMinimumWidth(view.sizeHintForColumn(0) + 24)
        super().showPopup()


def _button(parent: QWidget, text: str, tip: str, slot) -> QPushButton:
    button = QPushButton(text, parent)
    button.setToolTip(tip)
    button.clicked.connect(slot)
    return button


class Fold(QWidget):
    """A header button that shows or hides its body, with a one-line summary beside it
    while folded."""

    def __init__(self, title: str, body: QWidget, folded: bool, parent=None):
        super().__init__(parent)
        self.body = body
        self.button = QToolButton(self)
        self.button.setText(title)
        self.button.setCheckable(True)
        self.button.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.button.setAutoRaise(True)
        self.summary = QLabel("", self)
        self.summary.setStyleSheet("color: palette(mid);")
        # A long summary must not widen the panel: it is cut, its tooltip has it all.
        self.summary.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(self.button)
        header.addWidget(self.summary, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(body)
        self.button.toggled.connect(self._show)
        self.button.setChecked(not folded)
        self._show(not folded)

    @property
    def folded(self) -> bool:
        return not self.button.isChecked()

    def set_folded(self, folded: bool) -> None:
        self.button.setChecked(not folded)

    def _show(self, shown: bool) -> None:
        self.button.setArrowType(Qt.DownArrow if shown else Qt.RightArrow)
        self.body.setVisible(shown)
        self.summary.setVisible(not shown)


class SketchFillDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle(TITLE)
        self.controller = controller()
        # Where Generate looks for the document; tests without a window point it elsewhere.
        self.document_source = lambda: Krita.instance().activeDocument()

        root = QWidget(self)
        outer = QVBoxLayout(root)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.setSpacing(4)

        self.generate_button = QPushButton("Generate", root)
        self.generate_button.setMinimumHeight(40)  # a large target for a pen
        font = self.generate_button.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.25)
        self.generate_button.setFont(font)
        self.generate_button.clicked.connect(self.generate)
        outer.addWidget(self.generate_button)

        quick = QHBoxLayout()
        self.before_after_button = _button(
            root,
            "Before/after",
            "Hide the newest SketchFill result to see the photo as it was; press again to "
            "show it (action SketchFill: Before/After, bind a key to it)",
            self.before_after,
        )
        self.create_button = _button(
            root,
            "Create layers",
            "Create SketchFill layers: transparent 'sketch', 'color' and 'mask' above the "
            "image layer. Paint the area to regenerate in white on 'mask', the new shape "
            "with a thin dark brush on 'sketch', colour dabs on 'color'.",
            self.create_layers,
        )
        quick.addWidget(self.before_after_button)
        quick.addWidget(self.create_button)
        outer.addLayout(quick)

        strength_row = QHBoxLayout()
        strength_row.addWidget(QLabel("Strength", root))
        self.strength = QSlider(Qt.Horizontal, root)
        self.strength.setRange(0, 100)
        self.strength.setValue(100)
        self.strength.setToolTip("Opacity of new results; the newest result follows as you drag")
        self.strength_value = QLabel("100 %", root)
        self.strength.valueChanged.connect(self._on_strength)
        strength_row.addWidget(self.strength, 1)
        strength_row.addWidget(self.strength_value)
        outer.addLayout(strength_row)

        options = QWidget(root)
        form = QFormLayout(options)
        form.setContentsMargins(0, 0, 0, 0)
        form.setVerticalSpacing(2)
        self.roles: dict[str, RoleCombo] = {}
        for role, label, fixed in _ROLE_ROWS:
            combo = RoleCombo(fixed, self._layers, options)
            combo.setToolTip(_ROLE_TIPS[role])
            combo.currentIndexChanged.connect(self._push_options)
            self.roles[role] = combo
            form.addRow(label, combo)

        seed_row = QHBoxLayout()
        self.fixed_seed = QCheckBox("Fixed", options)
        self.fixed_seed.setToolTip("Unticked: a new random seed for every result")
        self.seed = QSpinBox(options)
        self.seed.setRange(0, SEED_LIMIT - 1)
        self.seed.setEnabled(False)
        self.fixed_seed.toggled.connect(self.seed.setEnabled)
        self.fixed_seed.toggled.connect(self._push_options)
        self.seed.valueChanged.connect(self._push_options)
        seed_row.addWidget(self.fixed_seed)
        seed_row.addWidget(self.seed, 1)
        form.addRow("Seed", seed_row)

        self.variations = QSpinBox(options)
        self.variations.setRange(1, MAX_VARIATIONS)
        self.variations.setToolTip("How many results, each with its own seed and layer")
        self.variations.valueChanged.connect(self._push_options)
        form.addRow("Variations", self.variations)

        self.feather = QDoubleSpinBox(options)
        self.feather.setRange(-1.0, MAX_FEATHER)
        self.feather.setDecimals(0)
        self.feather.setSuffix(" px")
        self.feather.setSpecialValueText("Auto")  # -1: scaled with the mask and the photo
        self.feather.setValue(-1.0)
        self.feather.setToolTip(
            "Blend the new pixels into the photo over this many pixels; Auto scales it with "
            "the mask and the photo (a wide feather lets the erased content show through)"
        )
        self.feather.valueChanged.connect(self._push_options)
        form.addRow("Feather", self.feather)
        # Folded from the start: Auto finds the layers by name; the summary says which.
        self.options_fold = Fold("Layers", options, folded=True, parent=root)
        outer.addWidget(self.options_fold)

        tools = QGridLayout()
        tools.setSpacing(2)
        self.tone_button = _button(
            root,
            "Auto tone",
            "Correct exposure, contrast and colour of the image layer (within the selection, "
            "if any) as a new layer; lower its opacity for a lighter touch",
            self.tone,
        )
        self.composite_button = _button(
            root,
            "Composite face",
            "Select a face pasted on its own layer (transparent around it) over the photo: "
            "puts it onto the layer right below, matching colour, light and edges (within "
            "the selection, if any), as a new layer",
            self.composite,
        )
        self.restore_button = _button(
            root,
            "Restore face",
            "Select what hides the face (a hand, glasses, a strand of hair, text), or paint "
            "over it on the mask layer: the face under it is restored on the image layer, as "
            "a new layer",
            self.restore,
        )
        tools.addWidget(self.tone_button, 0, 0)
        tools.addWidget(self.composite_button, 0, 1)
        tools.addWidget(self.restore_button, 1, 0, 1, 2)
        outer.addLayout(tools)

        busy_row = QHBoxLayout()
        self.progress = QProgressBar(root)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(12)
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

        recent = QWidget(root)
        recent_layout = QVBoxLayout(recent)
        recent_layout.setContentsMargins(0, 0, 0, 0)
        self.history = QListWidget(recent)
        self.history.setMaximumHeight(84)
        self.history.itemDoubleClicked.connect(self.put_back)
        recent_layout.addWidget(self.history)
        self.put_back_button = QPushButton("Put back as a new layer", recent)
        self.put_back_button.clicked.connect(self.put_back)
        recent_layout.addWidget(self.put_back_button)
        self.history_fold = Fold("Recent results", recent, folded=True, parent=root)
        outer.addWidget(self.history_fold)
        outer.addStretch(1)
        self.setWidget(root)

        c = self.controller
        c.stateChanged.connect(self._on_state)
        c.progressed.connect(self._on_progress)
        c.notice.connect(self._on_notice)
        c.historyChanged.connect(self._show_history)
        self._show_history()
        self._on_state(c.state)
        self._summarise()
        c.prestart()  # the engine loads while the user paints

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

    def before_after(self) -> None:
        self.controller.before_after(self.document_source())

    def create_layers(self) -> None:
        self._push_options()  # the image role: the layers go above it
        made = self.controller.create_layers(self.document_source())
        if made:
            for combo in self.roles.values():
                combo.refresh()
            self._summarise()

    # -- wiring ----------------------------------------------------------------------

    def _layers(self) -> list:
        doc = self.document_source()
        return document.layers(doc) if doc is not None else []

    def _push_options(self) -> None:
        options = self.controller.options
        options.roles = {role: combo.choice() for role, combo in self.roles.items()}
        options.seed = self.seed.value() if self.fixed_seed.isChecked() else None
        options.variations = self.variations.value()
        feather = self.feather.value()
        options.feather = None if feather < 0 else feather
        options.strength = self.strength.value() / 100
        self._summarise()

    def _on_strength(self, value: int) -> None:
        self.strength_value.setText(f"{value} %")
        self.controller.set_strength(value / 100, self.document_source())

    def _summarise(self) -> None:
        """The folded section's one line: which layer each role reads now."""
        if not hasattr(self, "options_fold"):  # still being built
            return
        doc = self.document_source()
        if doc is None:
            self.options_fold.summary.setText("")
            return
        parts = []
        try:
            picked = document.resolve_roles(doc, self.controller.options.roles, need_mask=False)
        except (document.DocumentError, RuntimeError):
            picked = None
        for role, label, _ in _ROLE_ROWS:
            node = getattr(picked, role, None) if picked is not None else None
            if node is not None:
                parts.append(f"{label.lower()} '{node.name()}'")
            elif role == "mask":
                parts.append("mask: selection")
            elif self.controller.options.roles.get(role, AUTO) == NONE:
                parts.append(f"{label.lower()}: none")
            else:
                parts.append(f"{label.lower()}: not found")
        self.options_fold.summary.setText(", ".join(parts))
        self.options_fold.summary.setToolTip(", ".join(parts))

    def _on_state(self, state: str) -> None:
        idle = state == "idle"
        self.create_button.setEnabled(idle)
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
        self._summarise()
