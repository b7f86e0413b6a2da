"""The thin client's connection to one engine, shared by the GIMP and Krita plug-ins and the CLI.

Standard library and pyzmq only: it runs inside the hosts' own Python. The installer copies
this package (engine/wire/) into a `sketchfill_client` package next to each plug-in. It
sends requests (requests.py), streams their progress, cancels them and notices an engine
that went away; launch.py finds or starts the engine.

Two ways to use it: `Client.edit()` blocks until the result (scripts, GIMP), while
`Client.submit()` + `Client.poll()` never block, for a GUI event loop (Krita's docker).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zmq

from . import protocol
from .errors import EngineError
from .requests import EditResult, Event, Request

ProgressCallback = Callable[[str, float, "int | None"], None]


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
        # The engine's limits from its last hello: a request over them is refused here,
        # before hundreds of megabytes travel only to be refused there.
        self.limits: dict[str, Any] = {}
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
                limits = event.header.get("limits")
                self.limits = limits if isinstance(limits, dict) else {}
                return event.header

    def submit(self, request: Request) -> str:
        """Queue an edit or tone request; returns its id. Follow it with poll() or wait()."""
        rid = _new_id()
        try:
            frames = request.frames(rid)  # copies a non-contiguous array (numpy slice) once
        except ValueError as exc:  # buffer sizes that disagree with the region
            raise EngineError(protocol.BAD_REQUEST, str(exc)) from None
        size = sum(len(memoryview(f).cast("B")) for f in frames)
        limit = self.limits.get("max_message_bytes")
        if protocol.is_int(limit) and size > limit:
            raise EngineError(
                protocol.TOO_LARGE,
                f"this request is {size >> 20} MiB; the engine at {self.endpoint} takes at "
                f"most {limit >> 20} MiB: send a smaller region",
            )
        self.socket.send_multipart(frames, copy=False)
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
        while self._sock is not None:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            event = self._event(frames)
            if event is not None:
                events.append(event)
        if self._monitor in ready:
            # After the socket's own messages: an engine that answers and then stops (a
            # shutdown) has answered; only what it left unanswered is lost.
            answered = {e.id for e in events if e.kind in (protocol.OP_RESULT, protocol.OP_ERROR)}
            events.extend(e for e in self._lost_connection() if e.id not in answered)
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
                "handshake failed): check server_public_key and client_secret_key in the "
                "plug-in's client.json, and that the engine lists this client's public key"
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
            if patch is None or not (protocol.is_int(h.get("x")) and protocol.is_int(h.get("y"))):
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
