"""The thin client shared by the GIMP and Krita plug-ins and the CLI.

Standard library and pyzmq only: it runs inside the hosts' own Python. The installer copies
this file and protocol.py, side by side, into a `sketchfill_client` package next to each
plug-in. It connects to an engine, sends edits, streams their progress, cancels them,
notices an engine that went away, and can start a local engine when none answers.

Two ways to use it: `Client.edit()` blocks until the result (scripts, GIMP), while
`Client.submit()` + `Client.poll()` never block, for a GUI event loop (Krita's docker).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import zmq

from . import protocol
from .protocol import Box, Buffer, context_box

ProgressCallback = Callable[[str, float, "int | None"], None]


class EngineError(Exception):
    """What went wrong, as a stable `code` (protocol error codes, plus `unreachable` and
    `timeout` from this side) and a sentence a user can act on."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# -- configuration -------------------------------------------------------------------------


def config_dir() -> Path:
    if os.name == "nt":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "SketchFill"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "SketchFill"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "sketchfill"


@dataclass
class ClientConfig:
    """What the installer writes for the plug-ins (client.json); every field has a default."""

    endpoint: str = protocol.DEFAULT_ENDPOINT
    autostart: bool = True
    # The engine's command line, without "serve"; the installer points it at its venv.
    engine_command: list[str] = field(default_factory=lambda: ["sketchfill"])
    connect_timeout: float = 2.0
    start_timeout: float = 120.0
    # Longest silence allowed while an edit is queued or running. A live engine sends a
    # heartbeat every few seconds for each edit, so only a dead or cut-off one is this quiet.
    reply_timeout: float = 30.0
    # Studio mode (CURVE): the engine's public key file and this client's secret key file,
    # both made by `sketchfill keys`. Leave empty for a local engine.
    server_public_key: str = ""
    client_secret_key: str = ""

    def client(self) -> Client:
        curve = None
        if self.server_public_key or self.client_secret_key:
            curve = CurveKeys.from_files(self.server_public_key, self.client_secret_key)
        return Client(self.endpoint, curve=curve, reply_timeout=self.reply_timeout)

    @staticmethod
    def path() -> Path:
        override = os.environ.get("SKETCHFILL_CLIENT_CONFIG")
        return Path(override) if override else config_dir() / "client.json"

    @classmethod
    def for_plugin(cls, plugin_dir: str | os.PathLike[str]) -> ClientConfig:
        """The config a plug-in runs with: $SKETCHFILL_CLIENT_CONFIG, else the client.json
        the installer put in the plug-in's folder (sandboxed hosts such as Flatpak see no
        ~/.config), else the user's config, else defaults."""
        if os.environ.get("SKETCHFILL_CLIENT_CONFIG"):
            return cls.load()
        beside = Path(plugin_dir) / "client.json"
        return cls.load(beside if beside.is_file() else None)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> ClientConfig:
        path = Path(path) if path else cls.path()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as exc:
            raise EngineError(
                protocol.BAD_REQUEST, f"cannot read the SketchFill config {path}: {exc}"
            ) from None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        path = Path(path) if path else self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path


@dataclass(frozen=True)
class CurveKeys:
    """Keys for an engine that requires CURVE: its public key and this client's pair."""

    server_public: bytes
    client_public: bytes
    client_secret: bytes

    @classmethod
    def from_files(cls, server_public_file: str, client_secret_file: str) -> CurveKeys:
        import zmq.auth

        try:
            server_public, _ = zmq.auth.load_certificate(os.path.expanduser(server_public_file))
            public, secret = zmq.auth.load_certificate(os.path.expanduser(client_secret_file))
        except (OSError, ValueError) as exc:
            raise EngineError(protocol.BAD_REQUEST, f"cannot read the CURVE keys: {exc}") from None
        if not secret:
            raise EngineError(
                protocol.BAD_REQUEST,
                f"{client_secret_file} is a public key file; the client needs its secret one",
            )
        return cls(server_public, public, secret)


# -- requests and results ------------------------------------------------------------------


@dataclass
class EditRequest:
    """Pixels of one rectangle (`region`) of a `canvas_width` x `canvas_height` canvas.

    Each layer is raw bytes in the named layout (protocol.LAYOUTS), `region` sized. Only
    image and mask are required; see engine/layers.py for how each layout is read.
    """

    canvas_width: int
    canvas_height: int
    region: Box
    image: Any
    mask: Any
    image_layout: str = "RGBA"
    mask_layout: str = "L"
    sketch: Any = None
    sketch_layout: str = "L"
    color: Any = None
    color_layout: str = "RGBA"
    seed: int | None = None
    feather: float = 0.0
    reply_layout: str = "RGBA"

    def frames(self, request_id: str) -> list[Any]:
        layers = [
            ("image", self.image_layout, self.image),
            ("mask", self.mask_layout, self.mask),
            ("sketch", self.sketch_layout, self.sketch),
            ("color", self.color_layout, self.color),
        ]
        fields = {"seed": self.seed, "feather": self.feather}
        return _encode(protocol.OP_EDIT, request_id, self, layers, fields)


@dataclass
class ToneRequest:
    """Auto tone of the photo in `region` (normally the whole canvas: the curves are
    measured on what is sent); with a mask (the selection, 0-255) only there, softly."""

    canvas_width: int
    canvas_height: int
    region: Box
    image: Any
    image_layout: str = "RGBA"
    mask: Any = None
    mask_layout: str = "L"
    reply_layout: str = "RGBA"

    def frames(self, request_id: str) -> list[Any]:
        layers = [("image", self.image_layout, self.image), ("mask", self.mask_layout, self.mask)]
        return _encode(protocol.OP_TONE, request_id, self, layers, {})


@dataclass
class CompositeRequest:
    """The face layer (`face`, its alpha says where) put onto the photo, harmonised; with a
    mask (the selection, 0-255) only there. Send the region `edit_region(..., tool=
    "composite")` gives for the face's bounding box: the network reads context around it."""

    canvas_width: int
    canvas_height: int
    region: Box
    image: Any
    face: Any
    image_layout: str = "RGBA"
    face_layout: str = "RGBA"
    mask: Any = None
    mask_layout: str = "L"
    reply_layout: str = "RGBA"

    def frames(self, request_id: str) -> list[Any]:
        layers = [
            ("image", self.image_layout, self.image),
            ("face", self.face_layout, self.face),
            ("mask", self.mask_layout, self.mask),
        ]
        return _encode(protocol.OP_COMPOSITE, request_id, self, layers, {})


@dataclass
class RestoreRequest:
    """Restore what the mask (>= 128: the occluder) hides on the face in `image`. Send the
    region `edit_region(..., tool="restore")` gives for the mask's bounding box: the engine
    finds the face in what is sent."""

    canvas_width: int
    canvas_height: int
    region: Box
    image: Any
    mask: Any
    image_layout: str = "RGBA"
    mask_layout: str = "L"
    seed: int | None = None
    feather: float = 0.0
    reply_layout: str = "RGBA"

    def frames(self, request_id: str) -> list[Any]:
        layers = [("image", self.image_layout, self.image), ("mask", self.mask_layout, self.mask)]
        fields = {"seed": self.seed, "feather": self.feather}
        return _encode(protocol.OP_RESTORE, request_id, self, layers, fields)


Request = EditRequest | ToneRequest | CompositeRequest | RestoreRequest


def _encode(
    op: str, request_id: str, request: Request, layers: list[tuple], fields: dict[str, Any]
) -> list[Any]:
    """A request's frames: the header and the layers that are present, each region-sized."""
    r = request.region
    buffers = [
        Buffer(name, r.width, r.height, layout, data)
        for name, layout, data in layers
        if data is not None
    ]
    header = {
        "op": op,
        "id": request_id,
        "canvas": {"width": request.canvas_width, "height": request.canvas_height},
        "region": r.to_json(),
        **fields,
        "reply_layout": request.reply_layout,
    }
    return protocol.encode(header, buffers)


@dataclass
class EditResult:
    """The patch to put on the canvas at (x, y): raw bytes in `layout`."""

    x: int
    y: int
    width: int
    height: int
    layout: str
    data: bytes
    seed: int
    header: dict[str, Any]


@dataclass
class Event:
    """One message for a request: kind is "progress", "result", "error" or "cancel" (the
    engine's acknowledgement of a cancel)."""

    kind: str
    id: str
    header: dict[str, Any]
    result: EditResult | None = None

    @property
    def error(self) -> EngineError | None:
        if self.kind != protocol.OP_ERROR:
            return None
        return EngineError(self.header.get("code", protocol.INTERNAL), self.header["message"])


def edit_region(
    bbox: Box, canvas_width: int, canvas_height: int, hello: dict[str, Any], tool: str = "edit"
) -> Box:
    """The rectangle of the canvas the engine will read for a mask with bounding box
    `bbox` when `tool` runs: send just these pixels, whatever the canvas size."""
    ctx = (hello.get("tools") or {}).get(tool, {}).get("context") or hello.get("context") or {}
    margin = float(ctx.get("margin", 0.5))
    min_side = int(ctx.get("min_side", 0))
    return context_box(bbox, canvas_width, canvas_height, margin, min_side)


# -- the connection ------------------------------------------------------------------------


class Client:
    """A DEALER connection to one engine endpoint. Not thread-safe: use it from one thread."""

    def __init__(
        self,
        endpoint: str = protocol.DEFAULT_ENDPOINT,
        *,
        curve: CurveKeys | None = None,
        reply_timeout: float = 30.0,
        context=None,
    ):
        self.endpoint = endpoint
        self.curve = curve
        self.reply_timeout = reply_timeout
        self._ctx = context or zmq.Context.instance()
        self._refused: str | None = None
        self._sock: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._pending: set[str] = set()
        self._inbox: list[Event] = []
        self._connect()

    def _connect(self) -> None:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 2000)
        if self.curve is not None:
            sock.curve_serverkey = self.curve.server_public
            sock.curve_publickey = self.curve.client_public
            sock.curve_secretkey = self.curve.client_secret
        # Handshake failures mean refused keys only when there are keys: without CURVE
        # they are transient (e.g. TCP connecting to itself on a free local port).
        events = zmq.EVENT_DISCONNECTED | (_HANDSHAKE_FAILED if self.curve else 0)
        self._monitor = sock.get_monitor_socket(events)
        self._refused = None
        sock.connect(self.endpoint)
        self._sock = sock

    def reset(self) -> None:
        """Drop the connection and everything queued on it, then connect afresh."""
        self._close_sockets()
        self._pending.clear()
        self._inbox.clear()
        self._connect()

    def close(self) -> None:
        self._close_sockets()
        self._pending.clear()

    def _close_sockets(self) -> None:
        if self._sock is not None:
            self._sock.disable_monitor()
            self._sock.close(linger=0)
            self._sock = None
        if self._monitor is not None:
            self._monitor.close(linger=0)
            self._monitor = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def socket(self) -> zmq.Socket:
        if self._sock is None:
            raise EngineError(protocol.UNREACHABLE, "the client is closed")
        return self._sock

    @property
    def pending(self) -> frozenset[str]:
        return frozenset(self._pending)

    # -- requests --------------------------------------------------------------------

    def hello(self, timeout: float = 2.0) -> dict[str, Any]:
        rid = _new_id()
        self.socket.send_multipart(protocol.encode({"op": protocol.OP_HELLO, "id": rid}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if self._refused:
                raise EngineError(protocol.UNAUTHORIZED, self._refused)
            if remaining <= 0:
                raise EngineError(
                    protocol.UNREACHABLE,
                    f"no SketchFill engine answers at {self.endpoint}; start one with "
                    "`sketchfill serve` (or enable auto-start in the plug-in settings)",
                )
            for event in self._take(rid, remaining):
                if event.kind == protocol.OP_ERROR:
                    raise event.error  # type: ignore[misc]
                return event.header

    def submit(self, request: Request) -> str:
        """Queue an edit or tone request; returns its id. Follow it with poll() or wait()."""
        rid = _new_id()
        try:
            self.socket.send_multipart(request.frames(rid), copy=False)
        except ValueError as exc:  # buffer sizes that disagree with the region
            raise EngineError(protocol.BAD_REQUEST, str(exc)) from None
        self._pending.add(rid)
        return rid

    def cancel(self, request_id: str) -> None:
        """Ask the engine to stop an edit; it answers with a `cancelled` error for it."""
        header = {"op": protocol.OP_CANCEL, "id": _new_id(), "target": request_id}
        self.socket.send_multipart(protocol.encode(header))

    def poll(self, timeout: float = 0.0) -> list[Event]:
        """Events that have arrived, waiting at most `timeout` seconds for the first."""
        events = [*self._inbox, *self._receive(0.0 if self._inbox else timeout)]
        self._inbox.clear()
        self._settle(events)
        return events

    def wait(
        self,
        request_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
        timeout: float | None = None,
    ) -> EditResult:
        """Block until the edit ends; raises EngineError on an error or an engine silent
        for `timeout` seconds (default: the client's reply_timeout)."""
        timeout = self.reply_timeout if timeout is None else timeout
        last_heard = time.monotonic()
        cancel_sent = False
        while True:
            if should_cancel is not None and not cancel_sent and should_cancel():
                self.cancel(request_id)
                cancel_sent = True
            for event in self._take(request_id, 0.05):
                last_heard = time.monotonic()
                h = event.header
                if event.kind == protocol.OP_PROGRESS and not h.get("heartbeat") and on_progress:
                    on_progress(h.get("stage", ""), h.get("fraction", 0.0), h.get("queue_position"))
                elif event.kind == protocol.OP_RESULT:
                    assert event.result is not None
                    return event.result
                elif event.kind == protocol.OP_ERROR:
                    raise event.error  # type: ignore[misc]
            if time.monotonic() - last_heard > timeout:
                self.reset()
                raise EngineError(
                    protocol.TIMEOUT,
                    f"the engine at {self.endpoint} sent nothing for {timeout:.0f} s; "
                    "it may be overloaded or stuck (see its log)",
                )

    def edit(
        self,
        request: Request,
        *,
        on_progress: ProgressCallback | None = None,
        should_cancel: Callable[[], bool] | None = None,
        timeout: float | None = None,
    ) -> EditResult:
        rid = self.submit(request)
        return self.wait(rid, on_progress=on_progress, should_cancel=should_cancel, timeout=timeout)

    # -- receiving -------------------------------------------------------------------

    def _take(self, request_id: str, timeout: float) -> list[Event]:
        """Events for one request; those for other edits of ours wait in the inbox."""
        mine = [e for e in self._inbox if e.id == request_id]
        if not mine:
            for event in self._receive(timeout):
                if event.id == request_id:
                    mine.append(event)
                elif event.id in self._pending:
                    self._inbox.append(event)
        self._inbox = [e for e in self._inbox if e.id != request_id]
        self._settle(mine)
        return mine

    def _settle(self, events: list[Event]) -> None:
        """An edit is pending until its result or error has been handed out."""
        for event in events:
            if event.kind in (protocol.OP_RESULT, protocol.OP_ERROR):
                self._pending.discard(event.id)

    def _receive(self, timeout: float) -> list[Event]:
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        assert self._monitor is not None
        poller.register(self._monitor, zmq.POLLIN)
        ready = dict(poller.poll(max(0, int(timeout * 1000))))
        events: list[Event] = []
        if self._monitor in ready:
            events.extend(self._lost_connection())
        while self._sock is not None:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            event = self._event(frames)
            if event is not None:
                events.append(event)
        return events

    def _lost_connection(self) -> list[Event]:
        """The engine closed the connection or refused our keys: pending edits have failed."""
        assert self._monitor is not None
        refused = False
        while True:
            try:
                frames = self._monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            event = int.from_bytes(frames[0][:2], "little")
            refused = refused or bool(event & _HANDSHAKE_FAILED)
        if refused:
            self._refused = (
                f"the engine at {self.endpoint} refused this client's credentials (CURVE "
                "handshake failed): check server_public_key and client_secret_key in "
                f"{ClientConfig.path()}, and that the engine lists this client's public key"
            )
            code, text = protocol.UNAUTHORIZED, self._refused
        else:
            code = protocol.UNREACHABLE
            text = (
                f"the engine at {self.endpoint} closed the connection during the edit "
                "(did it stop or crash?); the next request will start or find one again"
            )
        answered = {e.id for e in self._inbox if e.kind in (protocol.OP_RESULT, protocol.OP_ERROR)}
        failed = [
            Event(protocol.OP_ERROR, rid, protocol.error_header(code, text, rid))
            for rid in sorted(self._pending - answered)
        ]
        return failed

    @staticmethod
    def _event(frames: list[bytes]) -> Event | None:
        try:
            message = protocol.decode(frames)
        except protocol.ProtocolError:
            return None  # not from a SketchFill engine of this protocol; nothing to route
        h = message.header
        result = None
        if message.op == protocol.OP_RESULT:
            patch = message.buffers.get("patch")
            if patch is None:
                return None
            result = EditResult(
                h["x"],
                h["y"],
                patch.width,
                patch.height,
                patch.layout,
                bytes(patch.data),
                h.get("seed", 0),
                h,
            )
        return Event(message.op, h.get("id") or "", h, result)


_HANDSHAKE_FAILED = (
    zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


def _new_id() -> str:
    return uuid.uuid4().hex


# -- finding or starting an engine ---------------------------------------------------------


def is_local(endpoint: str) -> bool:
    if endpoint.startswith(("ipc://", "inproc://")):
        return True
    host = endpoint.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def engine_log_path() -> Path:
    return config_dir() / "engine.log"


def start_engine(config: ClientConfig) -> subprocess.Popen:
    """Start `engine_command serve --endpoint ENDPOINT` detached from the host, so closing
    GIMP or Krita does not kill an engine other windows may be using."""
    log_path = engine_log_path()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [*config.engine_command, "serve", "--endpoint", config.endpoint]
    kwargs: dict[str, Any] = {}
    if os.name == "nt":
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
        kwargs["creationflags"] = flags | subprocess.CREATE_NO_WINDOW
    else:
        kwargs["start_new_session"] = True
    # The host's Python settings (Krita and GIMP set PYTHONPATH for their plug-ins) must
    # not leak into the engine's own interpreter.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    with open(log_path, "ab") as log:
        try:
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                **kwargs,
            )
        except OSError as exc:
            raise EngineError(
                protocol.UNREACHABLE,
                f"cannot start the engine with {' '.join(command)!r}: {exc.strerror or exc}; "
                "check engine_command in "
                f"{ClientConfig.path()} or reinstall SketchFill",
            ) from None


def connect(
    config: ClientConfig | None = None, *, on_status: Callable[[str], None] | None = None
) -> tuple[Client, dict[str, Any]]:
    """A client and the engine's hello, starting a local engine when none answers and
    the config allows it. Raises EngineError with a plain message otherwise."""
    config = config or ClientConfig.load()
    status = on_status or (lambda text: None)
    client = config.client()
    try:
        return client, client.hello(config.connect_timeout)
    except EngineError as exc:
        if exc.code != protocol.UNREACHABLE or not config.autostart:
            client.close()
            raise
        if not is_local(config.endpoint):
            client.close()
            raise EngineError(
                exc.code, f"{exc.message}; it is not on this machine, so it is not auto-started"
            ) from None
    status("Starting the SketchFill engine...")
    proc = start_engine(config)
    deadline = time.monotonic() + config.start_timeout
    while time.monotonic() < deadline:
        client.reset()  # forget hellos queued to nobody
        try:
            return client, client.hello(0.5)
        except EngineError:
            pass
        if proc.poll() is not None:
            client.close()
            raise EngineError(
                protocol.UNREACHABLE,
                f"the engine exited at start-up (code {proc.returncode}): {_log_tail()}",
            )
    client.close()
    raise EngineError(
        protocol.UNREACHABLE,
        f"the engine did not answer within {config.start_timeout:.0f} s of starting; "
        f"see {engine_log_path()}",
    )


def _log_tail(lines: int = 5) -> str:
    try:
        text = engine_log_path().read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "no log"
    return " | ".join(text.strip().splitlines()[-lines:]) or "no output"
