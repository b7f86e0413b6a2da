"""The controller: runs edits without ever blocking Krita's GUI thread.

For every request it connects to the engine afresh (starting one when the config allows)
on a worker thread, so an engine that stopped since the last edit is found or restarted,
and changes to client.json count at once. It then submits edits, polls the ZeroMQ socket
from a QTimer on the Qt event loop, cancels, runs N variations one after another, adds
each result as a new layer and keeps a short history. Four tools go through it alike: the
edit (Generate), auto tone, composite face and restore face. The docker, the actions and
the tests all drive the same Controller.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from PyQt5.QtCore import QObject, QTimer, pyqtSignal

from . import document, messages
from .document import AUTO, NONE, ROLES, Choice, DocumentError, FaceLayers, Patch, Roles
from .history import Entry, History
from .sketchfill_client import protocol
from .sketchfill_client import roles as shared
from .sketchfill_client.client import Client
from .sketchfill_client.config import ClientConfig
from .sketchfill_client.errors import EngineError
from .sketchfill_client.launch import connect, prestart
from .sketchfill_client.protocol import Box
from .sketchfill_client.requests import EditResult, Event, Request, edit_region

POLL_MS = 25
CANCEL_GRACE_S = 5.0  # how long a cancelled edit may take to be acknowledged
SEED_LIMIT = 2**31  # seeds fit Qt's spin boxes and every engine


@dataclass
class Options:
    """What the docker sets and the actions use: role picks, seed, variations, feather
    and strength."""

    roles: dict[str, Choice] = field(default_factory=lambda: dict.fromkeys(ROLES, AUTO))
    seed: int | None = None  # a fixed seed, or None for random ones
    variations: int = 1
    feather: float | None = None  # None: scaled with the mask and the photo
    strength: float = 1.0  # the new layers' opacity, 0-1


@dataclass
class _Job:
    doc: object
    above: object  # the layer each result goes right above: the image layer, the face layer
    seeds: list[int | None]  # one per variation for edits, one for restore; else [None]
    tool: str = protocol.OP_EDIT  # the engine op
    roles: Roles | None = None  # edit, tone and restore
    bbox: Box | None = None  # edit and restore: the mask's
    guides: list = field(default_factory=list)  # the result goes on top of these
    face: FaceLayers | None = None  # composite
    request: Request | None = None
    request_id: str | None = None
    done: int = 0
    last_heard: float = 0.0
    cancelling_since: float | None = None
    added: list[str] = field(default_factory=list)


class _Connector:
    """connect() on a worker thread: it may wait seconds for a hello, or up to the
    start timeout for an engine it launches. The client it makes is used on the GUI thread
    only after the worker has ended (ZeroMQ allows handing a socket over that way)."""

    def __init__(self, config: ClientConfig):
        self.status = ""
        self.result: tuple[Client, dict] | None = None
        self.error: EngineError | None = None
        self._thread = threading.Thread(
            target=self._run, args=(config,), name="sketchfill-connect", daemon=True
        )
        self._thread.start()

    def _run(self, config: ClientConfig) -> None:
        try:
            self.result = connect(config, on_status=self._on_status)
        except EngineError as exc:
            self.error = exc
        except Exception as exc:  # anything else must still reach the user, not the log
            self.error = EngineError(protocol.INTERNAL, f"connecting failed: {exc!r}")

    def _on_status(self, text: str) -> None:
        self.status = text

    def done(self) -> bool:
        return not self._thread.is_alive()


class Controller(QObject):
    stateChanged = pyqtSignal(str)  # "idle", "connecting", "running", "cancelling"
    progressed = pyqtSignal(float, str)  # overall fraction of the request, what is going on
    notice = pyqtSignal(str, bool)  # a sentence for the user; True when it is an error
    historyChanged = pyqtSignal()
    finished = pyqtSignal(str)  # "done", "cancelled" or "error"

    def __init__(self, plugin_dir: str | Path, parent: QObject | None = None):
        super().__init__(parent)
        self.plugin_dir = Path(plugin_dir)
        self.options = Options()
        self.history = History()
        self.state = "idle"
        self.last_notice = ""
        self._client: Client | None = None
        self._hello: dict = {}
        self._connector: _Connector | None = None
        self._job: _Job | None = None
        self._prestarted = False
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._tick)

    @property
    def busy(self) -> bool:
        return self._job is not None

    def prestart(self) -> None:
        """Start the engine in the background when the panel opens (if client.json allows
        it and none runs), so the first Generate finds it loaded: once per Krita process,
        on a worker thread (a port probe, then a detached process), never waiting."""
        if self._prestarted:
            return
        self._prestarted = True

        def run() -> None:
            try:
                started = prestart(ClientConfig.for_plugin(self.plugin_dir))
            except EngineError:
                return  # the first Generate says what is wrong, with what to do
            if started:
                self.notice.emit(messages.PRESTARTED, False)

        threading.Thread(target=run, name="sketchfill-prestart", daemon=True).start()

    # -- commands --------------------------------------------------------------------

    def generate(self, doc, *, count: int | None = None, random_seed: bool = False) -> bool:
        """Edit doc with the current options: options.variations results (or `count`),
        each a new layer. Returns whether it started; if not, a notice says why."""
        seeds = self._seeds(count or max(1, self.options.variations), random_seed)

        def job() -> _Job:
            roles = document.resolve_roles(doc, self.options.roles, need_guides=True)
            bbox = document.mask_bbox(doc, roles)
            guides = [n for n in (roles.mask, roles.sketch, roles.color) if n is not None]
            return _Job(doc, roles.image, seeds, roles=roles, bbox=bbox, guides=guides)

        return self._start(doc, job)

    def tone(self, doc) -> bool:
        """Auto tone of the image layer (within the selection, if any) as a new layer."""

        def job() -> _Job:
            roles = document.resolve_roles(doc, self.options.roles, need_mask=False)
            # On top of the guide layers too: they would hide the toned photo.
            guides = [n for n in (roles.mask, roles.sketch, roles.color) if n is not None]
            return _Job(doc, roles.image, [None], protocol.OP_TONE, roles=roles, guides=guides)

        return self._start(doc, job)

    def composite(self, doc, face=None) -> bool:
        """Composite face: the face layer (`face`, else the active layer) put onto the photo
        right below it, colour, light and edges matched (within the selection, if any), as
        a new layer above the face layer. `face` is for callers without a view (kritarunner
        has no active layer)."""

        def job() -> _Job:
            layers = document.face_layers(doc, doc.activeNode() if face is None else face)
            return _Job(doc, layers.face, [None], protocol.OP_COMPOSITE, face=layers)

        return self._start(doc, job)

    def restore(self, doc) -> bool:
        """Restore face: what the mask (the selection, else the mask layer, as for Generate)
        hides on the face in the image layer, as one new layer above it. Sketch and colour
        play no part; the seed is the panel's (fixed, or a new random one)."""
        seeds = self._seeds(1, False)

        def job() -> _Job:
            choices = {**self.options.roles, "sketch": NONE, "color": NONE}
            roles = document.resolve_roles(doc, choices, nothing=messages.NOTHING_TO_RESTORE)
            bbox = document.mask_bbox(doc, roles)
            guides = [roles.mask] if roles.mask is not None else []
            return _Job(
                doc, roles.image, seeds, protocol.OP_RESTORE, roles=roles, bbox=bbox, guides=guides
            )

        return self._start(doc, job)

    def _start(self, doc, make_job) -> bool:
        if self.busy:
            self._say(messages.BUSY, error=True)
            return False
        if doc is None:
            self._finish("error", messages.NO_DOCUMENT)
            return False
        try:
            self._job = make_job()
        except DocumentError as exc:
            self._finish("error", str(exc))
            return False
        except RuntimeError:  # the document's Krita side is gone
            self._finish("error", messages.NO_DOCUMENT)
            return False
        self._set_state("connecting")
        self.progressed.emit(0.0, messages.CONNECTING)
        # A connect left running by a cancelled request is as fresh as a new one: use it.
        if self._connector is None and not self._start_connect():
            return False
        self._timer.start()
        return True

    def cancel(self) -> None:
        job = self._job
        if job is None:
            return
        if job.request_id is None:  # still connecting: the worker may finish on its own
            self._finish_cancelled()
            return
        if job.cancelling_since is not None:
            return
        job.cancelling_since = time.monotonic()
        self._set_state("cancelling")
        self.progressed.emit(job.done / len(job.seeds), "Cancelling...")
        try:
            self._client.cancel(job.request_id)
        except EngineError:
            self._finish_cancelled()

    def put_back(self, doc, index: int = 0):
        """Add a history entry to doc again as a new layer above its image layer."""
        if doc is None:
            self._say(messages.NO_DOCUMENT, error=True)
            return None
        if not 0 <= index < len(self.history):
            self._say(messages.NO_HISTORY, error=True)
            return None
        try:
            roles = document.resolve_roles(doc, self.options.roles, need_mask=False)
            guides = [n for n in (roles.mask, roles.sketch, roles.color) if n is not None]
            patch = self.history[index].patch
            node = document.add_result_layer(doc, roles.image, patch, guides, self.options.strength)
        except DocumentError as exc:
            self._say(str(exc), error=True)
            return None
        self._say(messages.added([node.name()], bool(guides)))
        return node

    def create_layers(self, doc, photo=None):
        """Create SketchFill layers: transparent 'sketch', 'color' and 'mask' above the
        photo (`photo`, else the image role's layer), those not there yet, with the hints a
        first run needs. Returns the names made."""
        if doc is None:
            self._say(messages.NO_DOCUMENT, error=True)
            return []
        try:
            if photo is None:
                choices = {**self.options.roles, "sketch": NONE, "color": NONE}
                photo = document.resolve_roles(doc, choices, need_mask=False).image
            made, kept = document.create_guide_layers(doc, photo)
        except DocumentError as exc:
            self._say(str(exc), error=True)
            return []
        self._say(shared.created_guides(made, kept, photo.name()))
        return made

    def before_after(self, doc) -> bool | None:
        """Hide the newest result (before), or show it again (after). Returns whether it
        shows now; None when there is no result."""
        if doc is None:
            self._say(messages.NO_DOCUMENT, error=True)
            return None
        node = document.newest_result(doc)
        if node is None:
            self._say(shared.NO_RESULT_TO_TOGGLE, error=True)
            return None
        node.setVisible(not node.visible())
        doc.refreshProjection()
        self._say(shared.toggled(node.name(), node.visible()))
        return node.visible()

    def set_strength(self, strength: float, doc=None) -> None:
        """The Strength for new results; the newest result in `doc` follows at once, so
        the slider shows what it does."""
        self.options.strength = strength
        node = document.newest_result(doc) if doc is not None else None
        if node is not None:
            node.setOpacity(round(255 * strength))
            doc.refreshProjection()

    # -- the request's life ----------------------------------------------------------

    def _seeds(self, count: int, random_seed: bool) -> list[int]:
        fixed = self.options.seed
        if fixed is None or random_seed:
            return [random.randrange(SEED_LIMIT) for _ in range(count)]
        return [(fixed + i) % SEED_LIMIT for i in range(count)]

    def _start_connect(self) -> bool:
        try:
            config = ClientConfig.for_plugin(self.plugin_dir)
        except EngineError as exc:
            self._finish("error", messages.explain(exc.code, exc.message))
            return False
        self._connector = _Connector(config)
        return True

    def _submit_next(self) -> None:
        job = self._job
        assert job is not None and self._client is not None
        seed = job.seeds[job.done]
        try:
            if job.request is None:  # read once; every variation sends the same pixels
                job.request = self._request(job, seed)
            if job.tool in (protocol.OP_EDIT, protocol.OP_RESTORE):
                job.request.seed = seed
            job.request_id = self._client.submit(job.request)
        except DocumentError as exc:
            self._finish("error", str(exc))
            return
        except EngineError as exc:
            self._finish("error", messages.explain(exc.code, exc.message, job.tool))
            return
        except RuntimeError:  # Krita deleted the document under us
            self._finish("error", messages.DOCUMENT_CLOSED)
            return
        job.last_heard = time.monotonic()
        self._set_state("running")
        self._timer.start()

    def _request(self, job: _Job, seed: int | None) -> Request:
        """The job's request, its pixels read from the document now (after the hello, which
        says which rectangle around the mask or face the engine reads)."""
        doc = job.doc
        if job.tool == protocol.OP_TONE:
            self._check_tool(protocol.OP_TONE, messages.NO_TONE_TOOL)
            region = document.tone_region(doc, job.roles)
            self._check_size(region, messages.tone_too_large)
            return document.build_tone_request(doc, job.roles, region)
        if job.tool == protocol.OP_COMPOSITE:
            self._check_tool(protocol.OP_COMPOSITE, messages.NO_COMPOSITE_TOOL)
            # The composite network's own context around the face (the hello says which).
            region = edit_region(
                job.face.bbox, doc.width(), doc.height(), self._hello, tool=protocol.OP_COMPOSITE
            )
            # Checked before reading: a face as large as a 50 MP photo would be read in vain.
            self._check_size(region, messages.composite_too_large)
            return document.build_composite_request(doc, job.face, region)
        if job.tool == protocol.OP_RESTORE:
            self._check_tool(protocol.OP_RESTORE, messages.NO_RESTORE_TOOL)
            # Wide: the engine must find the whole face in what it is sent.
            region = edit_region(
                job.bbox, doc.width(), doc.height(), self._hello, tool=protocol.OP_RESTORE
            )
            self._check_size(region, messages.restore_too_large)
            return document.build_restore_request(doc, job.roles, region, seed, self._feather(job))
        region = edit_region(job.bbox, doc.width(), doc.height(), self._hello)
        return document.build_request(doc, job.roles, region, seed, self._feather(job))

    def _feather(self, job: _Job) -> float:
        """The panel's feather, or the automatic one that scales with the mask and the
        photo (wide feathers let the erased content show through)."""
        if self.options.feather is not None:
            return self.options.feather
        box = job.bbox
        return shared.auto_feather(box.width, box.height, job.doc.width(), job.doc.height())

    def _check_tool(self, op: str, missing: str) -> None:
        """The engine serves `op` with its model loaded; else a sentence on what to do (an
        older engine lacks the newer tools)."""
        tool = (self._hello.get("tools") or {}).get(op)
        if tool is None:
            raise DocumentError(missing)
        if tool.get("model") is None:
            why = (tool.get("model_error") or {}).get("message", f"no {op} model")
            raise DocumentError(messages.explain(protocol.MODEL_MISSING, why))

    def _check_size(self, region: Box, too_large) -> None:
        limit = (self._hello.get("limits") or {}).get("max_pixels")
        if limit and region.width * region.height > limit:
            raise DocumentError(too_large(region.width, region.height, limit))

    def _tick(self) -> None:
        try:
            self._step()
        except Exception as exc:  # a bug ends the request with a message, not every 25 ms
            self._finish("error", messages.bug(exc))

    def _step(self) -> None:
        if self._connector is not None:
            self._tick_connect()
        job = self._job
        if job is None or job.request_id is None:
            if self._connector is None:
                self._timer.stop()
            return
        events = self._client.poll(0)
        now = time.monotonic()
        for event in events:
            if self._job is not job or event.id != job.request_id:
                continue  # late replies to a request that already ended
            job.last_heard = now
            self._handle(job, event)
        if self._job is not job:
            return
        if job.cancelling_since is not None and now - job.cancelling_since > CANCEL_GRACE_S:
            self._finish_cancelled()  # the engine never acknowledged
        elif now - job.last_heard > self._client.reply_timeout:
            text = (
                f"the engine at {self._client.endpoint} sent nothing for "
                f"{self._client.reply_timeout:.0f} s; it may be overloaded or stuck (see its log)"
            )
            self._finish("error", messages.explain(protocol.TIMEOUT, text))

    def _tick_connect(self) -> None:
        connector = self._connector
        job = self._job
        if job is not None and connector.status:
            self.progressed.emit(0.0, connector.status)
        if not connector.done():
            return
        self._connector = None
        waiting = job is not None and job.request_id is None
        if connector.error is not None:
            if waiting:
                exc = connector.error
                self._finish("error", messages.explain(exc.code, exc.message))
            return
        if not waiting:  # its request was cancelled meanwhile
            connector.result[0].close()
            return
        self._client, self._hello = connector.result
        self._submit_next()

    def _handle(self, job: _Job, event: Event) -> None:
        header = event.header
        if event.kind == protocol.OP_PROGRESS:
            if header.get("heartbeat") or job.cancelling_since is not None:
                return
            fraction = (job.done + float(header.get("fraction", 0.0))) / len(job.seeds)
            self.progressed.emit(fraction, self._stage_text(job, header))
        elif event.kind == protocol.OP_RESULT:
            if job.cancelling_since is not None:  # it finished before the cancel arrived
                self._finish_cancelled()
                return
            self._add(job, event.result)
        elif event.kind == protocol.OP_ERROR:
            exc = event.error
            if exc.code == protocol.CANCELLED or job.cancelling_since is not None:
                self._finish_cancelled()
                return
            self._finish("error", messages.explain(exc.code, exc.message, job.tool))

    @staticmethod
    def _stage_text(job: _Job, header: dict) -> str:
        n = len(job.seeds)
        which = f" {job.done + 1}/{n}" if n > 1 else ""
        stage = header.get("stage", "")
        if stage == "queued":
            return f"Queued{which} (position {header.get('queue_position', '?')})"
        word = shared.stage_words(stage, job.tool)
        if job.tool != protocol.OP_EDIT:
            return f"{messages.TOOL_TITLES[job.tool]}: {word}"
        if n > 1:
            return f"Variation{which}: {word}..."
        return f"{word[0].upper()}{word[1:]}..."

    def _add(self, job: _Job, result: EditResult) -> None:
        if result.layout != "BGRA":
            self._finish("error", f"The engine replied in {result.layout}, not BGRA: a bug.")
            return
        seed = result.seed if job.tool in (protocol.OP_EDIT, protocol.OP_RESTORE) else None
        patch = Patch(result.x, result.y, result.width, result.height, result.data, seed, job.tool)
        try:
            node = document.add_result_layer(
                job.doc, job.above, patch, job.guides, self.options.strength
            )
            name = document_title(job.doc)
        except RuntimeError:
            self._finish("error", messages.DOCUMENT_CLOSED)
            return
        job.added.append(node.name())
        self.history.add(Entry(patch, name))
        self.historyChanged.emit()
        job.done += 1
        job.request_id = None
        if job.done < len(job.seeds):
            self._submit_next()
        else:
            self.progressed.emit(1.0, "Done")
            self._finish("done", messages.added(job.added, bool(job.guides)))

    # -- state -----------------------------------------------------------------------

    def _close_client(self) -> None:
        """Each request has its own connection: late replies to it die with the socket."""
        if self._client is not None:
            self._client.close()
        self._client = None
        self._hello = {}

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.stateChanged.emit(state)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.last_notice = text
        self.notice.emit(text, error)

    def _finish_cancelled(self) -> None:
        """Results of earlier variations stay: they are layers (and undo steps) already."""
        self._finish("cancelled", messages.cancelled(self._job.added if self._job else []))

    def _finish(self, outcome: str, text: str) -> None:
        self._job = None
        self._close_client()
        if self._connector is None:
            self._timer.stop()
        self._set_state("idle")
        if outcome != "done":
            self.progressed.emit(0.0, "")
        self._say(text, error=outcome == "error")
        self.finished.emit(outcome)


def document_title(doc) -> str:
    """What the history calls a document: its title, else its file's name (a document
    opened from a .ora file has an empty title), else "untitled"."""
    return doc.name() or os.path.basename(doc.fileName() or "") or "untitled"


_CONTROLLER: Controller | None = None


def controller() -> Controller:
    """The one Controller of this Krita process, shared by every window's docker and the
    actions, so a key press and the panel's button run the same edit."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = Controller(Path(__file__).resolve().parent)
    return _CONTROLLER
