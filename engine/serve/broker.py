"""Several engines behind one endpoint (studio mode), through ZeroMQ's built-in proxy.

Clients connect to the frontend ROUTER exactly as to an engine; engines started with
`sketchfill serve --broker BACKEND` connect to the backend DEALER, which hands each request
to the next engine in turn. A killed engine only takes the requests it held with it: the
DEALER stops routing to it at once and the others keep serving.

One thing a plain proxy cannot do is route a cancel to the engine that holds the edit. So
the proxy's capture socket feeds a small thread that republishes every cancel on a PUB
socket (backend port + 1) that all engines subscribe to; the engine holding the edit stops
it, the others ignore it.

Stopping: the proxy runs in its own thread and the caller's thread waits on an event, so
SIGTERM and SIGINT are handled (a signal cannot interrupt a C call that another thread
receives it in); stop() tells the proxy TERMINATE on its control socket.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import traceback

import zmq

from ..wire import protocol
from .sockets import broker_cancel_feed, enable_curve

log = logging.getLogger("sketchfill.broker")


class Broker:
    def __init__(
        self,
        frontend: str,
        backend: str,
        *,
        curve_secret_file: str | None = None,
        authorized_clients: str | None = None,
        context: zmq.Context | None = None,
    ):
        self.frontend_endpoint = frontend
        self.backend_endpoint = backend
        self._curve = (curve_secret_file, authorized_clients)
        self._ctx = context or zmq.Context()
        self._capture_addr = f"inproc://sketchfill-capture-{id(self)}"
        self._control_addr = f"inproc://sketchfill-control-{id(self)}"
        self._stop = threading.Event()
        self.ready = threading.Event()

    def serve_forever(self) -> None:
        """Run until stop() (from any thread or a signal handler)."""
        front = self._ctx.socket(zmq.ROUTER)
        back = self._ctx.socket(zmq.DEALER)
        capture = self._ctx.socket(zmq.PAIR)
        control = self._ctx.socket(zmq.PAIR)
        sockets = (front, back, capture, control)
        for sock in sockets:
            sock.setsockopt(zmq.LINGER, 0)
        secret_file, clients = self._curve
        authenticator = None
        relay = threading.Thread(target=self._relay_cancels, name="sketchfill-cancels", daemon=True)
        proxy = threading.Thread(
            target=self._proxy, args=sockets, name="sketchfill-proxy", daemon=True
        )
        try:
            if secret_file:
                authenticator = enable_curve(self._ctx, front, secret_file, clients)
            front.bind(self.frontend_endpoint)
            back.bind(self.backend_endpoint)
            capture.bind(self._capture_addr)
            control.bind(self._control_addr)
            relay.start()
            proxy.start()
            log.info(
                "broker: clients on %s, engines on %s",
                self.frontend_endpoint,
                self.backend_endpoint,
            )
            self.ready.set()
            while not self._stop.wait(0.2) and proxy.is_alive():
                pass
        finally:
            self._stop.set()
            if proxy.is_alive():
                # Kept open until the proxy has read it: closed at once, the message was
                # lost one stop in thirty and the proxy ran on.
                with self._ctx.socket(zmq.PAIR) as terminate:
                    terminate.connect(self._control_addr)
                    terminate.send(b"TERMINATE")
                    proxy.join(5)
            if relay.is_alive():
                relay.join(2)
            if proxy.is_alive():  # closing its sockets under it would abort libzmq
                log.error("broker proxy did not stop; exiting without closing its sockets")
            else:
                for sock in sockets:
                    sock.close(linger=0)
            if authenticator is not None:
                authenticator.stop()
            log.info("broker stopped")

    def stop(self) -> None:
        """Thread- and signal-safe: the serving thread notices within 0.2 s."""
        self._stop.set()

    def _proxy(self, front, back, capture, control) -> None:
        _keep_signals_for_the_main_thread()
        try:
            zmq.proxy_steerable(front, back, capture, control)
        except zmq.ContextTerminated:
            pass
        except zmq.ZMQError as exc:
            log.error("broker proxy stopped: %s", exc)

    def _relay_cancels(self) -> None:
        _keep_signals_for_the_main_thread()
        watch = self._ctx.socket(zmq.PAIR)
        feed = self._ctx.socket(zmq.PUB)
        for sock in (watch, feed):
            sock.setsockopt(zmq.LINGER, 0)
        watch.connect(self._capture_addr)
        try:
            feed.bind(broker_cancel_feed(self.backend_endpoint))
            while not self._stop.is_set():
                if not watch.poll(200):
                    continue
                frames = watch.recv_multipart(copy=False)
                # Every message passes through here: none may end the thread, or no
                # cancel would reach an engine again.
                try:
                    if len(frames) >= 2 and _is_cancel(frames[1].bytes):
                        feed.send_multipart([frames[0].bytes, frames[1].bytes], zmq.NOBLOCK)
                except Exception:
                    log.error("cancel relay: message skipped:\n%s", traceback.format_exc(limit=4))
        except zmq.ContextTerminated:
            pass
        finally:
            with contextlib.suppress(zmq.ZMQError):
                watch.close(linger=0)
                feed.close(linger=0)


def _keep_signals_for_the_main_thread() -> None:
    """Block SIGINT and SIGTERM in this thread, so the kernel delivers them to the main
    thread (whose Python handler calls stop()). Delivered here, they interrupted libzmq's
    poll inside the proxy, which then missed its TERMINATE (seen: 2 stops in 6)."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def _is_cancel(header: bytes) -> bool:
    if len(header) > protocol.MAX_HEADER_BYTES or not header.startswith(b"{"):
        return False
    try:
        data = protocol.loads_header(header)
    except protocol.ProtocolError:
        return False
    # Requests only: an engine's acknowledgement has the same op but also a status.
    return (
        isinstance(data, dict)
        and data.get("op") == protocol.OP_CANCEL
        and "target" in data
        and "status" not in data
    )
