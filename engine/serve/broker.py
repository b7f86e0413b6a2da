"""Several engines behind one endpoint (studio mode), through ZeroMQ's built-in proxy.

Clients connect to the frontend ROUTER exactly as to an engine; engines started with
`sketchfill serve --broker BACKEND` connect to the backend DEALER, which hands each request
to the next engine in turn. A killed engine only takes the requests it held with it: the
DEALER stops routing to it at once and the others keep serving.

One thing a plain proxy cannot do is route a cancel to the engine that holds the edit. So
the proxy's capture socket feeds a small thread that republishes every cancel on a PUB
socket (backend port + 1) that all engines subscribe to; the engine holding the edit stops
it, the others ignore it.
"""

from __future__ import annotations

import json
import logging
import threading

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
        self.ready = threading.Event()

    def serve_forever(self) -> None:
        """Run until the context is terminated (stop())."""
        front = self._ctx.socket(zmq.ROUTER)
        back = self._ctx.socket(zmq.DEALER)
        capture = self._ctx.socket(zmq.PAIR)
        for sock in (front, back, capture):
            sock.setsockopt(zmq.LINGER, 0)
        secret_file, clients = self._curve
        authenticator = (
            enable_curve(self._ctx, front, secret_file, clients) if secret_file else None
        )
        front.bind(self.frontend_endpoint)
        back.bind(self.backend_endpoint)
        capture.bind(self._capture_addr)
        relay = threading.Thread(target=self._relay_cancels, name="sketchfill-cancels", daemon=True)
        relay.start()
        log.info(
            "broker: clients on %s, engines on %s", self.frontend_endpoint, self.backend_endpoint
        )
        self.ready.set()
        try:
            zmq.proxy(front, back, capture)
        except zmq.ContextTerminated:
            pass
        finally:
            for sock in (front, back, capture):
                sock.close(linger=0)
            if authenticator is not None:
                authenticator.stop()

    def stop(self) -> None:
        self._ctx.term()

    def _relay_cancels(self) -> None:
        watch = self._ctx.socket(zmq.PAIR)
        feed = self._ctx.socket(zmq.PUB)
        for sock in (watch, feed):
            sock.setsockopt(zmq.LINGER, 0)
        watch.connect(self._capture_addr)
        feed.bind(broker_cancel_feed(self.backend_endpoint))
        try:
            while True:
                frames = watch.recv_multipart(copy=False)
                if len(frames) >= 2 and _is_cancel(frames[1].bytes):
                    feed.send_multipart([frames[0].bytes, frames[1].bytes])
        except zmq.ContextTerminated:
            pass
        finally:
            watch.close(linger=0)
            feed.close(linger=0)


def _is_cancel(header: bytes) -> bool:
    if len(header) > protocol.MAX_HEADER_BYTES or not header.startswith(b"{"):
        return False
    try:
        data = json.loads(header)
    except ValueError:
        return False
    # Requests only: an engine's acknowledgement has the same op but also a status.
    return (
        isinstance(data, dict)
        and data.get("op") == protocol.OP_CANCEL
        and "target" in data
        and "status" not in data
    )
