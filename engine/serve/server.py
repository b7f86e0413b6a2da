"""The engine process: a ZeroMQ ROUTER serving protocol 1 (docs/ARCHITECTURE.md, "Wire protocol").

One thread owns the ROUTER socket: it answers `hello` and `cancel` at once, checks each
`edit` and queues it. Worker threads run the edits and hand their replies back through an
inproc socket, so the ROUTER is never touched by two threads and a long edit never keeps
other clients waiting for an answer. Replies go out without blocking: a vanished client
loses its replies, a client that is not reading has its results held (schedule.py), and
neither slows anyone else down.

Whatever arrives is answered with a coded error or dropped, never allowed to end a thread:
one guard wraps the reading and handling of each message, each worker's job and each turn
of the socket loop.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq
import zmq.auth

from .. import __version__
from ..pipeline import layers
from ..pipeline.modelcard import ModelCard, ModelCardError
from ..pipeline.pasteback import MAX_FEATHER
from ..pipeline.preprocess import DEFAULT_MARGIN
from ..pipeline.result import EditError
from ..pipeline.runtime import (
    Cancelled,
    CancelToken,
    Model,
    ModelError,
    available_threads,
    load_model,
    resolve_model_dir,
)
from ..tools import registry
from ..tools.registry import TOOLS, Tool
from ..wire import protocol
from ..wire.protocol import Buffer, Message, ProtocolError
from .curve_keys import AuthorizedKeys
from .schedule import FairQueue, Held, Outbox
from .sockets import broker_cancel_feed, enable_curve

log = logging.getLogger("sketchfill.server")

REPLY_LAYOUTS = ("RGBA", "BGRA")

# The routing envelope of a client: its identity on our ROUTER, or, behind a broker, the
# broker connection's identity followed by the client's identity on the broker.
Peer = tuple[bytes, ...]


@dataclass
class ServeConfig:
    endpoint: str = protocol.DEFAULT_ENDPOINT
    # The edit model (folder or name); other tools load their default models.
    model: str | None = None
    threads: int | None = None
    workers: int = 1
    # Largest rectangle one edit may send (the region around the mask, or the canvas).
    max_pixels: int = 64_000_000
    max_message_bytes: int = 512 * 1024 * 1024
    max_queue: int = 32
    # One client's share: its requests queued, running or with replies it has not read.
    max_client_queue: int = 8
    # Bytes of requests queued or running plus replies held for clients, all together.
    # Raised to max_message_bytes if lower, so any request within the limit can be served.
    max_queued_bytes: int = 2 * 1024 * 1024 * 1024
    # A result a client has not read for this long gives up its pixels for a `dropped`
    # error (it is held until then; a client that disconnects loses it at once).
    hold_seconds: float = 600.0
    # On stop (SIGTERM): queued work is answered `shutting_down` at once; running work is
    # cancelled and has this long to answer before it is answered `shutting_down` too.
    shutdown_grace: float = 5.0
    margin: float = DEFAULT_MARGIN
    # Messages ZeroMQ queues for a client before the engine holds (results) or drops
    # (progress) what is sent to it.
    send_hwm: int = 64
    warmup: int = 2
    # Seconds between "still working" progress messages for every queued or running edit,
    # so clients can tell a busy engine from a dead one.
    heartbeat: float = 2.0
    # CURVE (studio mode): the engine's secret key file and a folder of the public key
    # files of the clients it accepts. Required for any endpoint beyond loopback.
    curve_secret_file: str | None = None
    authorized_clients: str | None = None
    # Serve behind `sketchfill broker`: connect to its backend instead of binding.
    broker: str | None = None

    @property
    def curve(self) -> bool:
        return bool(self.curve_secret_file)


@dataclass
class Job:
    peer: Peer
    id: str
    tool: Tool
    message: Message
    region: protocol.Box
    seed: int
    feather: float
    reply_layout: str
    nbytes: int = 0  # the request's bytes, counted against max_queued_bytes
    token: CancelToken = field(default_factory=CancelToken)
    received: float = field(default_factory=time.monotonic)
    running: bool = False
    shutdown: bool = False  # cancelled because the engine is stopping
    stage: str = "queued"
    fraction: float = 0.0


class ModelSlot:
    """A tool's model, loaded once, on first use or by the engine's background start-up
    (whichever comes first); a missing model is looked for again on the next request, so
    installing one does not need an engine restart. Until it loads, the hello describes
    it from its card, so a client can plan its request meanwhile."""

    def __init__(self, config: ServeConfig, tool: Tool):
        self._config = config
        self._tool = tool
        self._lock = threading.Lock()
        self._model: Model | None = None
        self._error: ModelError | None = None
        self._card: dict[str, Any] | None = None  # the card's description, before loading
        self._tried = False

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def peek(self) -> None:
        """Read the card alone (milliseconds: no session, no checksum) so the hello can
        describe the tool before its model loads; a card that does not read is left for
        the load to report."""
        try:
            card = ModelCard.load(resolve_model_dir(self._name()))
        except (ModelError, ModelCardError, OSError, ValueError):
            return
        if card.task == self._tool.task:
            self._card = {
                "name": card.name,
                "version": card.version,
                "sha256": card.sha256,
                "resolution": card.resolution,
                "task": card.task,
                "loading": True,
            }

    def load(self) -> None:
        with self._lock:
            if not self._tried:
                self._load_locked()

    def get(self) -> Model:
        with self._lock:
            missing = self._error is not None and self._error.code == protocol.MODEL_MISSING
            if self._model is None and (not self._tried or missing):
                self._load_locked()
            if self._model is None:
                assert self._error is not None
                raise self._error
            return self._model

    def describe(self) -> tuple[dict[str, Any] | None, dict[str, str] | None]:
        model, error = self._model, self._error
        if model is not None:
            return model.describe(), None
        if error is None and self._card is not None:  # still loading
            return dict(self._card), None
        return None, {"code": error.code, "message": error.message} if error else None

    def warm_up(self, runs: int, token: CancelToken) -> None:
        """The first runs of a session cost 1.5-3x (DESIGN.md): pay them while idle. The
        engine cancels `token` when a request arrives, so a request never waits for a
        warm-up run."""
        model = self._model
        if model is None:
            return
        feeds = {spec.name: np.zeros(spec.shape, np.float32) for spec in model.card.inputs}
        for _ in range(runs):
            if token.cancelled:
                return
            try:
                model.run(feeds, token)
            except Cancelled:
                return

    def _name(self) -> str:
        tool, config = self._tool, self._config
        return (config.model if tool is registry.EDIT else None) or tool.default_model

    def _load_locked(self) -> None:
        tool, config = self._tool, self._config
        name = self._name()
        self._tried = True
        try:
            # No warm-up runs here: the engine answers as soon as the edit model is in
            # memory and warms the sessions up in the background (Engine._start_up).
            self._model = load_model(name, task=tool.task, threads=config.threads, warmup=0)
            self._error = None
            log.info(
                "%s model %s %s loaded", tool.op, self._model.card.name, self._model.card.version
            )
        except ModelError as exc:
            self._error = exc
            log.warning("no usable %s model: %s", tool.op, exc.message)


class Engine:
    def __init__(self, config: ServeConfig, context: zmq.Context | None = None):
        self.config = config
        self._ctx = context or zmq.Context.instance()
        self._models = {tool.op: ModelSlot(config, tool) for tool in TOOLS.values()}
        self._cond = threading.Condition()
        self._queue: FairQueue[Job] = FairQueue()
        self._jobs: dict[tuple[Peer, str], Job] = {}
        self._admitted_bytes = 0  # of the jobs in _jobs
        self._router: zmq.Socket | None = None  # set while serving; its thread only
        self._outbox = Outbox(self._try_send)
        self._keys: AuthorizedKeys | None = None
        self._depth = 2 if config.broker else 1  # frames of routing envelope
        self._stopping = threading.Event()
        self._hurry = threading.Event()  # a second stop: skip the shutdown grace
        self._events_addr = f"inproc://sketchfill-events-{secrets.token_hex(6)}"
        self._workers: list[threading.Thread] = []
        self.bound_endpoint: str | None = None
        self.ready = threading.Event()
        self._warm_token = CancelToken()  # cancelled when a request arrives
        self._warming_up = True  # the background start-up has not finished
        self._warm_thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def serve_forever(self) -> None:
        # The default (edit) model first, so the engine answers within a second or two of
        # starting; the other tools' models load in the background or on first use.
        for slot in self._models.values():
            slot.peek()
        self._models[registry.EDIT.op].load()
        router = self._ctx.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        self._router = router
        authenticator = self._secure(router) if self.config.curve else None
        router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # learn when a client has gone
        router.setsockopt(zmq.SNDHWM, self.config.send_hwm)
        # Backstop for frames far beyond the limit: libzmq drops such a peer outright.
        router.setsockopt(zmq.MAXMSGSIZE, self.config.max_message_bytes + (1 << 20))
        events = self._ctx.socket(zmq.PULL)
        events.bind(self._events_addr)
        cancels = None
        try:
            if self.config.broker:
                router.connect(self.config.broker)
                self.bound_endpoint = self.config.broker
                cancels = self._ctx.socket(zmq.SUB)
                cancels.setsockopt(zmq.LINGER, 0)
                cancels.setsockopt(zmq.SUBSCRIBE, b"")
                cancels.connect(broker_cancel_feed(self.config.broker))
            else:
                router.bind(self.config.endpoint)
                self.bound_endpoint = router.getsockopt_string(zmq.LAST_ENDPOINT)
            for i in range(self.config.workers):
                t = threading.Thread(target=self._work, name=f"sketchfill-worker-{i}", daemon=True)
                t.start()
                self._workers.append(t)
            log.info("SketchFill engine %s listening on %s", __version__, self.bound_endpoint)
            self.ready.set()
            self._warm_thread = threading.Thread(
                target=self._start_up, name="sketchfill-warm-up", daemon=True
            )
            self._warm_thread.start()
            self._loop(router, events, cancels)
            self._shut_down(router, events)
        finally:
            self._stopping.set()
            with self._cond:
                for job in self._jobs.values():
                    job.token.cancel()
                self._warm_token.cancel()
                self._cond.notify_all()
            for t in self._workers:
                t.join(timeout=1)
            # A model still loading or warming up must finish before the interpreter exits:
            # ONNX Runtime aborts the process (SIGABRT) when torn down under a running call.
            if self._warm_thread is not None:
                self._warm_thread.join(timeout=30)
            # Linger, so the last replies leave before the process exits (the serve
            # command terminates the context, which waits up to this long for them).
            router.close(linger=1000)
            events.close(linger=0)
            if cancels is not None:
                cancels.close(linger=0)
            if authenticator is not None:
                authenticator.stop()

    def _secure(self, router: zmq.Socket):
        assert self.config.curve_secret_file is not None
        if self.config.authorized_clients:
            self._keys = AuthorizedKeys(self.config.authorized_clients)
        return enable_curve(
            self._ctx,
            router,
            self.config.curve_secret_file,
            self.config.authorized_clients,
            keys=self._keys,
        )

    def stop(self) -> None:
        """Stop serving (thread- and signal-safe); a second call skips the grace period."""
        if self._stopping.is_set():
            self._hurry.set()
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        # A warm-up run in progress gives way at once. From another thread: the token's
        # lock is not re-entrant, and a signal handler may interrupt a holder of it.
        threading.Thread(target=self._warm_token.cancel, daemon=True).start()

    def _shut_down(self, router: zmq.Socket, events: zmq.Socket) -> None:
        """Answer every queued and running job before the sockets close: queued ones at
        once, running ones when their cancelled run returns or the grace period ends."""
        self._refuse_unread(router)
        with self._cond:
            queued = self._queue.clear()
            for job in queued:
                self._jobs.pop((job.peer, job.id), None)
                self._admitted_bytes -= job.nbytes
            for job in self._jobs.values():
                job.shutdown = True
                job.token.cancel()
            self._cond.notify_all()
        for job in queued:
            self._final(job.peer, job.id, protocol.encode(_shutting_down(job.id)))
        deadline = time.monotonic() + self.config.shutdown_grace
        while time.monotonic() < deadline and not self._hurry.is_set():
            with self._cond:
                running = bool(self._jobs)
            self._forward_events(router, events)
            self._outbox.flush()
            if not running and not self._outbox:
                break
            events.poll(20)
        self._forward_events(router, events)
        with self._cond:
            stuck = list(self._jobs.values())
        for job in stuck:
            self._final(job.peer, job.id, protocol.encode(_shutting_down(job.id)))
        self._outbox.flush()
        if stuck or self._outbox:
            log.warning(
                "stopped with %d edits still running and replies held for %d clients",
                len(stuck),
                len(self._outbox.peers()),
            )
        log.info("engine stopped; %d queued requests were answered shutting_down", len(queued))

    def _refuse_unread(self, router: zmq.Socket) -> None:
        """Requests still waiting in the socket when the stop came (a loaded machine reads
        them late) get their answer too, not silence."""
        depth = self._depth
        while True:
            try:
                frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            rid = _peek_id(frames[depth]) if len(frames) > depth else None
            if rid is not None:
                with contextlib.suppress(Exception):
                    self._reply(router, _envelope(frames, depth), _shutting_down(rid))

    # -- the ROUTER thread -------------------------------------------------------------

    def _loop(self, router: zmq.Socket, events: zmq.Socket, cancels: zmq.Socket | None) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(events, zmq.POLLIN)
        if cancels is not None:
            poller.register(cancels, zmq.POLLIN)
        next_beat = next_expiry = time.monotonic() + self.config.heartbeat
        while not self._stopping.is_set():
            # A turn that fails on something unforeseen is logged and the loop goes on:
            # this thread is the engine, for every client.
            try:
                ready = dict(poller.poll(20 if self._outbox else 200))
                now = time.monotonic()
                if now >= next_beat:
                    self._heartbeat(router)
                    next_beat = now + self.config.heartbeat
                if now >= next_expiry:
                    self._expire_held()
                    next_expiry = now + 1.0
                self._outbox.flush()
                if events in ready:
                    self._forward_events(router, events)
                if cancels is not None and cancels in ready:
                    self._broadcast_cancels(router, cancels)
                if router in ready:
                    for _ in range(64):  # bounded, so replies interleave under a flood
                        try:
                            frames = router.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._guard(router, frames)
            except Exception:
                log.error("engine loop: unexpected failure, carrying on:\n%s", _trace())

    def _guard(self, router: zmq.Socket, frames: list[Any]) -> None:
        """The one place a client's message is read and handled: nothing it holds may end
        this thread. What cannot be addressed (no frames past the envelope) is dropped."""
        depth = self._depth
        if len(frames) <= depth:
            return
        peer = _envelope(frames, depth)
        try:
            if self._keys is not None and not self._still_authorized(frames[depth]):
                text = "this client's key is no longer in the engine's authorised folder"
                error = protocol.error_header(protocol.UNAUTHORIZED, text, _peek_id(frames[depth]))
                self._reply(router, peer, error)
                return
            self._handle(router, peer, frames[depth:])
        except Exception as exc:
            log.error("message from %s could not be handled:\n%s", _name(peer), _trace())
            text = f"the engine could not handle this message ({type(exc).__name__})"
            with contextlib.suppress(Exception):
                self._reply(router, peer, protocol.error_header(protocol.BAD_REQUEST, text))

    def _still_authorized(self, frame: Any) -> bool:
        """CURVE: the key this connection authenticated with is still in the folder."""
        assert self._keys is not None
        try:
            user = frame.get("User-Id")
        except (zmq.ZMQError, AttributeError):
            return True  # no ZAP metadata on this transport: the handshake decided
        return self._keys.allows(user.encode() if isinstance(user, str) else user)

    def _forward_events(self, router: zmq.Socket, events: zmq.Socket) -> None:
        """Workers' messages to clients: [kind, request id, *envelope, *message]."""
        depth = self._depth
        for _ in range(256):  # replies first: they free memory and clients
            try:
                frames = events.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            kind, rid = frames[0].bytes, frames[1].bytes.decode()
            peer, message = _envelope(frames[2:], depth), frames[2 + depth :]
            if kind == _FINAL:
                self._final(peer, rid, message)
            else:
                self._send(router, peer, message)

    def _try_send(self, peer: Peer, frames: list[Any]) -> bool:
        """Send without blocking; False when the client's pipe is full (it is not
        reading). A client that has gone is forgotten, and counts as sent."""
        assert self._router is not None
        try:
            self._router.send_multipart([*peer, *frames], zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        except zmq.ZMQError as exc:
            if exc.errno == errno.EHOSTUNREACH:
                self._forget_peer(peer)
            else:
                log.warning("reply to %s failed: %s", _name(peer), exc)
        return True

    def _send(self, router: zmq.Socket, peer: Peer, frames: list[Any]) -> None:
        """Progress, heartbeats and answers to refused requests: dropped when the client
        is not reading (held results for it go first, in order)."""
        if self._outbox.count(peer) or not self._try_send(peer, frames):
            log.debug("client %s is not reading; progress message dropped", _name(peer))

    def _final(self, peer: Peer, rid: str, frames: list[Any]) -> None:
        """The one result or error of an admitted job: sent, or held until it is read."""
        nbytes = sum(len(f) for f in frames[1:])
        self._outbox.send(peer, frames, nbytes, rid)
        if self._outbox.count(peer):
            log.info("client %s is not reading; reply to %s held", _name(peer), rid)

    def _expire_held(self) -> None:
        def dropped(held: Held) -> list[Any]:
            text = (
                f"the result was held {self.config.hold_seconds:.0f} s for this client, "
                "which did not read it, and then given up; send the request again"
            )
            return protocol.encode(protocol.error_header(protocol.DROPPED, text, held.request_id))

        given_up = self._outbox.expire(self.config.hold_seconds, dropped)
        if given_up:
            log.warning(
                "%d unread results given up after %.0f s", given_up, self.config.hold_seconds
            )

    def _heartbeat(self, router: zmq.Socket) -> None:
        with self._cond:
            jobs = list(self._jobs.values())
            positions = {id(job): i for i, job in enumerate(self._queue, start=1)}
        for job in jobs:
            extra = {} if job.running else {"queue_position": positions.get(id(job))}
            header = _progress(job.id, job.stage, job.fraction, heartbeat=True, **extra)
            self._reply(router, job.peer, header)

    def _reply(self, router: zmq.Socket, peer: Peer, header: dict[str, Any], buffers=()):
        self._send(router, peer, protocol.encode(header, buffers))

    def _forget_peer(self, peer: Peer) -> None:
        """The client disconnected: drop its queued work, held replies and stop what it
        has running."""
        self._outbox.forget(peer)
        with self._cond:
            for key, job in list(self._jobs.items()):
                if key[0] == peer:
                    job.token.cancel()
                    if not job.running:
                        self._queue.remove(job)
                        del self._jobs[key]
                        self._admitted_bytes -= job.nbytes
        log.info("client %s went away; its requests were cancelled", _name(peer))

    def _handle(self, router: zmq.Socket, peer: Peer, frames: list[Any]) -> None:
        try:
            # Sizes first, from the frames' lengths alone: nothing of a message that
            # could not be served is parsed, copied or queued.
            total = sum(len(f) for f in frames)
            if total > self.config.max_message_bytes:
                raise ProtocolError(
                    protocol.TOO_LARGE,
                    f"message of {total} bytes exceeds the engine's limit of "
                    f"{self.config.max_message_bytes} bytes",
                )
            message = protocol.decode(frames)
            op = message.op
            if op == protocol.OP_HELLO:
                self._reply(router, peer, self._hello(message.id))
            elif op == protocol.OP_CANCEL:
                self._cancel(router, peer, message)
            elif op in TOOLS:
                self._accept(router, peer, message, TOOLS[op], total)
            else:
                known = ", ".join([protocol.OP_HELLO, protocol.OP_CANCEL, *TOOLS])
                raise ProtocolError(
                    protocol.BAD_REQUEST,
                    f"unknown op {op!r}; this engine knows {known}",
                    message.id,
                )
        except ProtocolError as exc:
            self._reply(router, peer, protocol.error_header(exc.code, exc.message, exc.request_id))

    def _hello(self, request_id: str | None) -> dict[str, Any]:
        described = {op: slot.describe() for op, slot in self._models.items()}
        model, model_error = described[registry.EDIT.op]
        with self._cond:
            queued = len(self._queue)
        return {
            "op": protocol.OP_HELLO,
            "id": request_id,
            "engine": self._identity(),
            # The edit tool's model and context at the top level; every tool's below.
            "model": model,
            "model_error": model_error,
            "tools": {
                op: {
                    "model": m,
                    "model_error": err,
                    "buffers": TOOLS[op].describe(),
                    "context": TOOLS[op].context
                    or {"margin": self.config.margin, "min_side": m["resolution"] if m else 0},
                }
                for op, (m, err) in described.items()
            },
            # Still loading the other tools' models or warming up (in the background):
            # requests run meanwhile, the first ones somewhat slower.
            "warming_up": self._warming_up,
            "device": "cpu",
            "threads": self.config.threads or available_threads(),
            "workers": self.config.workers,
            "queued": queued,
            "ops": [protocol.OP_HELLO, protocol.OP_CANCEL, *TOOLS],
            "heartbeat": self.config.heartbeat,
            "curve": self.config.curve,
            "limits": {
                "max_pixels": self.config.max_pixels,
                "max_message_bytes": self.config.max_message_bytes,
                "max_queue": self.config.max_queue,
                "max_client_queue": self.config.max_client_queue,
                "max_queued_bytes": self._byte_budget(),
                "max_feather": MAX_FEATHER,
            },
            "context": {
                "margin": self.config.margin,
                "min_side": model["resolution"] if model else 0,
            },
        }

    def _identity(self) -> dict[str, Any]:
        return {"name": "sketchfill", "version": __version__, "pid": os.getpid()}

    def _byte_budget(self) -> int:
        return max(self.config.max_queued_bytes, self.config.max_message_bytes)

    def _cancel(self, router: zmq.Socket, peer: Peer, message: Message) -> None:
        target = message.header.get("target")
        if not protocol.is_name(target):
            raise ProtocolError(protocol.BAD_REQUEST, "cancel needs a target id", message.id)
        job = self._cancel_job(router, lambda j: j.peer == peer and j.id == target)
        if job is None:
            if self._depth > 1:
                return  # behind a broker, another engine may hold it: the feed tells it
            raise ProtocolError(
                protocol.NOT_FOUND, f"no request {target!r} is queued or running", message.id
            )
        ack = {"op": protocol.OP_CANCEL, "id": message.id, "target": target, "status": "cancelling"}
        self._reply(router, peer, ack)

    def _broadcast_cancels(self, router: zmq.Socket, cancels: zmq.Socket) -> None:
        """Cancels the broker saw pass by, whichever engine it routed them to."""
        while True:
            try:
                client, header = cancels.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:
                continue
            try:
                target = protocol.loads_header(header).get("target")
            except (ProtocolError, AttributeError):
                continue
            if protocol.is_name(target):
                self._cancel_job(
                    router, lambda j, c=client, t=target: j.peer[-1] == c and j.id == t
                )

    def _cancel_job(self, router: zmq.Socket, match: Callable[[Job], bool]) -> Job | None:
        """Cancel the first job `match` accepts: a queued one leaves the queue at once and
        is answered here; a running one answers when its worker notices."""
        with self._cond:
            job = next((j for j in self._jobs.values() if match(j)), None)
            if job is None:
                return None
            job.token.cancel()
            running = job.running
            if not running:
                self._queue.remove(job)
                del self._jobs[(job.peer, job.id)]
                self._admitted_bytes -= job.nbytes
        if not running:
            self._final(job.peer, job.id, protocol.encode(_cancelled(job.id)))
            self._announce_positions(lambda p, h: self._reply(router, p, h))
        return job

    def _start_up(self) -> None:
        """In the background, once the engine answers: warm the edit model up, then load
        and warm up the other tools' models, each step only while no request waits or
        runs, so a request arriving meanwhile runs at once."""
        edit = self._models[registry.EDIT.op]
        for slot in [edit, *(s for s in self._models.values() if s is not edit)]:
            self._wait_idle()
            if self._stopping.is_set():
                return
            slot.load()  # nothing to do when a request loaded it first
            self._wait_idle()
            if self._stopping.is_set():
                return
            with self._cond:
                token = self._warm_token = CancelToken()
            slot.warm_up(self.config.warmup, token)
        self._warming_up = False
        log.info("every model loaded and warmed up")

    def _wait_idle(self) -> None:
        with self._cond:
            while (self._queue or any(j.running for j in self._jobs.values())) and not (
                self._stopping.is_set()
            ):
                self._cond.wait(0.5)

    def _accept(
        self, router: zmq.Socket, peer: Peer, message: Message, tool: Tool, nbytes: int
    ) -> None:
        job = self._check_request(peer, message, tool)
        job.nbytes = nbytes
        budget = self._byte_budget()
        with self._cond:
            if (peer, job.id) in self._jobs:
                raise ProtocolError(
                    protocol.BAD_REQUEST,
                    f"request id {job.id!r} is already in use",
                    job.id,
                )
            # This client's own share first: a flood from one client is refused before
            # it can crowd out the others (who are served round-robin with it).
            mine = sum(1 for j in self._jobs.values() if j.peer == peer)
            unread = self._outbox.count(peer)
            if mine + unread >= self.config.max_client_queue:
                raise ProtocolError(
                    protocol.BUSY,
                    f"this client has {mine} requests queued or running and {unread} replies "
                    f"it has not read (limit {self.config.max_client_queue}); wait for them",
                    job.id,
                )
            if len(self._queue) >= self.config.max_queue:
                raise ProtocolError(
                    protocol.BUSY,
                    f"the engine has {len(self._queue)} edits queued; try again shortly",
                    job.id,
                )
            used = self._admitted_bytes + self._outbox.nbytes
            if used + nbytes > budget:
                raise ProtocolError(
                    protocol.BUSY,
                    f"the engine holds {used >> 20} MiB of requests and unread replies; this "
                    f"one of {nbytes >> 20} MiB would pass its {budget >> 20} MiB; try again "
                    "shortly",
                    job.id,
                )
            self._queue.append(job)
            self._jobs[(peer, job.id)] = job
            self._admitted_bytes += nbytes
            position = next(i for i, j in enumerate(self._queue, start=1) if j is job)
            self._warm_token.cancel()  # a warm-up run in progress gives way
            self._cond.notify_all()
        self._reply(router, peer, _progress(job.id, "queued", 0.0, queue_position=position))

    def _check_request(self, peer: Peer, message: Message, tool: Tool) -> Job:
        """Everything about a request that the header alone can tell, before it queues."""
        h, rid = message.header, message.id

        def bad(text: str, code: str = protocol.BAD_REQUEST) -> ProtocolError:
            return ProtocolError(code, text, rid)

        if rid is None:
            raise bad(f"{tool.op} needs an id")
        canvas = h.get("canvas")
        if not isinstance(canvas, dict) or not all(
            _is_side(canvas.get(k)) for k in ("width", "height")
        ):
            raise bad("canvas must give a positive width and height")
        cw, ch = canvas["width"], canvas["height"]
        region = h.get("region", {"x": 0, "y": 0, "width": cw, "height": ch})
        if not isinstance(region, dict) or not all(
            _is_int(region.get(k)) for k in ("x", "y", "width", "height")
        ):
            raise bad("region must give integer x, y, width and height")
        box = protocol.Box(region["x"], region["y"], region["width"], region["height"])
        if box.x < 0 or box.y < 0 or box.width < 1 or box.height < 1 or box.x1 > cw or box.y1 > ch:
            raise bad(f"region {box.to_json()} does not lie inside the {cw}x{ch} canvas")
        if box.width * box.height > self.config.max_pixels:
            raise bad(
                f"the region of {box.width}x{box.height} pixels exceeds the engine's limit of "
                f"{self.config.max_pixels} pixels; edit a smaller area or raise --max-pixels",
                protocol.TOO_LARGE,
            )
        for name, slot in tool.slots.items():
            if slot.required and name not in message.buffers:
                raise bad(f"{tool.op} needs an {name!r} buffer")
        for name, buf in message.buffers.items():
            slot = tool.slots.get(name)
            if slot is None:
                raise bad(f"unknown buffer {name!r}; {tool.op} takes {', '.join(tool.slots)}")
            if buf.layout not in slot.layouts:
                raise bad(f"buffer {name!r} cannot be {buf.layout}; use {slot.layouts}")
            if (buf.width, buf.height) != (box.width, box.height):
                raise bad(
                    f"buffer {name!r} is {buf.width}x{buf.height} but the region is "
                    f"{box.width}x{box.height}: all layers must cover the same pixels"
                )
        seed = h.get("seed")
        if seed is None:
            seed = secrets.randbelow(2**31)
        elif not _is_int(seed) or not 0 <= seed < 2**63:
            raise bad("seed must be a non-negative integer or null")
        feather = h.get("feather", 0)
        if not protocol.is_number(feather) or not (0 <= feather <= MAX_FEATHER):
            raise bad(f"feather must be a number from 0 to {MAX_FEATHER}")
        reply_layout = h.get("reply_layout", "RGBA")
        if not isinstance(reply_layout, str) or reply_layout not in REPLY_LAYOUTS:
            raise bad(f"reply_layout must be one of {REPLY_LAYOUTS}")
        return Job(peer, rid, tool, message, box, seed, float(feather), reply_layout)

    def _announce_positions(self, send: Callable[[bytes, dict[str, Any]], None]) -> None:
        """Tell every waiting client its new place in the queue."""
        with self._cond:
            waiting = [(job.peer, job.id) for job in self._queue]
        for position, (peer, rid) in enumerate(waiting, start=1):
            send(peer, _progress(rid, "queued", 0.0, queue_position=position))

    def _events_socket(self) -> zmq.Socket:
        sock = self._ctx.socket(zmq.PUSH)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.connect(self._events_addr)
        return sock

    # -- workers -----------------------------------------------------------------------

    def _next_job(self) -> Job | None:
        with self._cond:
            while not self._queue and not self._stopping.is_set():
                self._cond.wait(0.5)
            if self._stopping.is_set():
                return None
            job = self._queue.popleft()
            job.running = True
            return job

    def _work(self) -> None:
        with self._events_socket() as out:

            def send(peer: Peer, header: dict[str, Any]) -> None:
                out.send_multipart([_PROGRESS, b"", *peer, *protocol.encode(header)])

            while (job := self._next_job()) is not None:
                try:
                    self._announce_positions(send)
                    frames = self._run_job(job, out)
                except Exception as exc:  # a worker must outlive any one job
                    log.error("%s %s: worker failure:\n%s", job.tool.op, job.id, _trace())
                    frames = protocol.encode(_internal(job, exc))
                # The reply is in the socket thread's pipe before the job stops counting
                # as running: a shutdown that sees no running job has every reply.
                with contextlib.suppress(zmq.ZMQError):
                    out.send_multipart([_FINAL, job.id.encode(), *job.peer, *frames], copy=False)
                with self._cond:
                    if self._jobs.pop((job.peer, job.id), None) is not None:
                        self._admitted_bytes -= job.nbytes

    def _run_job(self, job: Job, out: zmq.Socket) -> list[Any]:
        def progress(stage: str, fraction: float) -> None:
            job.stage, job.fraction = stage, fraction
            header = protocol.encode(_progress(job.id, stage, fraction))
            out.send_multipart([_PROGRESS, b"", *job.peer, *header])

        started = time.monotonic()
        try:
            job.token.check()
            model = self._models[job.tool.op].get()
            decoded = job.tool.decode(job.message.buffers)
            work = registry.Job(
                decoded, job.seed, job.feather, self.config.margin, progress, job.token
            )
            result = job.tool.run(model, work)
        except Cancelled:
            return protocol.encode(_shutting_down(job.id) if job.shutdown else _cancelled(job.id))
        except (EditError, ModelError, ProtocolError) as exc:
            return protocol.encode(protocol.error_header(exc.code, exc.message, job.id))
        except MemoryError:
            text = f"the engine ran out of memory on this {job.tool.op}; send a smaller region"
            return protocol.encode(protocol.error_header(protocol.TOO_LARGE, text, job.id))
        except Exception as exc:
            log.error("%s %s failed:\n%s", job.tool.op, job.id, _trace())
            return protocol.encode(_internal(job, exc))
        patch = layers.from_rgba(result.patch, job.reply_layout)
        height, width = patch.shape[:2]
        header = {
            "op": protocol.OP_RESULT,
            "id": job.id,
            "x": job.region.x + result.x,
            "y": job.region.y + result.y,
            "width": width,
            "height": height,
            "seed": result.seed,
            "model": model.describe(),
            "engine": self._identity(),
            "timings": {
                "queued": round(started - job.received, 4),
                "edit": round(time.monotonic() - started, 4),
            },
        }
        return protocol.encode(header, [Buffer("patch", width, height, job.reply_layout, patch)])


def _progress(rid: str, stage: str, fraction: float, **extra: Any) -> dict[str, Any]:
    return {"op": protocol.OP_PROGRESS, "id": rid, "stage": stage, "fraction": fraction, **extra}


def _cancelled(rid: str) -> dict[str, Any]:
    return protocol.error_header(protocol.CANCELLED, "the edit was cancelled", rid)


def _shutting_down(rid: str) -> dict[str, Any]:
    text = "the engine is shutting down; send the request again once it is back"
    return protocol.error_header(protocol.SHUTTING_DOWN, text, rid)


def _internal(job: Job, exc: Exception) -> dict[str, Any]:
    text = f"the engine failed on this {job.tool.op}: {exc}"[:500]
    return protocol.error_header(protocol.INTERNAL, text, job.id)


def _trace() -> str:
    return traceback.format_exc(limit=8)


# What a worker's message to a client is, for the socket thread: a result or error that
# must reach it (held while it is not reading), or progress that may be dropped.
_FINAL = b"F"
_PROGRESS = b"P"


def _envelope(frames: list[Any], depth: int) -> Peer:
    return tuple(f.bytes for f in frames[:depth])


def _peek_id(frame: Any) -> str | None:
    """The request id of a message that is refused before it is read, so the client can
    route the refusal to the request; None when there is none to be had."""
    try:
        rid = protocol.loads_header(frame.bytes).get("id")
    except (ProtocolError, AttributeError):
        return None
    return rid if protocol.is_name(rid) else None


def _name(peer: Peer) -> str:
    return "/".join(part.hex() for part in peer)


def _is_int(v: Any) -> bool:
    return protocol.is_int(v)


def _is_side(v: Any) -> bool:
    return _is_int(v) and 0 < v <= protocol.MAX_SIDE
