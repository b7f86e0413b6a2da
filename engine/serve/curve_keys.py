"""The authorised-clients folder of studio mode, read again while the engine runs.

pyzmq's authenticator reads the folder once; here every handshake and every request asks
`allows(key)`, which looks at the folder's listing again when it is older than `refresh`
seconds and reloads the keys only when a file was added, removed or changed. So a key
added is admitted, and a key deleted is refused (new connections and the requests of
connections already open), within `refresh` seconds, without a restart.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import zmq.auth

log = logging.getLogger("sketchfill.auth")

REFRESH_SECONDS = 1.0


class AuthorizedKeys:
    def __init__(self, folder: str | os.PathLike[str], refresh: float = REFRESH_SECONDS):
        self.folder = os.fspath(folder)
        self.refresh = refresh
        self._lock = threading.Lock()
        self._keys: frozenset[bytes] = frozenset()
        self._signature: tuple | None = None
        self._checked = -float("inf")
        self._reload()

    def allows(self, z85_key: bytes) -> bool:
        with self._lock:
            if time.monotonic() - self._checked >= self.refresh:
                self._reload()
            return z85_key in self._keys

    # pyzmq's credentials-provider interface (ThreadAuthenticator.configure_curve_callback)
    def callback(self, domain: str, key: bytes) -> bool:
        return self.allows(key)

    def _reload(self) -> None:
        self._checked = time.monotonic()
        try:
            with os.scandir(self.folder) as entries:
                signature = tuple(
                    sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in entries)
                )
        except OSError as exc:
            if self._keys:
                log.warning("cannot read %s (%s): no client is admitted", self.folder, exc)
            self._keys, self._signature = frozenset(), None
            return
        if signature == self._signature:
            return
        try:
            keys = zmq.auth.load_certificates(self.folder)
        except Exception as exc:  # a half-written key file: try again on the next look
            log.warning("cannot read the keys in %s: %s", self.folder, exc)
            return
        self._keys = frozenset(k if isinstance(k, bytes) else k.encode() for k in keys)
        self._signature = signature
        log.info("%d client keys authorised from %s", len(self._keys), self.folder)
