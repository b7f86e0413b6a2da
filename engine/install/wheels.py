"""pyzmq for the hosts' own Pythons: wheels fetched or taken from a folder, unpacked into
the plug-in's vendor/ folder with a record of what is there."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .discovery import InstallError, Platform

VENDOR_RECORD = "sketchfill-vendor.json"
# CPython versions the hosts embed: Krita 5.2 bundles 3.10 (Windows, AppImage), GIMP 3 and
# distributions 3.11-3.13. pyzmq's abi3 wheel for 3.12 serves every later version too; an
# older pyzmq (e.g. in a --wheels folder) without one needs its own wheel for 3.13.
TARGET_PYTHONS = ("3.10", "3.11", "3.12")
_LATER_PYTHON = "3.13"


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
    found = [Wheel(path, file_sha256(path)) for path in got]
    if not found[-1].serves.endswith("+"):
        later = _fetch_one(p, _LATER_PYTHON, dest, wheels, cache)
        found.append(Wheel(later, file_sha256(later)))
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
                f"found no pyzmq wheel for CPython {version} on {platform_words(p)} {where}"
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


def platform_words(p: Platform) -> str:
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


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
