"""The client's settings: the client.json the installer writes for the plug-ins."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import protocol
from .errors import EngineError


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
    # Start the engine when GIMP starts or Krita opens the SketchFill panel (when
    # autostart allows), so that the first Generate finds it loaded.
    start_with_host: bool = True
    # The file these settings were read from ("" for the defaults): messages name it,
    # since each plug-in reads the client.json beside it. Not saved.
    source: str = field(default="", compare=False, repr=False)

    def where(self) -> str:
        """The settings file to name in a message."""
        return self.source or f"{self.path()} (not there: the defaults are used)"

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
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "source"}
        return cls(**known, source=str(path))

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        path = Path(path) if path else self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        data = asdict(self)
        del data["source"]
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path
