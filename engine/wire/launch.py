"""Finding or starting an engine: connect to the configured one, and start a local engine
when none answers and the config allows it."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import protocol
from .client import Client, CurveKeys
from .config import ClientConfig, config_dir
from .errors import EngineError


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
            if exc.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC):
                # The interpreter the installer set up is gone or broken (a removed or
                # moved environment, a Python update): the installer can rebuild it.
                raise EngineError(
                    protocol.UNREACHABLE,
                    f"cannot start the engine: {command[0]} is missing or broken "
                    f"({exc.strerror or exc}); run the SketchFill installer again with "
                    f"--repair (engine_command in {config.where()})",
                ) from None
            raise EngineError(
                protocol.UNREACHABLE,
                f"cannot start the engine with {' '.join(command)!r}: {exc.strerror or exc}; "
                f"check engine_command in {config.where()}, or run the SketchFill installer "
                "again with --repair",
            ) from None


def nothing_listens(endpoint: str) -> bool:
    """Whether a local TCP endpoint refuses connections, so no engine runs there: then
    there is no point waiting connect_timeout for a hello before starting one (that wait
    was 2 s of every cold start). False when unsure (not TCP, not local, a firewall)."""
    if not endpoint.startswith("tcp://") or not is_local(endpoint):
        return False
    host, _, port = endpoint[len("tcp://") :].rpartition(":")
    host = host.strip("[]")
    try:
        address = ("127.0.0.1" if host == "localhost" else host, int(port))
        with socket.create_connection(address, timeout=0.2):
            return False
    except ConnectionRefusedError:
        return True
    except (OSError, ValueError):
        return False


def prestart(config: ClientConfig) -> bool:
    """Start the engine in the background, without waiting for it, when the config allows
    it and nothing listens at its local endpoint: the plug-ins call this when GIMP starts
    and when Krita opens the SketchFill panel, so the first Generate finds the engine up
    (or starting; connect() then waits for it). Returns whether it started one."""
    if not (config.autostart and config.start_with_host and nothing_listens(config.endpoint)):
        return False
    start_engine(config)
    return True


def open_client(config: ClientConfig) -> Client:
    """A client for the configured endpoint, with the CURVE keys the config names."""
    curve = None
    if config.server_public_key or config.client_secret_key:
        curve = CurveKeys.from_files(config.server_public_key, config.client_secret_key)
    return Client(config.endpoint, curve=curve, reply_timeout=config.reply_timeout)


def connect(
    config: ClientConfig | None = None, *, on_status: Callable[[str], None] | None = None
) -> tuple[Client, dict[str, Any]]:
    """A client and the engine's hello, starting a local engine when none answers and
    the config allows it. Raises EngineError with a plain message otherwise."""
    config = config or ClientConfig.load()
    status = on_status or (lambda text: None)
    client = open_client(config)
    # Nothing listens at a local endpoint: no engine runs, start one without waiting for
    # a hello that cannot come.
    down = config.autostart and nothing_listens(config.endpoint)
    if not down:
        try:
            return client, client.hello(config.connect_timeout)
        except EngineError as exc:
            if exc.code != protocol.UNREACHABLE or not config.autostart:
                client.close()
                raise
            if not is_local(config.endpoint):
                client.close()
                raise EngineError(
                    exc.code,
                    f"{exc.message}; it is not on this machine, so it is not auto-started",
                ) from None
    if nothing_listens(config.endpoint) or not down:
        status("Starting the SketchFill engine...")
        proc: subprocess.Popen | None = start_engine(config)
    else:  # it began listening meanwhile: an engine started by the host is loading
        proc = None
    status("Starting the SketchFill engine: loading its model...")
    deadline = time.monotonic() + config.start_timeout
    while time.monotonic() < deadline:
        client.reset()  # forget hellos queued to nobody
        try:
            return client, client.hello(0.5)
        except EngineError:
            pass
        if proc is not None and proc.poll() is not None:
            if not nothing_listens(config.endpoint):
                # Another engine took the endpoint first (one the host started when it
                # opened): wait for that one instead.
                proc = None
                continue
            client.close()
            raise EngineError(
                protocol.UNREACHABLE,
                f"the engine exited at start-up (code {proc.returncode}): {_log_tail()}; if "
                "its interpreter or packages are broken, run the SketchFill installer again "
                f"with --repair (engine_command in {config.where()})",
            )
        if proc is None:
            time.sleep(0.1)
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
