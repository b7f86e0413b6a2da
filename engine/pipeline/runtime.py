"""ONNX Runtime sessions for shipped models, checked against their model cards.

Models load from folders on disk only (never from a hub). A folder holds model.onnx and
model.json; the card's sha256 and tensor specs must match the file, or loading fails with
a `model_invalid` error that says what differs.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..wire import protocol
from .modelcard import CARD_FILE, ModelCard, ModelCardError, sha256_file

if TYPE_CHECKING:
    import onnxruntime as ort

DEFAULT_MODEL = "sketchfill-face"
# The repository's models/ (editable installs) and the user's data folder (installers).
_REPO_MODELS = Path(__file__).resolve().parents[2] / "models"


class ModelError(Exception):
    """A model that cannot be used; `code` is protocol.MODEL_MISSING or MODEL_INVALID."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class Cancelled(Exception):
    """The run was cancelled by the caller."""


def model_search_path() -> list[Path]:
    paths = [Path(p) for p in os.environ.get("SKETCHFILL_MODELS", "").split(os.pathsep) if p]
    return [*paths, _REPO_MODELS, user_data_dir() / "models"]


def user_data_dir() -> Path:
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / (
            "SketchFill"
        )
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "SketchFill"
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "sketchfill"


def resolve_model_dir(model: str | os.PathLike[str] | None = None) -> Path:
    """A model folder from a path (folder or its model.json) or a name on the search path."""
    model = model or DEFAULT_MODEL
    path = Path(model).expanduser()
    if path.name == CARD_FILE:
        path = path.parent
    if path.is_dir() or os.sep in str(model) or (os.altsep and os.altsep in str(model)):
        if not (path / CARD_FILE).is_file():
            raise ModelError(protocol.MODEL_MISSING, f"no {CARD_FILE} in model folder {path}")
        return path
    searched = model_search_path()
    for folder in searched:
        if (folder / str(model) / CARD_FILE).is_file():
            return folder / str(model)
    where = ", ".join(str(p) for p in searched)
    raise ModelError(
        protocol.MODEL_MISSING,
        f"no model named {model!r} is installed (looked in {where}); install one or pass "
        "--model with the folder that holds model.onnx and model.json",
    )


def available_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def session_options(threads: int | None = None) -> ort.SessionOptions:
    import onnxruntime as ort  # here, not at import: every CLI command imports this module

    opts = ort.SessionOptions()
    # Measured here (docs/ARCHITECTURE.md): ENABLE_ALL ~1.25x BASIC; each core adds nearly linearly.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or available_threads()
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    # Idle intra-op threads must not spin: the engine serves sporadic edits beside the
    # user's image editor and possibly a second worker. Measured here: same latency.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return opts


@dataclass
class Model:
    card: ModelCard
    folder: Path
    session: ort.InferenceSession

    @property
    def resolution(self) -> int:
        return self.card.resolution

    def run(self, feeds: dict[str, np.ndarray], cancel: CancelToken | None = None):
        import onnxruntime as ort

        run_options = ort.RunOptions()
        if cancel is not None:
            cancel.attach(run_options)
        try:
            return self.session.run(None, feeds, run_options)
        except Exception as exc:
            if cancel is not None and cancel.cancelled:
                raise Cancelled() from exc
            raise
        finally:
            if cancel is not None:
                cancel.detach(run_options)

    def describe(self) -> dict[str, object]:
        return {
            "name": self.card.name,
            "version": self.card.version,
            "sha256": self.card.sha256,
            "resolution": self.card.resolution,
            "task": self.card.task,
        }


class CancelToken:
    """Cancels a request from another thread, including an ONNX Runtime run in progress
    (RunOptions.terminate makes the running session return early)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._runs: list[ort.RunOptions] = []

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            for run in self._runs:
                run.terminate = True

    def check(self) -> None:
        if self._cancelled:
            raise Cancelled()

    def attach(self, run: ort.RunOptions) -> None:
        with self._lock:
            run.terminate = self._cancelled
            self._runs.append(run)

    def detach(self, run: ort.RunOptions) -> None:
        with self._lock:
            self._runs.remove(run)


def load_model(
    model: str | os.PathLike[str] | None = None,
    *,
    task: str = "edit",
    threads: int | None = None,
    warmup: int = 2,
) -> Model:
    """Load and verify a model folder; raises ModelError with a plain message."""
    folder = resolve_model_dir(model)
    try:
        card = ModelCard.load(folder)
    except ModelCardError as exc:
        raise ModelError(protocol.MODEL_INVALID, f"{folder}: {exc}") from None
    if card.task != task:
        raise ModelError(
            protocol.MODEL_INVALID, f"{folder} holds a {card.task!r} model, not {task!r}"
        )
    onnx_path = folder / card.onnx
    if not onnx_path.is_file():
        raise ModelError(protocol.MODEL_MISSING, f"model file {onnx_path} is missing")
    digest = sha256_file(onnx_path)
    if digest != card.sha256:
        raise ModelError(
            protocol.MODEL_INVALID,
            f"{onnx_path} does not match its card (sha256 {digest[:12]}..., card says "
            f"{card.sha256[:12]}...): the file is damaged or the card belongs to another model",
        )
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(
            str(onnx_path), session_options(threads), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # ORT raises several unrelated types for a bad file
        raise ModelError(
            protocol.MODEL_INVALID, f"ONNX Runtime cannot load {onnx_path}: {exc}"
        ) from None
    _check_specs(card, session, onnx_path)
    loaded = Model(card, folder, session)
    for _ in range(warmup):  # the first runs cost 1.5-3x (docs/ARCHITECTURE.md); pay that at start
        loaded.run({s.name: np.zeros(s.shape, np.float32) for s in card.inputs})
    return loaded


def load_generator(model: str | os.PathLike[str] | None = None, **kw) -> Model:
    """The sketch-and-colour edit generator (task "edit")."""
    return load_model(model, task="edit", **kw)


def _check_specs(card: ModelCard, session: ort.InferenceSession, path: Path) -> None:
    actual = {
        "input": {i.name: list(i.shape) for i in session.get_inputs()},
        "output": {o.name: list(o.shape) for o in session.get_outputs()},
    }
    declared = {
        "input": {t.name: t.shape for t in card.inputs},
        "output": {t.name: t.shape for t in card.outputs},
    }
    for kind in ("input", "output"):
        if actual[kind] != declared[kind]:
            raise ModelError(
                protocol.MODEL_INVALID,
                f"{path} has {kind}s {actual[kind]} but its card declares {declared[kind]}",
            )
