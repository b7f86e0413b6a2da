"""The install manifest: what an installation put where, for --uninstall and --repair."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from .discovery import InstallError, Target

MANIFEST = "install-manifest.json"


@dataclass
class Manifest:
    """What an installation put where, and the settings --repair installs again with."""

    engine_command: list[str]
    engine_venv: str | None = None
    endpoint: str | None = None
    autostart: bool | None = None
    targets: list[Target] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    created_dirs: list[Path] = field(default_factory=list)
    kritarcs: dict[str, bool] = field(default_factory=dict)  # path -> created by us
    version: str = __version__

    def to_json(self) -> str:
        body = {
            "format": 1,
            "version": self.version,
            "engine_command": self.engine_command,
            "engine_venv": self.engine_venv,
            "endpoint": self.endpoint,
            "autostart": self.autostart,
            "targets": [t.to_json() for t in self.targets],
            "paths": [str(p) for p in self.paths],
            "created_dirs": [str(p) for p in self.created_dirs],
            "kritarcs": self.kritarcs,
        }
        return json.dumps(body, indent=2) + "\n"

    @classmethod
    def load(cls, data_dir: Path) -> Manifest | None:
        path = data_dir / MANIFEST
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                engine_command=list(body["engine_command"]),
                engine_venv=body.get("engine_venv"),
                endpoint=body.get("endpoint"),
                autostart=body.get("autostart"),
                targets=[Target.from_json(t) for t in body.get("targets", [])],
                paths=[Path(p) for p in body.get("paths", [])],
                created_dirs=[Path(p) for p in body.get("created_dirs", [])],
                kritarcs=dict(body.get("kritarcs", {})),
                version=body.get("version", "?"),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InstallError(
                f"the install manifest {path} is damaged ({exc}); move it away and install again"
            ) from None
