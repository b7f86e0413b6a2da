"""Where GIMP 3 and Krita keep their profiles on this platform, and which of them exist.

`Platform` (system, home, environment, file-system root) is a parameter, so tests lay out
macOS and Windows trees on any machine.
"""

from __future__ import annotations

import os
import platform as _platform
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import plugins

GIMP = "gimp"
KRITA = "krita"
APPS = (GIMP, KRITA)
NATIVE, FLATPAK, SNAP = "native", "flatpak", "snap"
FLATPAK_IDS = {GIMP: "org.gimp.GIMP", KRITA: "org.kde.krita"}
_GIMP_PROFILE = re.compile(r"3\.\d+")


class InstallError(Exception):
    """Why an installation cannot go ahead or failed, in words a user can act on."""


@dataclass(frozen=True)
class Platform:
    """The machine an installation is for: `system` is "linux", "darwin" or "windows";
    `root` is where system-wide installs (/Applications, /var/lib/flatpak, /snap) live."""

    system: str
    home: Path
    env: Mapping[str, str]
    data_dir: Path
    root: Path = Path("/")
    machine: str = ""

    @classmethod
    def current(cls, data_dir: Path) -> Platform:
        system = "windows" if os.name == "nt" else sys.platform
        system = "linux" if system.startswith("linux") else system
        return cls(system, Path.home(), dict(os.environ), data_dir, machine=_platform.machine())

    @property
    def runs_here(self) -> bool:
        """Whether binaries for this platform load in this process's Python (tests lay
        out other systems' trees, whose vendored pyzmq cannot be imported here)."""
        here = Platform.current(self.data_dir)
        return (self.system, self.machine) == (here.system, here.machine)

    def _dir(self, variable: str, default: Path) -> Path:
        value = self.env.get(variable)
        return Path(value) if value else default

    @property
    def config_home(self) -> Path:
        return self._dir("XDG_CONFIG_HOME", self.home / ".config")

    @property
    def data_home(self) -> Path:
        return self._dir("XDG_DATA_HOME", self.home / ".local" / "share")

    @property
    def appdata(self) -> Path:
        return self._dir("APPDATA", self.home / "AppData" / "Roaming")

    @property
    def local_appdata(self) -> Path:
        return self._dir("LOCALAPPDATA", self.home / "AppData" / "Local")

    @property
    def cache_dir(self) -> Path:
        """Where downloaded pyzmq wheels are kept between runs (never inside a checkout)."""
        if self.system == "windows":
            return self.local_appdata / "SketchFill" / "cache" / "wheels"
        if self.system == "darwin":
            return self.home / "Library" / "Caches" / "SketchFill" / "wheels"
        return self._dir("XDG_CACHE_HOME", self.home / ".cache") / "sketchfill" / "wheels"

    def pip_platforms(self) -> list[str]:
        """pip's --platform values for this machine's hosts; empty: the running Python's."""
        arm = self.machine.lower() in ("arm64", "aarch64")
        if self.system == "windows":
            return ["win_arm64" if arm else "win_amd64"]
        if self.system == "darwin":
            # universal2 first: it also loads in an x86_64 host under Rosetta.
            return ["macosx_11_0_universal2", f"macosx_11_0_{'arm64' if arm else 'x86_64'}"]
        return []


def engine_command_for(venv: Path, system: str) -> list[str]:
    """The engine's command in a virtual environment made by the installers."""
    if system == "windows":
        return [str(venv / "Scripts" / "sketchfill.exe")]
    return [str(venv / "bin" / "sketchfill")]


@dataclass(frozen=True)
class Target:
    """One host profile to install into. `profile` is GIMP's profile folder (GIMP/3.0) or
    Krita's resource folder (the one holding pykrita/); `new` means the host is installed
    but has never run, so the installer creates the profile."""

    app: str
    flavour: str
    profile: Path
    kritarc: Path | None = None
    new: bool = False

    @property
    def plugin_root(self) -> Path:
        return self.profile / ("plug-ins" if self.app == GIMP else "pykrita")

    @property
    def plugin_dir(self) -> Path:
        return self.plugin_root / plugins.PLUGIN_NAME

    @property
    def paths(self) -> list[Path]:
        """What the plug-in puts in the profile."""
        if self.app == GIMP:
            return [self.plugin_dir]
        return [self.plugin_root / f"{plugins.PLUGIN_NAME}.desktop", self.plugin_dir]

    @property
    def label(self) -> str:
        name = f"GIMP {self.profile.name}" if self.app == GIMP else "Krita"
        return f"{name} ({_FLAVOUR_LABELS.get(self.flavour, self.flavour)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "flavour": self.flavour,
            "profile": str(self.profile),
            "kritarc": str(self.kritarc) if self.kritarc else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Target:
        rc = data.get("kritarc")
        return cls(data["app"], data["flavour"], Path(data["profile"]), Path(rc) if rc else None)


_FLAVOUR_LABELS = {NATIVE: "native", FLATPAK: "Flatpak", SNAP: "Snap"}


@dataclass(frozen=True)
class Skipped:
    app: str
    flavour: str
    reason: str

    def __str__(self) -> str:
        name = "GIMP 3" if self.app == GIMP else "Krita"
        return f"{name} ({_FLAVOUR_LABELS.get(self.flavour, self.flavour)}): {self.reason}"


@dataclass(frozen=True)
class _Location:
    """Where one flavour of a host keeps its files, and whether it is installed."""

    app: str
    flavour: str
    base: Path  # GIMP: the folder holding 3.0, 3.2...; Krita: its resource folder
    kritarc: Path | None
    installed: bool
    where: str  # how "installed" was decided, for the report


def discover(p: Platform) -> tuple[list[Target], list[Skipped]]:
    """Every GIMP 3 and Krita profile of this user, and the flavours not found (and why)."""
    targets: list[Target] = []
    skipped: list[Skipped] = []
    override = p.env.get("GIMP3_DIRECTORY")
    if override:
        # GIMP's own variable for its profile folder, on every platform.
        targets.append(Target(GIMP, NATIVE, Path(override), new=not Path(override).is_dir()))
    for loc in _locations(p):
        if loc.app == GIMP and loc.flavour == NATIVE and override:
            continue
        found = _profiles(loc)
        if found:
            targets.extend(found)
        elif loc.installed:
            # Installed, never started: create the profile the host will use.
            profile = loc.base / "3.0" if loc.app == GIMP else loc.base
            targets.append(Target(loc.app, loc.flavour, profile, loc.kritarc, new=True))
        else:
            skipped.append(Skipped(loc.app, loc.flavour, _why_skipped(loc)))
    return targets, skipped


def _profiles(loc: _Location) -> list[Target]:
    if loc.app == KRITA:
        if not loc.base.is_dir() and not (loc.kritarc and loc.kritarc.is_file()):
            return []
        return [Target(KRITA, loc.flavour, loc.base, loc.kritarc, new=not loc.base.is_dir())]
    if not loc.base.is_dir():
        return []
    versions = sorted(
        (d for d in loc.base.iterdir() if d.is_dir() and _GIMP_PROFILE.fullmatch(d.name)),
        key=lambda d: tuple(int(n) for n in d.name.split(".")),
    )
    return [Target(GIMP, loc.flavour, d) for d in versions]


def _why_skipped(loc: _Location) -> str:
    if loc.app == GIMP and (loc.base / "2.10").is_dir():
        return f"only a GIMP 2.10 profile in {loc.base}; SketchFill needs GIMP 3"
    return f"not installed ({loc.where}; no profile in {loc.base})"


def _locations(p: Platform) -> list[_Location]:
    if p.system == "windows":
        programs = _program_dirs(p)
        return [
            _Location(
                GIMP,
                NATIVE,
                p.appdata / "GIMP",
                None,
                _any_entry(programs, "gimp 3"),
                "no GIMP 3 in Program Files",
            ),
            _Location(
                KRITA,
                NATIVE,
                p.appdata / "krita",
                p.local_appdata / "kritarc",
                _any_entry(programs, "krita"),
                "no Krita in Program Files",
            ),
        ]
    if p.system == "darwin":
        apps = [p.root / "Applications", p.home / "Applications"]
        support = p.home / "Library" / "Application Support"
        return [
            _Location(
                GIMP,
                NATIVE,
                support / "GIMP",
                None,
                _any_entry(apps, "gimp", ".app", but="gimp-2"),
                "no GIMP app in /Applications",
            ),
            _Location(
                KRITA,
                NATIVE,
                support / "krita",
                p.home / "Library" / "Preferences" / "kritarc",
                _any_entry(apps, "krita", ".app"),
                "no Krita app in /Applications",
            ),
        ]
    appimage_dirs = [p.home, p.home / "Applications", p.home / "Downloads", p.home / "bin"]
    appimage_dirs.append(p.home / ".local" / "bin")
    path = [Path(d) for d in p.env.get("PATH", "").split(os.pathsep) if d]
    locations = [
        _Location(
            GIMP,
            NATIVE,
            p.config_home / "GIMP",
            None,
            _any_entry(path, "gimp-3") or _appimage(appimage_dirs, "gimp-3"),
            "no gimp-3.x on PATH, no GIMP 3 AppImage",
        ),
        _Location(
            KRITA,
            NATIVE,
            p.data_home / "krita",
            p.config_home / "kritarc",
            any((d / "krita").is_file() for d in path) or _appimage(appimage_dirs, "krita"),
            "no krita on PATH, no Krita AppImage",
        ),
    ]
    for app in APPS:
        app_id = FLATPAK_IDS[app]
        sandbox = p.home / ".var" / "app" / app_id
        installs = [
            p.data_home / "flatpak" / "app" / app_id,
            p.root / "var/lib/flatpak/app" / app_id,
        ]
        locations.append(
            _Location(
                app,
                FLATPAK,
                sandbox / "config" / "GIMP" if app == GIMP else sandbox / "data" / "krita",
                None if app == GIMP else sandbox / "config" / "kritarc",
                any(d.is_dir() for d in installs),
                f"no {app_id} Flatpak",
            )
        )
        snap_home = p.home / "snap" / app / "current"
        snaps = [p.root / "snap" / app, p.root / "var/lib/snapd/snap" / app]
        locations.append(
            _Location(
                app,
                SNAP,
                snap_home / ".config" / "GIMP" if app == GIMP else snap_home / ".local/share/krita",
                None if app == GIMP else snap_home / ".config" / "kritarc",
                any(d.is_dir() for d in snaps),
                f"no {app} snap",
            )
        )
    return locations


def _program_dirs(p: Platform) -> list[Path]:
    names = ("ProgramFiles", "ProgramW6432", "ProgramFiles(x86)")
    dirs = [Path(p.env[n]) for n in names if p.env.get(n)]
    return [*dirs, p.local_appdata / "Programs"]


def _any_entry(folders: Iterable[Path], prefix: str, suffix: str = "", but: str = "") -> bool:
    """Whether any folder holds an entry named prefix...suffix (case-insensitive), other
    than one starting with `but`."""
    for folder in folders:
        try:
            names = [e.name.lower() for e in folder.iterdir()]
        except OSError:
            continue
        if any(
            n.startswith(prefix) and n.endswith(suffix)
            for n in names
            if not but or not n.startswith(but)
        ):
            return True
    return False


def _appimage(folders: Iterable[Path], prefix: str) -> bool:
    return _any_entry(folders, prefix, ".appimage")


def target_for_dir(app: str, folder: Path, p: Platform, kritarc: Path | None = None) -> Target:
    """A target for a profile folder given on the command line (--gimp-dir, --krita-dir).
    The flavour, which decides how the engine is started, follows from the path."""
    text = folder.as_posix() + "/"
    flavour = NATIVE
    if f"/.var/app/{FLATPAK_IDS[app]}/" in text:
        flavour = FLATPAK
    elif f"/snap/{app}/" in text:
        flavour = SNAP
    if app == GIMP:
        return Target(GIMP, flavour, folder)
    if kritarc is None:
        if flavour == FLATPAK:  # .var/app/org.kde.krita/data/krita
            kritarc = folder.parent.parent / "config" / "kritarc"
        elif flavour == SNAP:  # snap/krita/current/.local/share/krita
            kritarc = folder.parents[2] / ".config" / "kritarc"
        else:
            native = [loc for loc in _locations(p) if loc.app == KRITA and loc.flavour == NATIVE]
            kritarc = native[0].kritarc
    return Target(KRITA, flavour, folder, kritarc)
