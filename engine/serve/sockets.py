"""What the server and the broker both do with their sockets: CURVE on a bound socket, and
the address where a broker publishes the cancels it forwards."""

from __future__ import annotations

import logging

import zmq
import zmq.auth

from .curve_keys import AuthorizedKeys


def enable_curve(
    ctx: zmq.Context,
    sock: zmq.Socket,
    secret_file: str,
    clients_dir: str | None,
    *,
    keys: AuthorizedKeys | None = None,
):
    """Make `sock` a CURVE server: everything encrypted, and only clients whose public key
    file is in `clients_dir` admitted (ZAP, pyzmq's ThreadAuthenticator), the folder read
    again while serving (curve_keys.py). Returns the authenticator, to stop() when the
    socket closes."""
    from zmq.auth.thread import ThreadAuthenticator

    public, secret = zmq.auth.load_certificate(secret_file)
    if not secret:
        raise ValueError(f"{secret_file} holds no secret key")
    authenticator = ThreadAuthenticator(ctx, log=logging.getLogger("sketchfill.auth"))
    authenticator.start()
    if clients_dir:
        keys = keys or AuthorizedKeys(clients_dir)
        authenticator.configure_curve_callback(domain="*", credentials_provider=keys)
    else:
        authenticator.configure_curve(domain="*", location=clients_dir)
    sock.curve_server = True
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    return authenticator


def broker_cancel_feed(backend: str) -> str:
    """Where a broker publishes the cancels it forwards: the backend's port + 1."""
    base, port = backend.rsplit(":", 1)
    return f"{base}:{int(port) + 1}"
