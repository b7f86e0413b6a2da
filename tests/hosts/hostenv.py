"""Provision and drive the REAL hosts (GIMP 3 and Krita) for tests, headless.

Set-up (idempotent, verified and repaired on every call, cheap when cached):

- GIMP 3.0.x (and Krita 5.2.x unless SKETCHFILL_CHROOT_KRITA=0) in a Debian trixie chroot
  at ``$SKETCHFILL_HOSTS_DIR/trixie`` (default ``/var/cache/sketchfill-hosts/trixie``),
  built in a temporary folder beside it and renamed when complete.
- Krita 5.1.5 on the Debian 12 host (apt), plus pyzmq for Krita's embedded Python 3.11,
  installed with ``pip install --target`` into ``$SKETCHFILL_HOSTS_DIR/pyzmq-cp311``
  (falls back to apt's python3-zmq when pip cannot reach an index).

Runners (each starts the host, feeds it, collects a verdict):

- ``run_gimp_batch(script, files=(), env=None, plugin_dirs=())`` -> ``HostRun``
- ``run_krita(module_dir, module, func, args)`` -> ``KritaVerdict``

Command line (from the repository root)::

    python -m tests.hosts.hostenv setup            # or: python tests/hosts/hostenv.py setup
    python -m tests.hosts.hostenv status
    python -m tests.hosts.hostenv gimp [--gui] [--plugin DIR]... [FILE]... < script.py
    python -m tests.hosts.hostenv krita [--chroot] MODULE_DIR MODULE FUNC [ARG]...
    python -m tests.hosts.hostenv destroy          # delete chroot, HOME templates, pyzmq

Standard library only: this file must not depend on the engine.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import glob
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
INHOST = HERE / "inhost"  # stdlib-only helpers importable inside the hosts' Python

DEFAULT_HOSTS_DIR = "/var/cache/sketchfill-hosts"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SUITE = "trixie"

# What the trixie chroot must hold. xvfb/xauth/xdotool are small (~3 s) and let a test run
# the full GIMP GUI under Xvfb, the only way to press Edit > Undo (the PDB has no undo).
CHROOT_GIMP_PKGS = (
    "gimp",
    "python3-gi",
    "gir1.2-gimp-3.0",
    "gir1.2-gegl-0.4",
    "python3-zmq",
    "xvfb",
    "xauth",
    "xdotool",
)
CHROOT_KRITA_PKGS = ("krita", "python3-pyqt5")
HOST_KRITA_PKGS = ("krita", "python3-pyqt5", "python3-sip", "xvfb", "xauth")

# Files that must exist when the package is "installed" (something may delete files).
CHROOT_FILES = {
    "gimp": ("usr/bin/gimp-console-3.0", "usr/bin/gimp-3.0"),
    "python3-gi": ("usr/lib/python3/dist-packages/gi/__init__.py",),
    "gir1.2-gimp-3.0": ("usr/lib/*/girepository-1.0/Gimp-3.0.typelib",),
    "gir1.2-gegl-0.4": ("usr/lib/*/girepository-1.0/Gegl-0.4.typelib",),
    "python3-zmq": ("usr/lib/python3/dist-packages/zmq/__init__.py",),
    "xvfb": ("usr/bin/Xvfb", "usr/bin/xvfb-run"),
    "xauth": ("usr/bin/xauth",),
    "xdotool": ("usr/bin/xdotool",),
    "krita": ("usr/bin/kritarunner",),
    "python3-pyqt5": ("usr/lib/python3/dist-packages/PyQt5/__init__.py",),
}
HOST_FILES = {
    "krita": ("/usr/bin/kritarunner",),
    "python3-pyqt5": ("/usr/lib/python3/dist-packages/PyQt5/__init__.py",),
    "xvfb": ("/usr/bin/Xvfb",),
    "xauth": ("/usr/bin/xauth",),
}

APT_ENV = {
    "DEBIAN_FRONTEND": "noninteractive",
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
}
APT_OPTS = ("-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300")

# Environment for anything Krita runs: PATH must not start with a venv/pyenv bin folder or
# Krita's embedded Python loads the wrong standard library ("No module named 'PyQt5'").
HOST_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


_READY: dict[str, Any] = {}  # what this process has verified already


class HostSetupError(RuntimeError):
    """A host could not be provided; the message says what failed and how to retry."""


class HostRunError(AssertionError):
    """A host ran but did not succeed (raised by HostRun.check / KritaVerdict.check)."""


# --------------------------------------------------------------------------------------
# configuration


def hosts_dir() -> Path:
    return Path(os.environ.get("SKETCHFILL_HOSTS_DIR") or DEFAULT_HOSTS_DIR)


def chroot_dir() -> Path:
    return hosts_dir() / SUITE


def want_chroot_krita() -> bool:
    return os.environ.get("SKETCHFILL_CHROOT_KRITA", "1").strip().lower() not in {
        "0",
        "no",
        "false",
        "off",
    }


def chroot_packages() -> tuple[str, ...]:
    return CHROOT_GIMP_PKGS + (CHROOT_KRITA_PKGS if want_chroot_krita() else ())


def _log(msg: str) -> None:
    print(f"[hostenv {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _tail(text: str | bytes | None, n: int = 3000) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if len(text) <= n else "..." + text[-n:]


def _run(
    cmd: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(cmd),
        env=dict(env) if env is not None else None,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )


def debian_mirror() -> str:
    """The Debian mirror that apt on this machine already uses (env SKETCHFILL_DEBIAN_MIRROR
    overrides); falls back to deb.debian.org."""
    override = os.environ.get("SKETCHFILL_DEBIAN_MIRROR")
    if override:
        return override.rstrip("/")
    candidates: list[tuple[str, list[str]]] = []  # (uri, suites)
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            continue
        if path.endswith(".sources"):
            for para in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in para.splitlines():
                    if line.startswith("#") or ":" not in line or line[:1].isspace():
                        continue
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.strip()
                if fields.get("enabled", "yes").lower() == "no":
                    continue
                if "deb" not in fields.get("types", "").split():
                    continue
                for uri in fields.get("uris", "").split():
                    candidates.append((uri, fields.get("suites", "").split()))
        elif path.endswith(".list"):
            for line in text.splitlines():
                words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    candidates.append((words[1], [words[2]]))
    debian_suites = {"bookworm", "bookworm-updates", "trixie", "stable", "testing", "sid"}
    for uri, suites in candidates:
        if "security" in uri or not uri.startswith(("http://", "https://")):
            continue
        if any(s in debian_suites for s in suites) and "/debian" in uri:
            return uri.rstrip("/")
    return DEFAULT_MIRROR


@contextlib.contextmanager
def _locked(path: Path, what: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"waiting for another process holding {path} ({what})")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _require_root() -> None:
    if os.geteuid() != 0:
        raise HostSetupError(
            "the host test set-up needs root (apt-get, debootstrap, chroot, unshare -m); "
            "run as root or set SKETCHFILL_SKIP_HOSTS=1 to skip the host tests"
        )


def _mounts_under(path: Path) -> list[str]:
    """Mount points under path in this mount namespace (never delete across a mount)."""
    prefix = str(path.resolve()).rstrip("/") + "/"
    found = []
    try:
        with open("/proc/self/mounts") as fh:
            for line in fh:
                target = line.split()[1].replace("\\040", " ")
                if target == prefix[:-1] or target.startswith(prefix):
                    found.append(target)
    except OSError:
        pass
    return found


def _safe_rmtree(path: Path) -> None:
    if not path.exists() and not path.is_symlink():
        return
    mounts = _mounts_under(path)
    if mounts:
        raise HostSetupError(f"refusing to delete {path}: mounts under it: {mounts[:5]}")
    shutil.rmtree(path)


# --------------------------------------------------------------------------------------
# host (Debian 12) packages


def _dpkg_installed(pkgs: Iterable[str], chroot: Path | None = None) -> set[str]:
    cmd = ["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n", *pkgs]
    if chroot is not None:
        cmd = ["chroot", str(chroot), "env", "-i", *(f"{k}={v}" for k, v in APT_ENV.items()), *cmd]
    r = _run(cmd, timeout=120)
    if chroot is not None and r.returncode not in (0, 1):
        raise _BrokenChroot(f"dpkg-query in the chroot failed ({r.returncode}): {_tail(r.stderr)}")
    installed = set()
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("ii"):
            installed.add(parts[0].split(":")[0])
    return installed


def _files_ok(files: Mapping[str, Sequence[str]], pkgs: Iterable[str], root: Path) -> list[str]:
    """Packages whose marker files are gone (dpkg may still say installed)."""
    broken = []
    for pkg in pkgs:
        for pattern in files.get(pkg, ()):
            if not glob.glob(str(root / pattern.lstrip("/"))):
                broken.append(pkg)
                break
    return broken


def _host_apt_install(pkgs: Sequence[str], *, reinstall: bool = False) -> None:
    cmd = ["apt-get", "install", *APT_OPTS, *(["--reinstall"] if reinstall else []), *pkgs]
    _log("host: " + " ".join(cmd))
    r = _run(cmd, env=APT_ENV)
    if r.returncode != 0:
        _log("host: apt-get install failed; running apt-get update and retrying")
        u = _run(["apt-get", "update", "-q", "-o", "DPkg::Lock::Timeout=300"], env=APT_ENV)
        r = _run(cmd, env=APT_ENV)
        if r.returncode != 0:
            raise HostSetupError(
                f"host apt-get install {' '.join(pkgs)} failed (rc {r.returncode}).\n"
                f"apt-get update said: {_tail(u.stdout + u.stderr, 1500)}\n"
                f"install said: {_tail(r.stdout + r.stderr)}\n"
                "Is the Debian mirror reachable? (set SKETCHFILL_SKIP_HOSTS=1 to skip)"
            )


def _ensure_host_pkgs(pkgs: Sequence[str], files: Mapping[str, Sequence[str]]) -> list[str]:
    missing = [p for p in pkgs if p not in _dpkg_installed(pkgs)]
    if missing:
        _host_apt_install(missing)
    broken = _files_ok(files, [p for p in pkgs if p not in missing], Path("/"))
    if broken:
        _host_apt_install(broken, reinstall=True)
    still = [p for p in pkgs if p not in _dpkg_installed(pkgs)] + _files_ok(files, pkgs, Path("/"))
    if still:
        raise HostSetupError(f"host packages still missing after install: {sorted(set(still))}")
    return missing + broken


def krita_python_version() -> tuple[int, int]:
    """The Python that the host's Krita embeds (from its libpython dependency)."""
    r = _run(["dpkg-query", "-W", "-f=${Depends}", "krita"], timeout=60)
    m = re.search(r"libpython3\.(\d+)", r.stdout)
    return (3, int(m.group(1))) if m else (3, 11)


def _pyzmq_dir(pyver: tuple[int, int]) -> Path:
    return hosts_dir() / f"pyzmq-cp{pyver[0]}{pyver[1]}"


def _check_zmq_import(pyver: tuple[int, int], pythonpath: str | None) -> str | None:
    """pyzmq version as seen by the system Python Krita embeds, or None."""
    exe = f"/usr/bin/python{pyver[0]}.{pyver[1]}"
    if not os.path.exists(exe):
        return "unchecked"
    env = {"PATH": HOST_PATH, "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    r = _run([exe, "-c", "import zmq; print(zmq.__version__)"], env=env, timeout=60)
    return r.stdout.strip() if r.returncode == 0 else None


def _ensure_krita_pyzmq() -> str | None:
    """Provide pyzmq to Krita's embedded Python. Returns the folder to put on PYTHONPATH,
    or None when apt's python3-zmq (system dist-packages) serves instead."""
    pyver = krita_python_version()
    target = _pyzmq_dir(pyver)
    stamp = target / ".sketchfill-ok"
    if stamp.exists() and (target / "zmq" / "__init__.py").exists():
        return str(target)
    with _locked(hosts_dir() / ".pyzmq.lock", "pyzmq"):
        if stamp.exists() and (target / "zmq" / "__init__.py").exists():
            return str(target)
        for stale in hosts_dir().glob(target.name + ".building-*"):
            _safe_rmtree(stale)  # left by a killed run
        tmp = Path(tempfile.mkdtemp(prefix=target.name + ".building-", dir=hosts_dir()))
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-compile",
            "--retries",
            "2",
            "--target",
            str(tmp),
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            f"{pyver[0]}.{pyver[1]}",
            "--platform",
            "manylinux_2_28_x86_64",
            "pyzmq",
        ]
        _log("krita pyzmq: " + " ".join(cmd))
        r = _run(cmd, env={**os.environ, "PIP_NO_INPUT": "1"}, timeout=600)
        version = _check_zmq_import(pyver, str(tmp)) if r.returncode == 0 else None
        if version:
            _safe_rmtree(target)
            (tmp / ".sketchfill-ok").write_text(version + "\n")
            os.rename(tmp, target)
            return str(target)
        _safe_rmtree(tmp)
        _log(f"krita pyzmq: pip --target failed ({_tail(r.stderr, 800)}); using apt python3-zmq")
    _ensure_host_pkgs(["python3-zmq"], {})
    if not _check_zmq_import(pyver, None):
        raise HostSetupError("neither pip --target pyzmq nor apt python3-zmq gives Krita zmq")
    return None


# --------------------------------------------------------------------------------------
# the trixie chroot


class _BrokenChroot(Exception):
    pass


def _chroot_env_args(extra: Mapping[str, str] | None = None) -> list[str]:
    env = dict(APT_ENV)
    env.update(extra or {})
    return ["env", "-i", *(f"{k}={v}" for k, v in env.items())]


def _chroot_sh(root: Path, script: str, *, timeout: float = 1800) -> subprocess.CompletedProcess:
    return _run(["chroot", str(root), *_chroot_env_args(), "sh", "-c", script], timeout=timeout)


def _prepare_chroot_files(root: Path) -> None:
    # name resolution for apt (debootstrap copies it once; the host's may change)
    with contextlib.suppress(OSError):
        resolv = root / "etc" / "resolv.conf"
        if resolv.is_symlink():
            resolv.unlink()
        resolv.write_text(Path("/etc/resolv.conf").read_text())
    # never start services from package scripts
    policy = root / "usr" / "sbin" / "policy-rc.d"
    if not policy.exists():
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)


def _chroot_apt_install(root: Path, pkgs: Sequence[str], *, reinstall: bool = False) -> None:
    _prepare_chroot_files(root)
    flags = " ".join(shlex.quote(o) for o in APT_OPTS) + (" --reinstall" if reinstall else "")
    names = " ".join(shlex.quote(p) for p in pkgs)
    script = (
        f"(apt-get install {flags} {names} || "
        f"(apt-get update -q && apt-get install {flags} {names})) && apt-get clean"
    )
    _log(f"chroot: apt-get install {'--reinstall ' if reinstall else ''}{' '.join(pkgs)}")
    r = _chroot_sh(root, script)
    if r.returncode != 0:
        raise HostSetupError(
            f"apt-get install {' '.join(pkgs)} in the {SUITE} chroot {root} failed "
            f"(rc {r.returncode}):\n{_tail(r.stdout + r.stderr)}\n"
            "Is the Debian mirror reachable? (set SKETCHFILL_SKIP_HOSTS=1 to skip)"
        )


def _build_chroot(final: Path, pkgs: Sequence[str]) -> None:
    parent = final.parent
    for stale in parent.glob(final.name + ".building-*"):
        _log(f"chroot: removing unfinished build {stale}")
        _safe_rmtree(stale)
    if not shutil.which("debootstrap"):
        _ensure_host_pkgs(["debootstrap"], {})
    mirror = debian_mirror()
    tmp = Path(tempfile.mkdtemp(prefix=final.name + ".building-", dir=parent))
    t0 = time.monotonic()
    _log(f"chroot: debootstrap --variant=minbase {SUITE} {tmp} {mirror}")
    # in a private mount namespace: the /proc and /sys that debootstrap mounts into the
    # target vanish with it even when it is killed, so the folder can always be deleted
    cmd = ["unshare", "-m", "--propagation", "private", "debootstrap", "--variant=minbase"]
    r = _run([*cmd, SUITE, str(tmp), mirror], env=APT_ENV)
    if r.returncode != 0:
        log = tmp / "debootstrap" / "debootstrap.log"
        detail = log.read_text(errors="replace") if log.exists() else r.stdout + r.stderr
        with contextlib.suppress(HostSetupError, OSError):
            _safe_rmtree(tmp)
        raise HostSetupError(
            f"debootstrap {SUITE} from {mirror} failed (rc {r.returncode}):\n{_tail(detail)}\n"
            "Is the mirror reachable? Override it with SKETCHFILL_DEBIAN_MIRROR, or set "
            "SKETCHFILL_SKIP_HOSTS=1 to skip the host tests."
        )
    _log(f"chroot: debootstrap took {time.monotonic() - t0:.0f} s")
    (tmp / "etc" / "apt" / "sources.list").write_text(f"deb {mirror} {SUITE} main\n")
    _prepare_chroot_files(tmp)
    u = _chroot_sh(tmp, "apt-get update -q")
    if u.returncode != 0:
        raise HostSetupError(f"apt-get update in the new chroot failed:\n{_tail(u.stderr)}")
    _chroot_apt_install(tmp, pkgs)
    (tmp / "etc" / "sketchfill-hosts.json").write_text(
        json.dumps({"built": time.strftime("%Y-%m-%dT%H:%M:%S"), "mirror": mirror}) + "\n"
    )
    os.rename(tmp, final)  # atomic: a killed run leaves only a *.building-* folder
    _log(f"chroot: ready at {final} after {time.monotonic() - t0:.0f} s")


def _repair_chroot(root: Path, pkgs: Sequence[str]) -> list[str]:
    if not (root / "usr" / "bin" / "dpkg-query").exists():
        raise _BrokenChroot("no dpkg-query")
    installed = _dpkg_installed(pkgs, chroot=root)
    missing = [p for p in pkgs if p not in installed]
    if missing:
        _chroot_apt_install(root, missing)
    broken = _files_ok(CHROOT_FILES, [p for p in pkgs if p not in missing], root)
    if broken:
        _chroot_apt_install(root, broken, reinstall=True)
    still = [p for p in pkgs if p not in _dpkg_installed(pkgs, chroot=root)]
    still += _files_ok(CHROOT_FILES, pkgs, root)
    if still:
        raise HostSetupError(f"chroot packages still missing after install: {sorted(set(still))}")
    return missing + broken


def ensure_chroot() -> Path:
    """The trixie chroot with GIMP (and Krita 5.2 unless SKETCHFILL_CHROOT_KRITA=0)."""
    if "chroot" in _READY:
        return chroot_dir()
    _require_root()
    root = chroot_dir()
    pkgs = chroot_packages()
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HostSetupError(f"cannot create {root.parent}: {exc}") from exc
    with _locked(root.parent / ".trixie.lock", "chroot set-up"):
        if root.exists():
            try:
                fixed = _repair_chroot(root, pkgs)
                if fixed:
                    _log(f"chroot: repaired {fixed}")
            except _BrokenChroot as exc:
                _log(f"chroot: {root} is broken ({exc}); rebuilding")
                trash = root.with_name(root.name + ".building-broken")
                _safe_rmtree(trash)
                os.rename(root, trash)
                _safe_rmtree(trash)
                _build_chroot(root, pkgs)
        else:
            _build_chroot(root, pkgs)
    _READY["chroot"] = True
    return root


def chroot_version(pkg: str) -> str:
    r = _run(["chroot", str(chroot_dir()), "dpkg-query", "-W", "-f=${Version}", pkg], timeout=60)
    return r.stdout.strip()


def host_version(pkg: str) -> str:
    return _run(["dpkg-query", "-W", "-f=${Version}", pkg], timeout=60).stdout.strip()


# --------------------------------------------------------------------------------------
# public set-up entry points


def ensure_gimp() -> Path:
    """GIMP 3 in the trixie chroot; returns the chroot path. Raises HostSetupError."""
    root = ensure_chroot()
    if "gimp-version" not in _READY:
        _READY["gimp-version"] = chroot_version("gimp")
    return root


def ensure_krita_system() -> str | None:
    """Krita 5.1.5 on the host; returns the pyzmq folder for PYTHONPATH (None: apt's)."""
    if "krita-system" in _READY:
        return _READY["krita-system"]
    _require_root()
    hosts_dir().mkdir(parents=True, exist_ok=True)
    with _locked(hosts_dir() / ".host-apt.lock", "host packages"):
        fixed = _ensure_host_pkgs(HOST_KRITA_PKGS, HOST_FILES)
        if fixed:
            _log(f"host: installed {fixed}")
    pyzmq = _ensure_krita_pyzmq()
    _READY["krita-system-version"] = host_version("krita")
    _READY["krita-system"] = pyzmq
    return pyzmq


def ensure_krita_chroot() -> Path:
    """Krita 5.2 in the trixie chroot (unless SKETCHFILL_CHROOT_KRITA=0)."""
    if not want_chroot_krita():
        raise HostSetupError("SKETCHFILL_CHROOT_KRITA=0: Krita is not installed in the chroot")
    root = ensure_chroot()
    if "krita-chroot-version" not in _READY:
        _READY["krita-chroot-version"] = chroot_version("krita")
    return root


def setup(*, gimp: bool = True, krita: bool = True, chroot_krita: bool | None = None) -> dict:
    """Provide the hosts, the chroot and the host Krita in parallel (cold: ~2 min).

    Returns versions and seconds; a host that failed has its message under
    ``errors[name]`` (names: "gimp", "krita-system", "krita-chroot") instead of raising,
    so that one broken host does not hide the others."""
    import threading

    if chroot_krita is None:
        chroot_krita = gimp and want_chroot_krita()
    t0 = time.monotonic()
    info: dict[str, Any] = {"hosts_dir": str(hosts_dir()), "errors": {}}

    def chroot_part() -> None:
        try:
            info["chroot"] = str(ensure_gimp())
            info["gimp"] = _READY["gimp-version"]
        except HostSetupError as exc:
            info["errors"]["gimp"] = str(exc)
            if chroot_krita:
                info["errors"]["krita-chroot"] = str(exc)
            return
        finally:
            info["seconds_chroot"] = round(time.monotonic() - t0, 1)
        if chroot_krita:
            try:
                ensure_krita_chroot()
                info["krita_chroot"] = _READY["krita-chroot-version"]
            except HostSetupError as exc:
                info["errors"]["krita-chroot"] = str(exc)

    def krita_part() -> None:
        try:
            pyzmq = ensure_krita_system()
            info["krita_system"] = _READY["krita-system-version"]
            info["krita_pyzmq"] = pyzmq or "apt python3-zmq"
        except HostSetupError as exc:
            info["errors"]["krita-system"] = str(exc)
        finally:
            info["seconds_krita_system"] = round(time.monotonic() - t0, 1)

    threads = []
    if gimp or chroot_krita:
        threads.append(threading.Thread(target=chroot_part, name="hostenv-chroot"))
    if krita:
        threads.append(threading.Thread(target=krita_part, name="hostenv-krita"))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    info["seconds"] = round(time.monotonic() - t0, 1)
    return info


# --------------------------------------------------------------------------------------
# per-session state: one HOME per host, one GIMP profile, run folders


class _Session:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sketchfill-hosts-", dir="/tmp"))
        self.root.chmod(0o755)
        self.counter = 0

    def dir(self, name: str, mode: int = 0o755) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        return path

    def run_dir(self, kind: str) -> Path:
        self.counter += 1
        return self.dir(f"runs/{self.counter:03d}-{kind}")

    def home(self, kind: str, version: str, warm_up: Callable[[Path], bool]) -> tuple[Path, bool]:
        """This session's HOME for a host kind; (path, fresh). A first start with an empty
        HOME costs 5-14 s, so a warmed HOME is kept as a template under
        $SKETCHFILL_HOSTS_DIR/homes and copied (0.1 s) into each new session."""
        home = self.root / f"home-{kind}"
        if home.exists():
            return home, False
        tpl = hosts_dir() / "homes" / f"{kind}-{re.sub(r'[^A-Za-z0-9._-]', '_', version)}"
        use_tpl = os.environ.get("SKETCHFILL_HOSTS_FRESH_HOME") != "1"
        if use_tpl and (tpl / ".sketchfill-ok").exists():
            try:
                skip = shutil.ignore_patterns(".sketchfill-ok")
                shutil.copytree(tpl, home, symlinks=True, ignore=skip)
                return home, False
            except OSError as exc:
                _log(f"HOME template {tpl} unusable ({exc}); starting fresh")
                shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        if use_tpl and warm_up(home):
            _capture_template(home, tpl, kind)
        return home, True

    def close(self) -> None:
        if os.environ.get("SKETCHFILL_HOSTS_KEEP") == "1":
            _log(f"keeping session folder {self.root}")
            return
        with contextlib.suppress(OSError, HostSetupError):
            _safe_rmtree(self.root)


def _capture_template(home: Path, tpl: Path, kind: str) -> None:
    tpl.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=tpl.name + ".building-", dir=tpl.parent))
    try:
        shutil.copytree(home, tmp, symlinks=True, dirs_exist_ok=True)
        (tmp / ".sketchfill-ok").write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
        for old in tpl.parent.glob(kind + "-*"):
            if old not in (tpl, tmp):
                _safe_rmtree(old)  # templates of other versions, unfinished copies
        os.rename(tmp, tpl)
        _log(f"saved warmed HOME template {tpl}")
    except (OSError, shutil.Error, HostSetupError) as exc:
        _log(f"could not save HOME template {tpl}: {exc}")
        shutil.rmtree(tmp, ignore_errors=True)


HOME_KINDS = ("gimp", "krita-system", "krita-chroot")

_SESSION: _Session | None = None


def session() -> _Session:
    global _SESSION
    if _SESSION is None:
        _SESSION = _Session()
        atexit.register(close_session)
    return _SESSION


def close_session() -> None:
    global _SESSION
    if _SESSION is not None:
        _SESSION.close()
        _SESSION = None


# --------------------------------------------------------------------------------------
# running things


class HostRun(subprocess.CompletedProcess):
    """A finished host process. ``workdir`` is a fresh folder the script may write to (also
    in env SKETCHFILL_WORKDIR, same path inside the chroot); ``result`` is its
    result.json, parsed, when the script wrote one."""

    def __init__(
        self,
        args: Any,
        returncode: int,
        stdout: str,
        stderr: str,
        *,
        workdir: Path,
        seconds: float,
        timed_out: bool = False,
    ) -> None:
        super().__init__(args, returncode, stdout, stderr)
        self.workdir = workdir
        self.seconds = seconds
        self.timed_out = timed_out

    @property
    def output(self) -> str:
        return (self.stdout or "") + (self.stderr or "")

    @property
    def result(self) -> Any:
        path = self.workdir / "result.json"
        return json.loads(path.read_text()) if path.exists() else None

    def check(self) -> HostRun:
        if self.returncode != 0:
            why = "timed out" if self.timed_out else f"exited {self.returncode}"
            raise HostRunError(f"host run {why} after {self.seconds:.1f} s:\n{_tail(self.output)}")
        return self


def _popen_run(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    stdin_text: str | None,
    timeout: float,
    workdir: Path,
) -> HostRun:
    t0 = time.monotonic()
    proc = subprocess.Popen(
        list(cmd),
        env=dict(env) if env is not None else None,
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,  # own process group: GIMP, its plug-ins, Xvfb die together
    )
    timed_out = False
    try:
        out, err = proc.communicate(stdin_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err = (err or "") + f"\n[hostenv] killed after {timeout} s timeout\n"
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers (Xvfb, plug-ins) of this run only
    rc = 124 if timed_out else proc.returncode
    return HostRun(
        list(cmd),
        rc,
        out or "",
        err or "",
        workdir=workdir,
        seconds=time.monotonic() - t0,
        timed_out=timed_out,
    )


def _visible(path: Path, roots: Iterable[Path]) -> bool:
    return any(path == r or r in path.parents for r in roots)


def _chroot_command(
    inner: Sequence[str], env: Mapping[str, str], binds: Sequence[tuple[Path, bool]]
) -> list[str]:
    """unshare -m: in a private mount namespace that vanishes with the process, give the
    chroot a fresh tmpfs /tmp (X locks and sockets, GIMP's /tmp/gimp never pile up), bind
    each (path, read_only) at the same path inside it, then chroot and exec inner."""
    root = chroot_dir()
    tmp = root / "tmp"
    lines = ["set -e", f"mount -t tmpfs -o mode=1777 sketchfill-tmp {shlex.quote(str(tmp))}"]
    for src, read_only in binds:
        dst = root / str(src).lstrip("/")
        if tmp not in dst.parents:
            # Mount points stay in the chroot for good: removing one while another test
            # session has something mounted on it would detach that session's mount.
            dst.mkdir(parents=True, exist_ok=True)
        q = shlex.quote(str(dst))
        lines.append(f"mkdir -p {q}")
        lines.append(f"mount --bind {shlex.quote(str(src))} {q}")
        if read_only:
            lines.append(f"mount -o remount,bind,ro {q}")
    env_args = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    inner_args = " ".join(shlex.quote(a) for a in inner)
    lines.append(f"exec chroot {shlex.quote(str(root))} env -i {env_args} {inner_args}")
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", "\n".join(lines)]


def _sync_plugins(profile: Path, plugin_dirs: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Copy each plug-in folder NAME (holding NAME.py) to profile/plug-ins/NAME; drop others.
    copy2 keeps mtimes so GIMP re-queries only plug-ins that changed."""
    dest_root = profile / "plug-ins"
    dest_root.mkdir(parents=True, exist_ok=True)
    names = []
    for src in map(Path, plugin_dirs):
        name = src.name
        if not (src / f"{name}.py").is_file():
            raise ValueError(f"plug-in folder {src} must hold {name}.py")
        dest = dest_root / name
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (dest / f"{name}.py").chmod(0o755)
        names.append(name)
    for old in dest_root.iterdir():
        if old.name not in names:
            shutil.rmtree(old) if old.is_dir() else old.unlink()
    return names


GIMP_SCREEN = "-screen 0 1280x1024x24"


def _free_x_display() -> int:
    """An X display number nobody uses. Each run has its own /tmp, so xvfb-run -a cannot see
    other runs' lock files; the chroot shares the network namespace, so look for Xvfb's
    abstract sockets in /proc/net/unix instead."""
    import random

    try:
        used = Path("/proc/net/unix").read_text()
    except OSError:
        used = ""
    for _ in range(200):
        n = random.randint(100, 2000)
        if f"/tmp/.X11-unix/X{n}\n" not in used and not Path(f"/tmp/.X{n}-lock").exists():
            return n
    return random.randint(2000, 30000)


def _gimp_home() -> Path:
    """This session's GIMP folder: home/ (HOME) and profile/ (GIMP3_DIRECTORY)."""

    def warm_up(folder: Path) -> bool:
        run = _gimp_exec("print('sketchfill warm-up')\n", folder, workdir=session().run_dir("warm"))
        if run.returncode != 0:
            _log(f"GIMP warm-up failed (rc {run.returncode}):\n{_tail(run.output, 1500)}")
        return run.returncode == 0

    ensure_gimp()
    folder, _ = session().home("gimp", _READY["gimp-version"], warm_up)
    return folder


def _gimp_exec(
    script: str,
    folder: Path,
    *,
    workdir: Path,
    files: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    gui: bool = False,
    binds: Sequence[Path] = (),
    pythonpath: Sequence[Path] = (),
    timeout: float = 180,
    extra_args: Sequence[str] = ("-d", "-f"),
) -> HostRun:
    sess = session()
    home, profile = folder / "home", folder / "profile"
    home.mkdir(exist_ok=True)
    profile.mkdir(exist_ok=True)
    inner_env = {
        "HOME": str(home),
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "GIMP3_DIRECTORY": str(profile),
        "XDG_RUNTIME_DIR": str(sess.dir("xdg-gimp", 0o700)),
        "PYTHONPATH": ":".join([*map(str, pythonpath), str(INHOST)]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "SKETCHFILL_WORKDIR": str(workdir),
        "SKETCHFILL_REPO": str(REPO),
    }
    inner_env.update(env or {})
    if gui:
        display = str(_free_x_display())
        inner = ["xvfb-run", "-n", display, "-s", GIMP_SCREEN, "gimp-3.0", "-n", "--no-splash"]
    else:
        inner = ["gimp-console-3.0", "-i"]
    inner += [*extra_args, "--batch-interpreter=python-fu-eval", "-b", "-", "--quit", *files]
    mounts = [(REPO.resolve(), True), (sess.root, False), *((b, False) for b in binds)]
    mounts += [(p, True) for p in pythonpath if not _visible(p, [m for m, _ in mounts])]
    cmd = _chroot_command(inner, inner_env, mounts)
    return _popen_run(
        cmd, env={"PATH": HOST_PATH}, stdin_text=script, timeout=timeout, workdir=workdir
    )


def run_gimp_batch(
    script: str,
    *,
    files: Sequence[str | os.PathLike[str]] = (),
    env: Mapping[str, str] | None = None,
    plugin_dirs: Sequence[str | os.PathLike[str]] = (),
    gui: bool = False,
    binds: Sequence[str | os.PathLike[str]] = (),
    pythonpath: Sequence[str | os.PathLike[str]] = (),
    timeout: float = 180,
    extra_args: Sequence[str] = ("-d", "-f"),
) -> HostRun:
    """Run Python ``script`` inside GIMP 3 (python-fu-eval batch) in the trixie chroot.

    files: opened before the script runs (``Gimp.get_images()``); paths outside the repo,
        the session folder and ``binds`` are copied into the run folder first.
    env: extra environment (passes through to plug-ins too).
    plugin_dirs: folders NAME holding NAME.py, installed as plug-ins/NAME/NAME.py in the
        session's GIMP3_DIRECTORY profile (only these; others are removed).
    gui: run the full ``gimp-3.0`` under ``xvfb-run`` (needed for Gimp.Display and for
        pressing keys, e.g. Ctrl+Z through ``sketchfill_hostkit.gimp_gui_undo``).
    binds: extra host folders to bind read-write at the same path inside the chroot.
    pythonpath: folders put on PYTHONPATH (before tests/hosts/inhost), bound read-only.
    extra_args: GIMP flags; the default ``-d -f`` skips loading data and fonts (fast).

    Inside, ``SKETCHFILL_WORKDIR`` is the run folder (``HostRun.workdir``; a script's
    ``result.json`` there is ``HostRun.result``), ``SKETCHFILL_REPO`` the repository
    (mounted read-only at the same path), and ``tests/hosts/inhost`` is on PYTHONPATH.
    Exit status: 0 success, 64 on an uncaught exception (traceback in stderr), 124 timeout.
    """
    folder = _gimp_home()
    sess = session()
    workdir = sess.run_dir("gimp")
    visible = [REPO.resolve(), sess.root]
    extra = []
    for b in map(lambda p: Path(p).resolve(), binds):
        if not b.is_dir():
            raise ValueError(f"bind {b} is not a folder")
        if not _visible(b, visible):
            extra.append(b)
    args: list[str] = []
    for f in map(lambda p: Path(p).resolve(), files):
        if not f.is_file():
            raise FileNotFoundError(f)
        if not _visible(f, visible + extra):
            (workdir / "files").mkdir(exist_ok=True)
            f = Path(shutil.copy2(f, workdir / "files" / f.name))
        args.append(str(f))
    with _locked(sess.root / ".gimp-profile.lock", "GIMP profile"):
        _sync_plugins(folder / "profile", plugin_dirs)
        return _gimp_exec(
            script,
            folder,
            workdir=workdir,
            files=args,
            env=env,
            gui=gui,
            binds=extra,
            pythonpath=[Path(p).resolve() for p in pythonpath],
            timeout=timeout,
            extra_args=extra_args,
        )


@dataclass
class KritaVerdict:
    """What a function run under kritarunner returned (``value``) or raised (``error``)."""

    ok: bool
    value: Any = None
    error: str | None = None
    krita_version: str | None = None
    python_version: str | None = None
    host: str = "system"
    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    workdir: Path = field(default_factory=Path)
    timed_out: bool = False

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def check(self) -> KritaVerdict:
        if not self.ok:
            raise HostRunError(
                f"Krita ({self.host}) run failed after {self.seconds:.1f} s:\n"
                f"{self.error or ''}\n--- kritarunner output ---\n{_tail(self.output, 2000)}"
            )
        return self


def _krita_exec(
    host: str,
    home: Path,
    module_dir: Path,
    module: str,
    func: str,
    args: Sequence[str],
    *,
    workdir: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 180,
) -> KritaVerdict:
    sess = session()
    pyzmq = _READY.get("krita-system") if host == "system" else None
    verdict_path = workdir / "verdict.json"
    pythonpath = [str(module_dir), str(INHOST)] + ([pyzmq] if pyzmq else [])
    inner_env = {
        "PATH": HOST_PATH,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": str(sess.dir(f"xdg-krita-{host}", 0o700)),
        "PYTHONPATH": ":".join(pythonpath),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "SKETCHFILL_WORKDIR": str(workdir),
        "SKETCHFILL_REPO": str(REPO),
    }
    inner_env.update(env or {})
    inner = ["kritarunner", "-s", "sketchfill_kritarunner", "-f", "run", str(verdict_path)]
    inner += [module, func, *map(str, args)]
    if host == "system":
        cmd = ["/usr/bin/kritarunner", *inner[1:]]
        run = _popen_run(cmd, env=inner_env, stdin_text=None, timeout=timeout, workdir=workdir)
    else:
        mounts = [(REPO.resolve(), True), (sess.root, False)]
        if not _visible(module_dir, [REPO.resolve(), sess.root]):
            mounts.append((module_dir, True))
        cmd = _chroot_command(inner, inner_env, mounts)
        run = _popen_run(
            cmd, env={"PATH": HOST_PATH}, stdin_text=None, timeout=timeout, workdir=workdir
        )
    common = {
        "host": host,
        "returncode": run.returncode,
        "stdout": run.stdout,
        "stderr": run.stderr,
        "seconds": run.seconds,
        "workdir": workdir,
        "timed_out": run.timed_out,
    }
    if not verdict_path.exists():
        why = "timed out" if run.timed_out else "wrote no verdict"
        return KritaVerdict(ok=False, error=f"kritarunner {why} (rc {run.returncode})", **common)
    data = json.loads(verdict_path.read_text())
    return KritaVerdict(
        ok=bool(data.get("ok")),
        value=data.get("value"),
        error=data.get("error"),
        krita_version=data.get("krita_version"),
        python_version=data.get("python_version"),
        **common,
    )


def _krita_home(host: str) -> Path:
    def warm_up(home: Path) -> bool:
        v = _krita_exec(
            host,
            home,
            INHOST,
            "sketchfill_hostkit",
            "noop",
            (),
            workdir=session().run_dir(f"warm-krita-{host}"),
        )
        if not v.ok:
            _log(f"Krita ({host}) warm-up failed: {v.error}\n{_tail(v.output, 1500)}")
        return v.ok

    home, _ = session().home(f"krita-{host}", _READY[f"krita-{host}-version"], warm_up)
    return home


def run_krita(
    module_dir: str | os.PathLike[str],
    module: str,
    func: str = "main",
    args: Sequence[str] = (),
    *,
    host: str = "system",
    env: Mapping[str, str] | None = None,
    timeout: float = 180,
) -> KritaVerdict:
    """Import ``module`` from ``module_dir`` under kritarunner and call ``func(list(args))``.

    host: "system" (Debian 12 Krita 5.1.5, the baseline) or "chroot" (trixie Krita 5.2).
    The function runs with the ``krita`` API and no window (``activeDocument()`` is None:
    create or open documents explicitly). Its return value (JSON-able; others become repr)
    is ``verdict.value``; an exception gives ``ok=False`` and the traceback in ``error``.
    Env inside: SKETCHFILL_WORKDIR (fresh folder, ``verdict.workdir``), SKETCHFILL_REPO;
    ``tests/hosts/inhost`` and (system Krita) the cached pyzmq are on PYTHONPATH.
    Arguments must not start with "-" (kritarunner parses them as options).
    """
    if host not in ("system", "chroot"):
        raise ValueError("host must be 'system' or 'chroot'")
    module_dir = Path(module_dir).resolve()
    if not (module_dir / f"{module}.py").exists() and not (module_dir / module).is_dir():
        raise FileNotFoundError(f"{module} not found in {module_dir}")
    for a in args:
        if str(a).startswith("-"):
            raise ValueError(f"kritarunner would parse argument {a!r} as an option")
    if host == "system":
        ensure_krita_system()
    else:
        ensure_krita_chroot()
    home = _krita_home(host)
    workdir = session().run_dir(f"krita-{host}")
    return _krita_exec(
        host, home, module_dir, module, func, args, workdir=workdir, env=env, timeout=timeout
    )


# --------------------------------------------------------------------------------------
# command line


def _status() -> dict[str, Any]:
    root = chroot_dir()
    info: dict[str, Any] = {
        "hosts_dir": str(hosts_dir()),
        "mirror": debian_mirror(),
        "chroot": str(root),
        "chroot_exists": root.exists(),
        "chroot_krita_wanted": want_chroot_krita(),
    }
    if root.exists():
        info["chroot_installed"] = sorted(_dpkg_installed(chroot_packages(), chroot=root))
    info["host_installed"] = sorted(_dpkg_installed((*HOST_KRITA_PKGS, "debootstrap")))
    pyver = krita_python_version()
    info["krita_pyzmq_dir"] = str(_pyzmq_dir(pyver))
    info["krita_pyzmq_ok"] = (_pyzmq_dir(pyver) / ".sketchfill-ok").exists()
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hostenv", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_setup = sub.add_parser("setup", help="provide GIMP and Krita (idempotent)")
    p_setup.add_argument("--only", choices=("gimp", "krita"))
    sub.add_parser("status", help="what is installed, without changing anything")
    sub.add_parser("destroy", help="delete the chroot, HOME templates, pyzmq (not apt's)")
    p_gimp = sub.add_parser("gimp", help="run a python-fu batch script read from stdin")
    p_gimp.add_argument("--gui", action="store_true")
    p_gimp.add_argument("--plugin", action="append", default=[])
    p_gimp.add_argument("files", nargs="*")
    p_krita = sub.add_parser("krita", help="run MODULE.FUNC(ARGS) under kritarunner")
    p_krita.add_argument("--chroot", action="store_true", help="Krita 5.2 in the chroot")
    p_krita.add_argument("module_dir")
    p_krita.add_argument("module")
    p_krita.add_argument("func")
    p_krita.add_argument("args", nargs="*")
    ns = parser.parse_args(argv)
    try:
        if ns.cmd == "setup":
            info = setup(gimp=ns.only in (None, "gimp"), krita=ns.only in (None, "krita"))
            print(json.dumps(info, indent=2))
            for name, error in info["errors"].items():
                print(f"host {name} could not be set up: {error}", file=sys.stderr)
            return 2 if info["errors"] else 0
        elif ns.cmd == "status":
            print(json.dumps(_status(), indent=2))
        elif ns.cmd == "destroy":
            _require_root()
            with _locked(hosts_dir() / ".trixie.lock", "chroot set-up"):
                for path in [chroot_dir(), hosts_dir() / "homes", *hosts_dir().glob("pyzmq-*")]:
                    _safe_rmtree(path)
                    print(f"removed {path}")
        elif ns.cmd == "gimp":
            run = run_gimp_batch(
                sys.stdin.read(), files=ns.files, plugin_dirs=ns.plugin, gui=ns.gui
            )
            sys.stdout.write(run.stdout)
            sys.stderr.write(run.stderr)
            print(f"[hostenv] rc={run.returncode} {run.seconds:.1f}s", file=sys.stderr)
            return run.returncode
        elif ns.cmd == "krita":
            v = run_krita(
                ns.module_dir, ns.module, ns.func, ns.args, host="chroot" if ns.chroot else "system"
            )
            sys.stderr.write(v.output)
            print(
                json.dumps(
                    {
                        "ok": v.ok,
                        "value": v.value,
                        "error": v.error,
                        "krita": v.krita_version,
                        "seconds": round(v.seconds, 1),
                    },
                    indent=2,
                    default=repr,
                )
            )
            return 0 if v.ok else 1
    except HostSetupError as exc:
        print(f"host set-up failed: {exc}", file=sys.stderr)
        return 2
    finally:
        close_session()
    return 0


if __name__ == "__main__":
    sys.exit(main())
