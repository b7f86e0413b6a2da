"""Finding or starting an engine: connect to the configured one, and start a local engine
when none answers and the config allows it."""

from __future__ import annotations

import os
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
            raise EngineError(
                protocol.UNREACHABLE,
                f"cannot start the engine with {' '.join(command)!r}: {exc.strerror or exc}; "
                "check engine_command in "
                f"{ClientConfig.path()} or reinstall SketchFill",
            ) from None


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
