"""Planning and applying an installation of the plug-ins for one engine.

`sketchfill install-plugins` and the installers (installers/install.sh, install.ps1) use
this module. It finds the GIMP 3 and Krita profiles of a user (native packages, Flatpak,
Snap, AppImage, macOS app bundles, Windows installs), and puts in each the plug-in, the
shared client, pyzmq unpacked for the hosts' own Pythons (vendor/) and a client.json that
says how to reach or start the engine. It also enables the Krita plug-in in kritarc and
copies the shipped models into the user's data folder.

Everything is planned first (a list of actions; `--dry-run` prints it and stops) and then
applied as one transaction: each destination is built in a staging folder beside it and
swapped in by rename, the old version kept until everything succeeded, and rolled back on
any failure. A journal in the data folder lets the next run finish or undo a run that was
killed part-way. A manifest lists what was installed, for --uninstall and --repair.

The platform (`Platform`: system, home, environment, file-system root) is a parameter, so
tests lay out macOS and Windows trees on any machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform as _platform
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from .. import __version__
from ..wire import protocol
from ..wire.client import ClientConfig, EngineError
from . import plugins

GIMP = "gimp"
KRITA = "krita"
APPS = (GIMP, KRITA)
NATIVE, FLATPAK, SNAP = "native", "flatpak", "snap"
FLATPAK_IDS = {GIMP: "org.gimp.GIMP", KRITA: "org.kde.krita"}

MANIFEST = "install-manifest.json"
JOURNAL = "install-journal.json"
VENDOR_RECORD = "sketchfill-vendor.json"
KRITARC_BACKUP_SUFFIX = ".sketchfill-backup"
# CPython versions the hosts embed: Krita 5.2 bundles 3.10 (Windows, AppImage), GIMP 3 and
# distributions 3.11-3.13. pyzmq's abi3 wheel for 3.12 serves every later version too; an
# older pyzmq (e.g. in a --wheels folder) without one needs its own wheel for 3.13.
TARGET_PYTHONS = ("3.10", "3.11", "3.12")
_LATER_PYTHON = "3.13"
_GIMP_PROFILE = re.compile(r"3\.\d+")
_ENABLE_KEY = f"enable_{plugins.PLUGIN_NAME}".encode()
_PYTHON_SECTION = b"[python]"


class InstallError(Exception):
    """Why an installation cannot go ahead or failed, in words a user can act on."""


# -- where things are -----------------------------------------------------------------------


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


# -- finding the hosts ----------------------------------------------------------------------


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


# -- kritarc --------------------------------------------------------------------------------


def kritarc_enable(data: bytes) -> bytes:
    """kritarc with `[python] enable_sketchfill=true`; every other byte is kept."""
    lines = data.splitlines(keepends=True)
    nl = b"\r\n" if b"\r\n" in data else b"\n"
    entry = _ENABLE_KEY + b"=true"
    section = _section(lines)
    if section is None:
        body = data if not data or data.endswith(b"\n") else data + nl
        gap = nl if body.strip() else b""
        return body + gap + _PYTHON_SECTION + nl + entry + nl
    start, end = section
    for i in range(start + 1, end):
        if _key(lines[i]) == _ENABLE_KEY:
            if lines[i].split(b"=", 1)[1].strip() == b"true":
                return data
            lines[i] = entry + _ending(lines[i], nl)
            return b"".join(lines)
    at = max([start + 1] + [i + 1 for i in range(start + 1, end) if lines[i].strip()])
    if not lines[at - 1].endswith(b"\n"):
        lines[at - 1] += nl
    lines.insert(at, entry + nl)
    return b"".join(lines)


def kritarc_disable(data: bytes) -> bytes:
    """kritarc without SketchFill's entry, and without a [python] section left empty (the
    way kritarc_enable adds one, blank line before it included)."""
    lines = data.splitlines(keepends=True)
    section = _section(lines)
    if section is None:
        return data
    start, end = section
    keep = [i for i in range(start + 1, end) if _key(lines[i]) != _ENABLE_KEY]
    if any(lines[i].strip() for i in keep):
        return b"".join(line for i, line in enumerate(lines) if i in keep or not start < i < end)
    first = start - 1 if start > 0 and not lines[start - 1].strip() else start
    return b"".join(lines[:first] + lines[end:])


def kritarc_enabled(data: bytes) -> bool:
    return kritarc_enable(data) == data


def _section(lines: list[bytes]) -> tuple[int, int] | None:
    for start, line in enumerate(lines):
        if line.strip() == _PYTHON_SECTION:
            end = next(
                (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith(b"[")),
                len(lines),
            )
            return start, end
    return None


def _key(line: bytes) -> bytes | None:
    return line.split(b"=", 1)[0].strip() if b"=" in line else None


def _ending(line: bytes, default: bytes) -> bytes:
    stripped = line.rstrip(b"\r\n")
    return line[len(stripped) :] or default


# -- pyzmq for the hosts' Pythons ------------------------------------------------------------


@dataclass(frozen=True)
class Wheel:
    path: Path
    sha256: str

    @property
    def serves(self) -> str:
        """The Python versions this wheel loads in, e.g. "3.11" or "3.12+" (abi3)."""
        python, abi = self.path.name.split("-")[-3:-1]
        version = f"{python[2]}.{python[3:]}"
        return f"{version}+" if abi == "abi3" else version


def fetch_pyzmq(p: Platform, dest: Path, *, wheels: Path | None, cache: Path) -> list[Wheel]:
    """pyzmq wheels for TARGET_PYTHONS and later on this platform, copied into `dest`.

    From `wheels` only when given (offline installs); otherwise from the wheel cache, or
    downloaded into it. pip chooses each wheel, so its platform rules (manylinux, macOS
    versions) apply exactly as they would for the host. The versions are fetched at once.
    """
    dest.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(len(TARGET_PYTHONS)) as pool:
        got = list(pool.map(lambda v: _fetch_one(p, v, dest, wheels, cache), TARGET_PYTHONS))
    found = [Wheel(path, _sha256(path)) for path in got]
    if not found[-1].serves.endswith("+"):
        later = _fetch_one(p, _LATER_PYTHON, dest, wheels, cache)
        found.append(Wheel(later, _sha256(later)))
    return found


def _fetch_one(p: Platform, version: str, dest: Path, wheels: Path | None, cache: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="sketchfill-pip-") as tmp:
        into = Path(tmp)
        if wheels is not None:
            found, error = _pip_download(p, version, into, wheels)
        else:
            found, error = _pip_download(p, version, into, cache) if cache.is_dir() else (None, "")
            if found is None:
                found, error = _pip_download(p, version, into, None)
                if found is not None:
                    _copy_atomic(found, cache / found.name)
        if found is None:
            where = f"in {wheels}" if wheels else "in the cache or on the package index"
            raise InstallError(
                f"found no pyzmq wheel for CPython {version} on {_platform_words(p)} {where}"
                f" ({error}). Connect to the network, or pass --wheels DIR holding it (pip "
                "download --no-deps --only-binary=:all: --implementation cp "
                f"--python-version {version} {_platform_options(p)}pyzmq -d DIR)"
            )
        return _copy_atomic(found, dest / found.name)


def _copy_atomic(source: Path, dest: Path) -> Path:
    """Copy so that `dest` is complete or absent, even with two copies racing to it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
    shutil.copyfile(source, partial)
    os.replace(partial, dest)
    return dest


def _pip_download(
    p: Platform, version: str, into: Path, links: Path | None
) -> tuple[Path | None, str]:
    """The wheel pip picks for one Python version, and pip's complaint when none."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--implementation", "cp", "--python-version", version, "--dest", str(into)]
    command += ["--disable-pip-version-check", "--quiet"]
    command += _platform_options(p).split()
    if links is not None:
        command += ["--no-index", "--find-links", str(links)]
    try:
        run = subprocess.run([*command, "pyzmq"], capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"cannot run pip: {exc}"
    got = sorted(into.glob("pyzmq-*.whl"))
    if run.returncode == 0 and got:
        return got[0], ""
    errors = [line for line in run.stderr.splitlines() if line.startswith("ERROR")]
    return None, " ".join(errors[-2:]) or run.stderr.strip()[-300:] or "pip found nothing"


def _platform_options(p: Platform) -> str:
    return "".join(f"--platform {name} " for name in p.pip_platforms())


def _platform_words(p: Platform) -> str:
    platforms = p.pip_platforms()
    return platforms[0] if platforms else f"this {p.system} machine"


def unpack_wheels(wheels: Sequence[Wheel], vendor: Path) -> None:
    """Unpack every wheel into one folder. The wheels differ only in their compiled module
    (_zmq.cpython-311-....so, _zmq.abi3.so, ...), so each host Python imports its own;
    any other difference means they do not belong together."""
    vendor.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        try:
            archive = zipfile.ZipFile(wheel.path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise InstallError(f"{wheel.path} is not a readable wheel ({exc})") from None
        with archive:
            for info in archive.infolist():
                parts = Path(info.filename).parts
                if info.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
                    raise InstallError(f"{wheel.path} holds an unsafe path {info.filename!r}")
                target = vendor.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                data = archive.read(info)
                clash = target.exists() and target.read_bytes() != data
                if clash and not parts[0].endswith(".dist-info"):
                    raise InstallError(
                        f"the pyzmq wheels disagree about {info.filename}: use wheels of "
                        "one pyzmq version"
                    )
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
    record = [{"name": w.path.name, "sha256": w.sha256, "python": w.serves} for w in wheels]
    (vendor / VENDOR_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


def vendored_pythons(vendor: Path) -> list[str]:
    try:
        record = json.loads((vendor / VENDOR_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [w["python"] for w in record]


def check_client_imports(plugin_dir: Path, python: str = sys.executable) -> str | None:
    """Import the plug-in's client in a clean interpreter (no site-packages, no user
    paths: only the plug-in folder), as a host without pyzmq would, writing no bytecode
    into the user's profile. None when it works."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import sketchfill_client.client, zmq; "
        "assert zmq.__file__.startswith(sys.argv[1]), zmq.__file__"
    )
    run = subprocess.run(
        [python, "-I", "-S", "-B", "-c", code, str(plugin_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if run.returncode == 0:
        return None
    return (run.stderr.strip().splitlines() or ["no output"])[-1]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- the transaction ------------------------------------------------------------------------


class Transaction:
    """Changes to the user's folders, undoable until commit, and recoverable after a crash.

    Every step is written to a journal before it is taken. Rolling back replays the journal
    backwards; committing deletes the kept old versions and the staging folders. A journal
    found at start-up belongs to a run that was killed: `recover` finishes or undoes it.
    """

    def __init__(self, data_dir: Path):
        self.journal = data_dir / JOURNAL
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.entries: list[dict[str, Any]] = []
        self.created: list[Path] = []  # folders made for the installation (not staging)
        self._made_data_dir = _missing_parents(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self._save("open")

    def _save(self, state: str) -> None:
        body = {"state": state, "made": [str(d) for d in self._made_data_dir]}
        body["entries"] = self.entries
        _atomic_write(self.journal, json.dumps(body, indent=1).encode())

    def _record(self, **entry: Any) -> None:
        self.entries.append({k: str(v) if isinstance(v, Path) else v for k, v in entry.items()})
        self._save("open")

    def mkdirs(self, folder: Path) -> None:
        for d in _missing_parents(folder):
            self._record(op="mkdir", path=d)
            d.mkdir()
            self.created.append(d)

    def scratch(self, parent: Path, label: str) -> Path:
        """A staging folder in `parent` (same file system as what it will replace), made
        once per transaction: several things staged for one folder (e.g. two models) share
        it under their own names."""
        path = parent / f".sketchfill-{label}-{self.token}"
        if path.is_dir():
            return path
        self.mkdirs(parent)
        self._record(op="scratch", path=path)
        path.mkdir()
        return path

    def put(self, new: Path | None, dest: Path) -> None:
        """Move the staged `new` to `dest` (None: remove `dest`), keeping what was there."""
        had = dest.exists() or dest.is_symlink()
        backup = dest.parent / f".sketchfill-backup-{self.token}" / dest.name if had else None
        if backup is not None and not backup.parent.exists():
            self._record(op="scratch", path=backup.parent)
            backup.parent.mkdir()
        self._record(op="put", dest=dest, backup=backup)
        if backup is not None:
            if dest.is_dir() and not dest.is_symlink():
                os.replace(dest, backup)
            else:
                # Files are copied aside, so a file such as kritarc is never missing; the
                # copy becomes the backup by rename, so a backup that exists is complete.
                partial = backup.with_name(backup.name + ".part")
                shutil.copy2(dest, partial)
                os.replace(partial, backup)
        if new is not None:
            os.replace(new, dest)
        elif backup is not None and dest.exists():
            dest.unlink()

    def write(self, dest: Path, data: bytes) -> None:
        self.mkdirs(dest.parent)
        staged = dest.parent / f".{dest.name}.sketchfill-{self.token}"
        self._record(op="scratch", path=staged)
        staged.write_bytes(data)
        if dest.exists():
            shutil.copymode(dest, staged)
        self.put(staged, dest)

    def commit(self) -> None:
        self._save("commit")
        _finish(self.entries)
        self.journal.unlink()

    def rollback(self) -> None:
        _undo(self.entries)
        self.journal.unlink(missing_ok=True)
        _remove_empty(self._made_data_dir)


def recover(data_dir: Path) -> str | None:
    """Finish or undo a run that was killed part-way; a sentence saying which, or None."""
    journal = data_dir / JOURNAL
    try:
        body = json.loads(journal.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InstallError(
            f"cannot read {journal} ({exc}), left by an interrupted run; remove it and run "
            "again with --repair"
        ) from None
    if body.get("state") == "commit":
        _finish(body["entries"])
        done = "finished the installation that an earlier run had nearly completed"
    else:
        _undo(body["entries"])
        done = "undid the partial changes of an earlier run that was interrupted"
    journal.unlink()
    _remove_empty([Path(d) for d in body.get("made", [])])
    return done


def _undo(entries: list[dict[str, Any]]) -> None:
    for entry in reversed(entries):
        op, path = entry["op"], Path(entry.get("path") or entry["dest"])
        if op == "put":
            backup = Path(entry["backup"]) if entry["backup"] else None
            if backup is None or backup.exists() or backup.is_symlink():
                _remove(path)
            if backup is not None and (backup.exists() or backup.is_symlink()):
                os.replace(backup, path)
        elif op == "scratch":
            _remove(path)
        elif op == "mkdir":
            _remove_empty([path])


def _finish(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        if entry["op"] == "scratch":
            _remove(Path(entry["path"]))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _remove_empty(folders: Iterable[Path]) -> None:
    """Remove folders that are empty, deepest first."""
    for d in sorted(folders, key=lambda d: len(d.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()


def _missing_parents(folder: Path) -> list[Path]:
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return list(reversed(missing))


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# -- the manifest ---------------------------------------------------------------------------


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


# -- plans and their actions ----------------------------------------------------------------


@dataclass
class Settings:
    """What to install and how the plug-ins reach the engine. `endpoint` and `autostart`
    are None unless given: a re-run keeps what the user set in client.json."""

    engine_command: list[str]
    engine_venv: Path | None = None
    endpoint: str | None = None
    autostart: bool | None = None
    gimp: bool = True
    krita: bool = True
    gimp_dirs: list[Path] = field(default_factory=list)
    krita_dirs: list[Path] = field(default_factory=list)
    kritarc: Path | None = None
    wheels: Path | None = None
    models: Path | None = None
    # Plug-in sources per app (folders laid out like plugin_gimp/, plugin_krita/); default:
    # the ones shipped in the package.
    sources: Mapping[str, Path] = field(default_factory=dict)


@dataclass
class Work:
    """What the actions share while a plan is applied."""

    txn: Transaction
    vendor: Path | None = None
    kritarcs: dict[str, bool] = field(default_factory=dict)
    installed: list[Path] = field(default_factory=list)


class Action(Protocol):
    def describe(self) -> str: ...

    def apply(self, work: Work) -> None: ...


@dataclass
class VendorPyzmq:
    """Fetch and unpack pyzmq before anything in the user's folders changes."""

    platform: Platform
    wheels: Path | None
    scratch: Path

    def describe(self) -> str:
        source = self.wheels or f"the cache {self.platform.cache_dir} or the package index"
        versions = ", ".join(TARGET_PYTHONS) + " and later"
        return f"get pyzmq for CPython {versions} ({_platform_words(self.platform)}) from {source}"

    def apply(self, work: Work) -> None:
        downloaded = fetch_pyzmq(
            self.platform,
            self.scratch / "wheels",
            wheels=self.wheels,
            cache=self.platform.cache_dir,
        )
        work.vendor = self.scratch / plugins.VENDOR
        unpack_wheels(downloaded, work.vendor)


@dataclass
class InstallPlugin:
    target: Target
    settings: Settings
    source: Path

    def describe(self) -> str:
        what = "plug-in, client, pyzmq, client.json"
        new = " (creating the profile: the host has not run yet)" if self.target.new else ""
        return f"install the {self.target.label} plug-in ({what}) in {self.target.plugin_dir}{new}"

    def apply(self, work: Work) -> None:
        parent = work.txn.scratch(self.target.plugin_root, "staging")
        stage = plugins.stage_gimp if self.target.app == GIMP else plugins.stage_krita
        made = stage(parent, source=self.source, vendor=work.vendor)
        self.config().save(made / "client.json")
        for dest in self.target.paths:
            work.txn.put(parent / dest.name, dest)
        work.installed.extend(self.target.paths)

    def config(self) -> ClientConfig:
        existing = self.target.plugin_dir / "client.json"
        try:
            config = ClientConfig.load(existing) if existing.is_file() else ClientConfig()
        except EngineError:
            config = ClientConfig()  # unreadable: start from the defaults
        command = list(self.settings.engine_command)
        if self.target.flavour == FLATPAK:
            command = ["flatpak-spawn", "--host", *command]
        config.engine_command = command
        if self.settings.endpoint is not None:
            config.endpoint = self.settings.endpoint
        if self.settings.autostart is not None:
            config.autostart = self.settings.autostart
        if self.target.flavour == SNAP:
            config.autostart = False  # strict confinement cannot start a program outside it
        return config


@dataclass
class EnableInKritarc:
    kritarc: Path
    created: bool

    def describe(self) -> str:
        return f"enable the plug-in in {self.kritarc} ([python] {_ENABLE_KEY.decode()}=true)"

    def apply(self, work: Work) -> None:
        old = self.kritarc.read_bytes() if self.kritarc.is_file() else b""
        new = kritarc_enable(old)
        if new != old:
            if self.kritarc.is_file():
                backup = self.kritarc.with_name(self.kritarc.name + KRITARC_BACKUP_SUFFIX)
                work.txn.write(backup, old)
                work.installed.append(backup)
            work.txn.write(self.kritarc, new)
        work.kritarcs[str(self.kritarc)] = self.created


@dataclass
class CopyModel:
    source: Path
    dest: Path

    def describe(self) -> str:
        return f"copy the model {self.source.name} to {self.dest}"

    def apply(self, work: Work) -> None:
        work.installed.append(self.dest)
        if _same_tree(self.source, self.dest):
            return
        stage = work.txn.scratch(self.dest.parent, "staging")
        shutil.copytree(self.source, stage / self.dest.name)
        work.txn.put(stage / self.dest.name, self.dest)


@dataclass
class WriteManifest:
    path: Path
    base: Manifest
    previous: Manifest | None

    def describe(self) -> str:
        return f"write the install manifest {self.path}"

    def apply(self, work: Work) -> None:
        m = replace(self.base, paths=list(work.installed), kritarcs=dict(work.kritarcs))
        m.created_dirs = list(work.txn.created)
        if self.previous is not None:
            # Keep what earlier runs installed and this one did not touch (e.g. --no-gimp).
            m.paths += [p for p in self.previous.paths if p not in m.paths and _exists(p)]
            m.created_dirs += [d for d in self.previous.created_dirs if d not in m.created_dirs]
            for rc, created in self.previous.kritarcs.items():
                m.kritarcs[rc] = created or m.kritarcs.get(rc, False)
            known = {t.plugin_dir for t in m.targets}
            m.targets += [
                t for t in self.previous.targets if t.plugin_dir not in known and _exists(t.profile)
            ]
        # Sorted, so that a run that changes nothing (--repair) rewrites the same manifest.
        m.paths = sorted(set(m.paths))
        work.txn.write(self.path, m.to_json().encode())


@dataclass
class RemovePath:
    path: Path

    def describe(self) -> str:
        return f"remove {self.path}"

    def apply(self, work: Work) -> None:
        if _exists(self.path):
            work.txn.put(None, self.path)


@dataclass
class DisableInKritarc:
    kritarc: Path
    created: bool

    def describe(self) -> str:
        return f"remove {_ENABLE_KEY.decode()} from {self.kritarc}"

    def apply(self, work: Work) -> None:
        if not self.kritarc.is_file():
            return
        old = self.kritarc.read_bytes()
        new = kritarc_disable(old)
        if self.created and not new.strip():
            work.txn.put(None, self.kritarc)
        elif new != old:
            work.txn.write(self.kritarc, new)


@dataclass
class Plan:
    kind: str  # "install", "repair" or "uninstall"
    platform: Platform
    actions: list[Action]
    targets: list[Target] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # found before a repair
    scratch: Path | None = None
    cleanup: list[Path] = field(default_factory=list)  # folders to remove if left empty

    def report(self) -> str:
        lines = []
        if self.kind != "uninstall":
            lines.append("Found:" if self.targets else "Found no GIMP 3 or Krita profile.")
            lines += [f"  {t.label}: {t.profile}" for t in self.targets]
            if self.skipped:
                lines.append("Not found:")
                lines += [f"  {s}" for s in self.skipped]
        if self.problems:
            lines.append("Problems found:")
            lines += [f"  {p}" for p in self.problems]
        lines.append("Plan:")
        lines += [f"  {i}. {a.describe()}" for i, a in enumerate(self.actions, 1)]
        if self.notes:
            lines.append("Notes:")
            lines += [f"  - {n}" for n in self.notes]
        return "\n".join(lines)


def plan_install(p: Platform, settings: Settings, *, repair: bool = False) -> Plan:
    """What an installation would do; reads the user's folders, changes nothing."""
    previous = Manifest.load(p.data_dir)
    targets, skipped = _targets(p, settings, previous)
    scratch = Path(tempfile.gettempdir()) / f"sketchfill-install-{uuid.uuid4().hex}"
    actions: list[Action] = []
    if targets:
        actions.append(VendorPyzmq(p, settings.wheels, scratch))
    for target in targets:
        actions.append(InstallPlugin(target, settings, _source(target.app, settings)))
    previous_rcs = previous.kritarcs if previous else {}
    for rc in dict.fromkeys(t.kritarc for t in targets if t.kritarc is not None):
        created = previous_rcs.get(str(rc), not rc.exists())
        actions.append(EnableInKritarc(rc, created))
    models, notes = _models(p, settings)
    actions += models
    base = Manifest(
        engine_command=settings.engine_command,
        engine_venv=str(settings.engine_venv) if settings.engine_venv else None,
        endpoint=settings.endpoint,
        autostart=settings.autostart,
        targets=targets,
    )
    actions.append(WriteManifest(p.data_dir / MANIFEST, base, previous))
    notes += _notes(targets, settings)
    kind = "repair" if repair else "install"
    return Plan(kind, p, actions, targets, skipped, notes, scratch=scratch)


def plan_repair(p: Platform, settings: Settings) -> Plan:
    """Install again with the settings the manifest remembers, plus any profile that
    appeared since (a host update that started a new GIMP 3.x profile)."""
    manifest = Manifest.load(p.data_dir)
    if manifest is None:
        raise InstallError(
            f"nothing to repair: no install manifest in {p.data_dir}; install SketchFill first"
        )
    remembered = replace(
        settings,
        engine_command=manifest.engine_command,
        engine_venv=Path(manifest.engine_venv) if manifest.engine_venv else settings.engine_venv,
        endpoint=settings.endpoint if settings.endpoint is not None else manifest.endpoint,
        autostart=settings.autostart if settings.autostart is not None else manifest.autostart,
    )
    plan = plan_install(p, remembered, repair=True)
    plan.problems = [
        problem for t in manifest.targets if _exists(t.profile) for problem in check_target(t, p)
    ]
    return plan


def plan_uninstall(p: Platform) -> Plan:
    manifest = Manifest.load(p.data_dir)
    if manifest is None:
        leftovers = [t.plugin_dir for t in discover(p)[0] if t.plugin_dir.exists()]
        hint = "".join(f"\n  {d} (not installed by this installer)" for d in leftovers)
        raise InstallError(f"nothing to uninstall: no install manifest in {p.data_dir}{hint}")
    actions: list[Action] = [RemovePath(path) for path in manifest.paths]
    actions += [DisableInKritarc(Path(rc), created) for rc, created in manifest.kritarcs.items()]
    actions.append(RemovePath(p.data_dir / MANIFEST))
    notes = []
    if manifest.engine_venv:
        notes.append(
            f"the engine's environment {manifest.engine_venv} stays; the installer script "
            "removes it (install.sh --uninstall), or delete the folder"
        )
    return Plan("uninstall", p, actions, notes=notes, cleanup=manifest.created_dirs)


def apply(plan: Plan) -> None:
    """Carry a plan out as one transaction, checked before it is committed. Raises
    InstallError after rolling everything back."""
    recover(plan.platform.data_dir)
    txn = Transaction(plan.platform.data_dir)
    work = Work(txn)
    try:
        for action in plan.actions:
            action.apply(work)
        if plan.kind != "uninstall":
            problems = [problem for t in plan.targets for problem in check_target(t, plan.platform)]
            if problems:
                raise InstallError(
                    "the installed plug-ins do not check out: " + "; ".join(problems)
                )
    except BaseException as exc:
        try:
            txn.rollback()
        except OSError as undo:
            raise InstallError(
                f"{exc}\nUndoing the changes failed too ({undo}); {txn.journal} records them, "
                "and the next run of the installer finishes undoing them."
            ) from exc
        if isinstance(exc, (InstallError, OSError, EngineError, subprocess.SubprocessError)):
            raise InstallError(f"{exc}\n{_NOTHING_CHANGED}") from exc
        raise
    finally:
        if plan.scratch is not None:
            shutil.rmtree(plan.scratch, ignore_errors=True)
    txn.commit()
    _remove_empty(plan.cleanup)
    if plan.kind == "uninstall":
        _remove_empty([plan.platform.data_dir])


_NOTHING_CHANGED = (
    "Nothing was changed: everything is as it was before this run. Close GIMP and Krita if "
    "they are running, fix the cause above, and run the installer again."
)


def check_target(t: Target, p: Platform) -> list[str]:
    """What is wrong with an installed plug-in, in words; empty when it is complete."""
    d = t.plugin_dir
    entry = d / (f"{plugins.PLUGIN_NAME}.py" if t.app == GIMP else "__init__.py")
    wanted = [
        entry,
        d / plugins.CLIENT_PACKAGE / "client.py",
        d / plugins.VENDOR / "zmq" / "__init__.py",
    ]
    wanted += t.paths
    missing = [str(path) for path in wanted if not path.exists()]
    if missing:
        return [f"{t.label}: missing {', '.join(missing)}"]
    problems = []
    try:
        config = ClientConfig.load(d / "client.json")
    except EngineError as exc:
        return [f"{t.label}: {exc.message}"]
    engine = [c for c in config.engine_command if c not in ("flatpak-spawn", "--host")]
    if engine and Path(engine[0]).is_absolute() and not Path(engine[0]).exists():
        problems.append(f"{t.label}: the engine command {engine[0]} does not exist")
    if not vendored_pythons(d / plugins.VENDOR):
        problems.append(f"{t.label}: {d / plugins.VENDOR} has no pyzmq record")
    if t.kritarc is not None:
        rc = t.kritarc.read_bytes() if t.kritarc.is_file() else b""
        if not kritarc_enabled(rc):
            problems.append(
                f"{t.label}: the plug-in is not enabled in {t.kritarc} (Krita rewrites that file "
                "when it quits: close Krita, then run the installer with --repair)"
            )
    if p.runs_here:
        error = check_client_imports(d)
        if error:
            problems.append(f"{t.label}: the plug-in's client does not import here: {error}")
    return problems


def _targets(
    p: Platform, settings: Settings, previous: Manifest | None
) -> tuple[list[Target], list[Skipped]]:
    found, skipped = discover(p)
    targets: list[Target] = []
    for app, wanted, given in (
        (GIMP, settings.gimp, settings.gimp_dirs),
        (KRITA, settings.krita, settings.krita_dirs),
    ):
        if not wanted:
            continue
        for folder in given:
            if not folder.is_dir():
                raise InstallError(
                    f"--{app}-dir {folder} is not a folder; check the path (start the host "
                    "once to create its profile, or create the folder yourself)"
                )
            targets.append(target_for_dir(app, folder, p, settings.kritarc))
        if not given:
            targets += [t for t in found if t.app == app]
        if previous is not None:
            # Places an earlier run installed into stay up to date, even if not found now.
            targets += [t for t in previous.targets if t.app == app and _exists(t.profile)]
    unique: dict[Path, Target] = {}
    for t in targets:
        unique.setdefault(t.plugin_dir, t)
    searched = {GIMP: settings.gimp and not settings.gimp_dirs}
    searched[KRITA] = settings.krita and not settings.krita_dirs
    return list(unique.values()), [s for s in skipped if searched[s.app]]


def _source(app: str, settings: Settings) -> Path:
    source = settings.sources.get(app) or plugins.plugin_source(app)
    name = plugins.PLUGIN_NAME
    needed = [source / name / f"{name}.py"] if app == GIMP else []
    needed += [source / f"{name}.desktop", source / name / "__init__.py"] if app == KRITA else []
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        raise InstallError(
            f"this copy of SketchFill lacks its {app} plug-in ({', '.join(missing)} missing); "
            "reinstall the package"
        )
    return source


def _models(p: Platform, settings: Settings) -> tuple[list[Action], list[str]]:
    folder = settings.models
    shipped = []
    if folder is not None and folder.is_dir():
        shipped = sorted(d for d in folder.iterdir() if (d / "model.json").is_file())
    installed = p.data_dir / "models"
    if not shipped:
        if installed.is_dir() and any(installed.glob("*/model.json")):
            return [], []
        where = f" in {folder}" if folder else ""
        return [], [
            f"no model ships with this copy of SketchFill{where}: the engine answers "
            f"model_missing until one is in {installed}"
        ]
    return [CopyModel(d, installed / d.name) for d in shipped], []


def _notes(targets: list[Target], settings: Settings) -> list[str]:
    notes = []
    engine = " ".join(settings.engine_command)
    for t in targets:
        name = "GIMP" if t.app == GIMP else "Krita"
        if t.flavour == FLATPAK:
            notes.append(
                f"{name} (Flatpak) starts the engine outside its sandbox with flatpak-spawn; "
                "allow that once with: flatpak override --user "
                f"--talk-name=org.freedesktop.Flatpak {FLATPAK_IDS[t.app]} (or start the engine "
                f"yourself: {engine} serve)"
            )
        if t.flavour == SNAP:
            notes.append(
                f"{name} (Snap) is confined and cannot start the engine, so auto-start is off "
                "for it: run the engine as a user service (README, 'Snap'), or start it "
                f"yourself: {engine} serve"
            )
    if any(t.app == KRITA for t in targets):
        notes.append(
            "close Krita before installing: it rewrites kritarc when it quits; GIMP and Krita "
            "load the plug-in at their next start"
        )
    if not targets:
        endpoint = settings.endpoint or protocol.DEFAULT_ENDPOINT
        notes.append(
            "install GIMP 3 or Krita and run this again, or name a profile with --gimp-dir or "
            f"--krita-dir; the engine itself works now ({endpoint})"
        )
    return list(dict.fromkeys(notes))


def _same_tree(a: Path, b: Path) -> bool:
    if not b.is_dir():
        return False
    files_a = sorted(f.relative_to(a) for f in a.rglob("*") if f.is_file())
    files_b = sorted(f.relative_to(b) for f in b.rglob("*") if f.is_file())
    if files_a != files_b:
        return False
    return all(_sha256(a / f) == _sha256(b / f) for f in files_a)


def _exists(path: Path) -> bool:
    return path.exists() or path.is_symlink()
