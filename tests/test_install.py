"""The installers: finding GIMP 3 and Krita on Linux, macOS and Windows (fake trees laid out
in tmp_path), kritarc edits, pyzmq vendoring, the transaction (dry run, rollback, recovery
after a crash), uninstall and repair, and installers/install.sh run for real into a
temporary HOME.

The plug-in sources are placeholders made here: the tests check where the installer puts
them, not what they do (tests/hosts/ runs the real plug-ins in the real hosts).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import checkout_copy, user_env
from sketchfill import install
from sketchfill.install import (
    FLATPAK,
    GIMP,
    KRITA,
    NATIVE,
    SNAP,
    Platform,
    Settings,
    Target,
    plugins,
)
from sketchfill.wire.config import ClientConfig

REPO = Path(__file__).resolve().parents[1]
HOST_PYTHONS = ("3.10", "3.11", "3.12", "3.13")  # 3.13: served by the abi3 wheel for 3.12


# -- fixtures and helpers -------------------------------------------------------------------


def fake_platform(tmp_path: Path, system: str = "linux", **env: str) -> Platform:
    """A user's machine under tmp_path: home/, root/ (system-wide installs), bin/ (PATH)."""
    home, root = tmp_path / "home", tmp_path / "root"
    for d in (home, root, tmp_path / "bin"):
        d.mkdir(exist_ok=True)
    if system == "windows":
        base = {
            "APPDATA": str(home / "AppData/Roaming"),
            "LOCALAPPDATA": str(home / "AppData/Local"),
            "ProgramFiles": str(root / "Program Files"),
        }
        data = home / "AppData/Local/SketchFill"
    elif system == "darwin":
        base, data = (
            {"PATH": str(tmp_path / "bin")},
            home / "Library/Application Support/SketchFill",
        )
    else:
        base, data = {"PATH": str(tmp_path / "bin")}, home / ".local/share/sketchfill"
    machine = platform.machine() if system == "linux" else "x86_64"
    return Platform(system, home, {"HOME": str(home), **base, **env}, data, root, machine)


def make(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def sources(tmp_path) -> dict[str, Path]:
    src = tmp_path / "src"
    make(src / "gimp/sketchfill/sketchfill.py", "# GIMP plug-in placeholder\n")
    make(src / "gimp/sketchfill/tests/test_x.py", "# not shipped\n")
    make(src / "krita/sketchfill.desktop", "[Desktop Entry]\nX-KDE-Library=sketchfill\n")
    make(src / "krita/sketchfill/__init__.py", "# Krita plug-in placeholder\n")
    return {GIMP: src / "gimp", KRITA: src / "krita"}


def engine_script(tmp_path: Path) -> Path:
    """Stands for <venv>/bin/sketchfill: the installer only checks that it exists."""
    script = make(tmp_path / "venv/bin/sketchfill", "#!/bin/sh\necho sketchfill 0.1.0\n")
    script.chmod(0o755)
    return script


def settings_for(tmp_path: Path, sources, wheels: Path, **kw) -> Settings:
    kw.setdefault("engine_command", [str(engine_script(tmp_path))])
    return Settings(wheels=wheels, sources=sources, **kw)


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything under root that a user could tell apart: kinds, modes, bytes, links."""
    seen: dict[str, tuple] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            seen[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            seen[rel] = ("dir", mode)
        else:
            seen[rel] = ("file", mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return seen


def leftovers(root: Path) -> list[Path]:
    """Staging folders, transient backups and journals a run must never leave behind (the
    kritarc.sketchfill-backup kept for the user is not hidden)."""
    hidden = [p for p in root.rglob(".*") if ".sketchfill-" in p.name]
    return hidden + list(root.rglob(install.JOURNAL))


def linux_user(tmp_path: Path) -> Platform:
    """A Linux user with native GIMP 3.0, Flatpak GIMP, native Krita (kritarc with settings)
    and a Snap Krita that never ran."""
    p = fake_platform(tmp_path)
    (p.home / ".config/GIMP/3.0").mkdir(parents=True)
    (p.home / ".var/app/org.gimp.GIMP/config/GIMP/3.0").mkdir(parents=True)
    (p.home / ".local/share/krita").mkdir(parents=True)
    make(p.home / ".config/kritarc", "[General]\nfoo=1\n\n[python]\nenable_other=true\n")
    (p.root / "snap/krita").mkdir(parents=True)
    return p


# -- discovery ------------------------------------------------------------------------------


def found(targets: list[Target]) -> set[tuple]:
    return {(t.app, t.flavour, t.profile, t.kritarc, t.new) for t in targets}


def test_linux_native_profiles_every_gimp_3_and_krita(tmp_path):
    p = fake_platform(tmp_path)
    for version in ("2.10", "3.0", "3.2"):
        (p.home / ".config/GIMP" / version).mkdir(parents=True)
    (p.home / ".local/share/krita").mkdir(parents=True)
    targets, skipped = install.discover(p)
    assert found(targets) == {
        (GIMP, NATIVE, p.home / ".config/GIMP/3.0", None, False),
        (GIMP, NATIVE, p.home / ".config/GIMP/3.2", None, False),
        (KRITA, NATIVE, p.home / ".local/share/krita", p.home / ".config/kritarc", False),
    }
    assert {(s.app, s.flavour) for s in skipped} == {
        (app, flavour) for app in (GIMP, KRITA) for flavour in (FLATPAK, SNAP)
    }
    assert all("not installed" in s.reason for s in skipped)


def test_linux_xdg_folders_and_hosts_installed_but_never_started(tmp_path):
    p = fake_platform(
        tmp_path, XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_DATA_HOME=str(tmp_path / "data")
    )
    make(tmp_path / "bin/gimp-3.0").chmod(0o755)  # a native package on PATH
    make(p.home / "Applications/krita-5.2.9-x86_64.appimage")  # an AppImage
    targets, _ = install.discover(p)
    assert found(targets) == {
        (GIMP, NATIVE, tmp_path / "cfg/GIMP/3.0", None, True),
        (KRITA, NATIVE, tmp_path / "data/krita", tmp_path / "cfg/kritarc", True),
    }


def test_linux_flatpak_and_snap(tmp_path):
    p = fake_platform(tmp_path)
    (p.home / ".var/app/org.gimp.GIMP/config/GIMP/3.0").mkdir(parents=True)
    (p.root / "var/lib/flatpak/app/org.kde.krita").mkdir(parents=True)  # system-wide, unused
    (p.root / "snap/gimp").mkdir(parents=True)
    (p.home / "snap/krita/current/.local/share/krita").mkdir(parents=True)
    targets, skipped = install.discover(p)
    flatpak_krita = p.home / ".var/app/org.kde.krita"
    snap_krita = p.home / "snap/krita/current"
    assert found(targets) == {
        (GIMP, FLATPAK, p.home / ".var/app/org.gimp.GIMP/config/GIMP/3.0", None, False),
        (KRITA, FLATPAK, flatpak_krita / "data/krita", flatpak_krita / "config/kritarc", True),
        (GIMP, SNAP, p.home / "snap/gimp/current/.config/GIMP/3.0", None, True),
        (KRITA, SNAP, snap_krita / ".local/share/krita", snap_krita / ".config/kritarc", False),
    }
    assert {(s.app, s.flavour) for s in skipped} == {(GIMP, NATIVE), (KRITA, NATIVE)}


def test_gimp_2_alone_is_explained_not_installed_into(tmp_path):
    p = fake_platform(tmp_path)
    (p.home / ".config/GIMP/2.10").mkdir(parents=True)
    targets, skipped = install.discover(p)
    assert not [t for t in targets if t.app == GIMP]
    (native,) = [s for s in skipped if s.app == GIMP and s.flavour == NATIVE]
    assert "GIMP 2.10" in native.reason and "needs GIMP 3" in native.reason


def test_gimp3_directory_names_the_gimp_profile(tmp_path):
    profile = tmp_path / "my-profile"
    p = fake_platform(tmp_path, GIMP3_DIRECTORY=str(profile))
    (p.home / ".config/GIMP/3.0").mkdir(parents=True)  # not used while the variable is set
    targets, _ = install.discover(p)
    assert [(t.app, t.profile, t.new) for t in targets] == [(GIMP, profile, True)]


def test_macos_application_support_and_app_bundles(tmp_path):
    p = fake_platform(tmp_path, "darwin")
    support = p.home / "Library/Application Support"
    (support / "GIMP/3.0").mkdir(parents=True)
    (p.root / "Applications/krita.app").mkdir(parents=True)  # installed, never started
    targets, skipped = install.discover(p)
    assert found(targets) == {
        (GIMP, NATIVE, support / "GIMP/3.0", None, False),
        (KRITA, NATIVE, support / "krita", p.home / "Library/Preferences/kritarc", True),
    }
    assert skipped == []


def test_macos_gimp_2_app_is_not_gimp_3(tmp_path):
    p = fake_platform(tmp_path, "darwin")
    (p.home / "Applications/GIMP-2.10.app").mkdir(parents=True)
    targets, skipped = install.discover(p)
    assert targets == []
    assert {s.app for s in skipped} == {GIMP, KRITA}


def test_windows_appdata_and_program_files(tmp_path):
    p = fake_platform(tmp_path, "windows")
    (p.root / "Program Files/GIMP 3").mkdir(parents=True)  # installed, never started
    (p.home / "AppData/Roaming/krita").mkdir(parents=True)
    targets, skipped = install.discover(p)
    assert found(targets) == {
        (GIMP, NATIVE, p.home / "AppData/Roaming/GIMP/3.0", None, True),
        (KRITA, NATIVE, p.home / "AppData/Roaming/krita", p.home / "AppData/Local/kritarc", False),
    }
    assert skipped == []


def test_windows_per_user_install_and_nothing_else(tmp_path):
    p = fake_platform(tmp_path, "windows")
    (p.home / "AppData/Local/Programs/Krita (x64)").mkdir(parents=True)
    targets, skipped = install.discover(p)
    assert [(t.app, t.new) for t in targets] == [(KRITA, True)]
    (gimp,) = skipped
    assert gimp.app == GIMP and "Program Files" in gimp.reason


def test_nothing_installed_says_where_it_looked(tmp_path):
    targets, skipped = install.discover(fake_platform(tmp_path))
    assert targets == []
    assert len(skipped) == 6
    assert all("not installed" in s.reason and str(tmp_path) in s.reason for s in skipped)


def test_profile_folders_given_by_hand_keep_their_flavour(tmp_path):
    p = fake_platform(tmp_path)
    h = p.home
    flatpak = install.target_for_dir(KRITA, h / ".var/app/org.kde.krita/data/krita", p)
    assert (flatpak.flavour, flatpak.kritarc) == (
        FLATPAK,
        h / ".var/app/org.kde.krita/config/kritarc",
    )
    snap = install.target_for_dir(KRITA, h / "snap/krita/current/.local/share/krita", p)
    assert (snap.flavour, snap.kritarc) == (SNAP, h / "snap/krita/current/.config/kritarc")
    native = install.target_for_dir(KRITA, tmp_path / "k", p)
    assert (native.flavour, native.kritarc) == (NATIVE, h / ".config/kritarc")
    gimp = install.target_for_dir(GIMP, h / ".var/app/org.gimp.GIMP/config/GIMP/3.0", p)
    assert gimp.flavour == FLATPAK


# -- kritarc --------------------------------------------------------------------------------

KRITARC_CASES = {
    "no file": (b"", b"[python]\nenable_sketchfill=true\n"),
    "no section": (
        b"[General]\nfoo=1\n",
        b"[General]\nfoo=1\n\n[python]\nenable_sketchfill=true\n",
    ),
    "section with others, CRLF": (
        b"[General]\r\nfoo=1\r\n\r\n[python]\r\nenable_a=true\r\n\r\n[Z]\r\nx=2\r\n",
        b"[General]\r\nfoo=1\r\n\r\n[python]\r\nenable_a=true\r\nenable_sketchfill=true\r\n"
        b"\r\n[Z]\r\nx=2\r\n",
    ),
    "section last, no final newline": (
        b"[python]\nenable_a=false",
        b"[python]\nenable_a=false\nenable_sketchfill=true\n",
    ),
    "disabled by the user": (
        b"[python]\nenable_sketchfill = false\r\nx=1\n",
        b"[python]\nenable_sketchfill=true\r\nx=1\n",
    ),
}


@pytest.mark.parametrize("case", KRITARC_CASES)
def test_kritarc_enable_changes_only_our_line(case):
    before, after = KRITARC_CASES[case]
    assert install.kritarc_enable(before) == after
    assert install.kritarc_enable(after) == after
    assert install.kritarc_enabled(after) and not install.kritarc_enabled(before)


@pytest.mark.parametrize("case", ["no file", "no section", "section with others, CRLF"])
def test_kritarc_disable_restores_the_file(case):
    before, after = KRITARC_CASES[case]
    assert install.kritarc_disable(after) == before


# -- pyzmq for the hosts' Pythons -----------------------------------------------------------


def other_pythons() -> dict[str, str]:
    """The CPythons on this machine (as host Pythons would be), by version."""
    found = {}
    for version in HOST_PYTHONS:
        names = [shutil.which(f"python{version}") or ""]
        names += map(str, (Path.home() / ".pyenv/versions").glob(f"{version}.*/bin/python3"))
        for exe in filter(None, names):
            ok = subprocess.run(
                [exe, "-c", f"import sys; assert sys.version.startswith('{version}.')"],
                capture_output=True,
            )
            if ok.returncode == 0:
                found[version] = exe
                break
    return found


@pytest.fixture(scope="module")
def vendored_plugin(wheels, tmp_path_factory) -> Path:
    """A GIMP plug-in folder as the installer lays it out, vendor/ included."""
    tmp = tmp_path_factory.mktemp("vendored")
    got = install.fetch_pyzmq(Platform.current(tmp), tmp / "w", wheels=wheels, cache=tmp / "c")
    install.unpack_wheels(got, tmp / "vendor")
    source = make(tmp / "src/sketchfill/sketchfill.py").parent.parent
    return plugins.stage_gimp(tmp / "plug-ins", source=source, vendor=tmp / "vendor")


def test_vendor_holds_one_compiled_module_per_python(vendored_plugin):
    modules = {p.name for p in (vendored_plugin / "vendor/zmq/backend/cython").glob("_zmq.*.so")}
    assert len(modules) == 3, modules
    assert install.vendored_pythons(vendored_plugin / "vendor") == ["3.10", "3.11", "3.12+"]


@pytest.mark.parametrize("version", HOST_PYTHONS)
def test_vendored_zmq_imports_in_a_python_without_zmq(vendored_plugin, version):
    """The proof that a host Python with no pyzmq gets it from vendor/: -I -S leaves only
    the standard library and the plug-in folder on the path."""
    python = sys.executable if sys.version.startswith(f"{version}.") else None
    python = python or other_pythons().get(version)
    if python is None:
        pytest.skip(f"no CPython {version} on this machine")
    bare = subprocess.run([python, "-I", "-S", "-c", "import zmq"], capture_output=True)
    assert bare.returncode != 0, f"{python} has zmq without the vendor folder"
    assert install.check_client_imports(vendored_plugin, python) is None


def test_client_without_vendor_says_to_repair(tmp_path):
    source = make(tmp_path / "src/sketchfill/sketchfill.py").parent.parent
    plugin = plugins.stage_gimp(tmp_path / "plug-ins", source=source)
    error = install.check_client_imports(plugin)
    assert error is not None and "--repair" in error and "pyzmq" in error


def test_a_missing_wheel_stops_before_anything_changes(tmp_path, wheels):
    partial = tmp_path / "partial"
    partial.mkdir()
    for wheel in wheels.glob("pyzmq-*-cp311-*.whl"):
        shutil.copy(wheel, partial)
    with pytest.raises(install.InstallError) as exc:
        install.fetch_pyzmq(fake_platform(tmp_path), tmp_path / "w", wheels=partial, cache=partial)
    assert "CPython 3.10" in str(exc.value) and "--wheels" in str(exc.value)


def fake_wheel(folder: Path, tag: str, module: str) -> None:
    """A wheel named for another platform: pip chooses among real files by their tags."""
    folder.mkdir(exist_ok=True)
    with zipfile.ZipFile(folder / f"pyzmq-27.3.0-{tag}.whl", "w") as z:
        z.writestr("zmq/__init__.py", "")
        z.writestr(f"zmq/backend/cython/{module}", "binary")
        z.writestr(
            "pyzmq-27.3.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: pyzmq\nVersion: 27.3.0\n",
        )
        z.writestr("pyzmq-27.3.0.dist-info/WHEEL", f"Wheel-Version: 1.0\nTag: {tag}\n")


def test_an_older_pyzmq_without_abi3_gets_a_wheel_for_later_pythons(tmp_path):
    p = fake_platform(tmp_path, "windows")
    offered = tmp_path / "offered"
    for version in ("310", "311", "312", "313"):
        fake_wheel(offered, f"cp{version}-cp{version}-win_amd64", f"_zmq.cp{version}.pyd")
    got = install.fetch_pyzmq(p, tmp_path / "w", wheels=offered, cache=tmp_path / "cache")
    assert [w.serves for w in got] == ["3.10", "3.11", "3.12", "3.13"]
    assert not (tmp_path / "cache").exists(), "--wheels installs leave the cache alone"


# -- installing -----------------------------------------------------------------------------


def test_install_lays_out_every_host(tmp_path, sources, wheels):
    p = linux_user(tmp_path)
    models = make(tmp_path / "models/face/model.json", "{}").parent.parent
    make(models / "face/model.onnx", "onnx")
    s = settings_for(tmp_path, sources, wheels, models=models)
    plan = install.plan_install(p, s)
    install.apply(plan)

    gimp = p.home / ".config/GIMP/3.0/plug-ins/sketchfill"
    entry = gimp / "sketchfill.py"
    assert entry.stat().st_mode & 0o111, "GIMP runs only executable plug-ins"
    assert not (gimp / "tests").exists()
    assert ClientConfig.load(gimp / "client.json").engine_command == s.engine_command
    flatpak = p.home / ".var/app/org.gimp.GIMP/config/GIMP/3.0/plug-ins/sketchfill"
    config = ClientConfig.load(flatpak / "client.json")
    assert config.engine_command == ["flatpak-spawn", "--host", *s.engine_command]
    assert "--talk-name=org.freedesktop.Flatpak org.gimp.GIMP" in plan.report()
    krita = p.home / ".local/share/krita/pykrita"
    assert (krita / "sketchfill.desktop").is_file() and (krita / "sketchfill/__init__.py").is_file()
    assert (p.home / ".config/kritarc").read_bytes() == (
        b"[General]\nfoo=1\n\n[python]\nenable_other=true\nenable_sketchfill=true\n"
    )
    assert (p.home / ".config/kritarc.sketchfill-backup").read_bytes() == (
        b"[General]\nfoo=1\n\n[python]\nenable_other=true\n"
    )
    snap = p.home / "snap/krita/current"
    assert not ClientConfig.load(
        snap / ".local/share/krita/pykrita/sketchfill/client.json"
    ).autostart
    assert install.kritarc_enabled((snap / ".config/kritarc").read_bytes())
    assert "auto-start is off" in plan.report()
    assert (p.data_dir / "models/face/model.onnx").read_text() == "onnx"
    for plugin in (gimp, flatpak, krita / "sketchfill"):
        assert (plugin / "sketchfill_client/client.py").is_file()
        assert install.vendored_pythons(plugin / "vendor") == ["3.10", "3.11", "3.12+"]
        assert not list(plugin.rglob("__pycache__"))
    manifest = install.Manifest.load(p.data_dir)
    assert manifest is not None and len(manifest.targets) == 4
    assert set(manifest.paths) >= {
        gimp,
        flatpak,
        krita / "sketchfill",
        krita / "sketchfill.desktop",
    }
    assert leftovers(tmp_path) == []


def test_running_again_changes_nothing_and_keeps_user_settings(tmp_path, sources, wheels):
    p = linux_user(tmp_path)
    s = settings_for(tmp_path, sources, wheels)
    install.apply(install.plan_install(p, s))
    config_file = p.home / ".config/GIMP/3.0/plug-ins/sketchfill/client.json"
    config = ClientConfig.load(config_file)
    config.endpoint, config.reply_timeout = "tcp://127.0.0.1:6000", 99.0
    config.save(config_file)
    before = snapshot(tmp_path)
    install.apply(install.plan_install(p, s))
    assert snapshot(tmp_path) == before
    # Options given on the command line win over what is in the file.
    target = Target(GIMP, NATIVE, p.home / ".config/GIMP/3.0")
    again = settings_for(tmp_path, sources, wheels, autostart=False)
    config = install.InstallPlugin(target, again, sources[GIMP]).config()
    assert (config.endpoint, config.reply_timeout, config.autostart) == (
        "tcp://127.0.0.1:6000",
        99.0,
        False,
    )


def test_dry_run_plans_without_touching_anything(tmp_path, sources, wheels):
    p = linux_user(tmp_path)
    s = settings_for(tmp_path, sources, wheels)
    before = snapshot(tmp_path)
    report = install.plan_install(p, s).report()
    assert snapshot(tmp_path) == before
    assert "Found:" in report and "Not found:" in report and "GIMP 3 (Snap)" in report
    assert "install the Krita (Snap) plug-in" in report
    assert "creating the profile" in report
    assert "no model ships" in report


def test_failure_part_way_restores_the_previous_install_exactly(tmp_path, sources, wheels):
    p = linux_user(tmp_path)
    s = settings_for(tmp_path, sources, wheels)
    install.apply(install.plan_install(p, s))
    make(sources[GIMP] / "sketchfill/sketchfill.py", "# version 2\n")
    # The Snap Krita's plug-in folder cannot be created: its parent is a file. Both GIMP
    # plug-ins have been swapped in by then, and must be swapped back.
    snap_data = p.home / "snap/krita/current/.local/share/krita"
    shutil.rmtree(snap_data / "pykrita")
    make(snap_data / "pykrita", "not a folder")
    before = snapshot(tmp_path)
    with pytest.raises(install.InstallError) as exc:
        install.apply(install.plan_install(p, s))
    assert "Nothing was changed" in str(exc.value)
    assert snapshot(tmp_path) == before
    assert leftovers(tmp_path) == []


def test_failed_check_undoes_a_first_install_completely(tmp_path, sources, wheels):
    p = linux_user(tmp_path)
    before = snapshot(tmp_path)
    missing_engine = Settings(
        [str(tmp_path / "gone/bin/sketchfill")], wheels=wheels, sources=sources
    )
    with pytest.raises(install.InstallError) as exc:
        install.apply(install.plan_install(p, missing_engine))
    assert "gone/bin/sketchfill does not exist" in str(exc.value)
    assert snapshot(tmp_path) == before


def test_missing_wheel_leaves_the_tree_alone(tmp_path, sources):
    p = linux_user(tmp_path)
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    s = settings_for(tmp_path, sources, empty)
    before = snapshot(tmp_path)
    with pytest.raises(install.InstallError, match=r"no pyzmq wheel for CPython 3\.10"):
        install.apply(install.plan_install(p, s))
    assert snapshot(tmp_path) == before


def test_a_killed_run_is_undone_by_the_next(tmp_path):
    p = fake_platform(tmp_path)
    old = make(p.home / "profile/plug-ins/sketchfill/sketchfill.py", "old\n").parent
    make(p.home / "kritarc", "[General]\nfoo=1\n")
    before = snapshot(tmp_path)
    txn = install.Transaction(p.data_dir)
    stage = txn.scratch(old.parent, "staging")
    make(stage / "sketchfill/sketchfill.py", "new\n")
    txn.put(stage / "sketchfill", old)
    txn.write(p.home / "kritarc", b"changed\n")
    txn.mkdirs(p.home / "new/deep")
    del txn  # the process dies here: no commit, no rollback
    assert (old / "sketchfill.py").read_text() == "new\n"
    assert "undid" in (install.recover(p.data_dir) or "")
    assert snapshot(tmp_path) == before


def test_a_run_killed_while_committing_is_finished_by_the_next(tmp_path):
    p = fake_platform(tmp_path)
    old = make(p.home / "plug-ins/sketchfill/sketchfill.py", "old\n").parent
    txn = install.Transaction(p.data_dir)
    stage = txn.scratch(old.parent, "staging")
    make(stage / "sketchfill/sketchfill.py", "new\n")
    txn.put(stage / "sketchfill", old)
    # The commit was recorded in the journal, then the process died.
    journal = json.loads(txn.journal.read_text())
    txn.journal.write_text(json.dumps({**journal, "state": "commit"}))
    assert "finished" in (install.recover(p.data_dir) or "")
    assert (old / "sketchfill.py").read_text() == "new\n"
    assert leftovers(tmp_path) == [] and not p.data_dir.exists()


def test_uninstall_removes_exactly_what_was_installed(tmp_path, sources, wheels):
    p = linux_user(tmp_path)
    models = make(tmp_path / "models/face/model.json", "{}").parent.parent
    s = settings_for(tmp_path, sources, wheels, models=models)
    before = snapshot(tmp_path)
    install.apply(install.plan_install(p, s))
    make(p.home / ".config/GIMP/3.0/plug-ins/other/other.py")  # someone else's plug-in
    plan = install.plan_uninstall(p)
    assert "enable_sketchfill" in plan.report()
    install.apply(plan)
    after = snapshot(tmp_path)
    for path in ("home/.config/GIMP/3.0/plug-ins", "home/.config/GIMP/3.0/plug-ins/other"):
        assert after.pop(path)[0] == "dir"
    assert after.pop("home/.config/GIMP/3.0/plug-ins/other/other.py")[0] == "file"
    assert after == before
    with pytest.raises(install.InstallError, match="nothing to uninstall"):
        install.plan_uninstall(p)


def test_repair_fixes_damage_and_reaches_a_new_gimp_profile(tmp_path, sources, wheels):
    p = linux_user(tmp_path)
    install.apply(
        install.plan_install(p, settings_for(tmp_path, sources, wheels, endpoint="ipc://x"))
    )
    gimp = p.home / ".config/GIMP/3.0/plug-ins/sketchfill"
    shutil.rmtree(gimp / "vendor")
    (p.home / ".config/kritarc").write_bytes(b"[python]\nenable_sketchfill=false\n")
    (p.home / ".config/GIMP/3.2").mkdir()  # GIMP was updated and started a new profile
    plan = install.plan_repair(
        p, Settings(engine_command=["ignored"], wheels=wheels, sources=sources)
    )
    problems = "\n".join(plan.problems)
    assert "vendor/zmq/__init__.py" in problems and "not enabled" in problems
    install.apply(plan)
    manifest = install.Manifest.load(p.data_dir)
    assert manifest is not None
    assert all(install.check_target(t, p) == [] for t in manifest.targets)
    new = ClientConfig.load(p.home / ".config/GIMP/3.2/plug-ins/sketchfill/client.json")
    assert new.endpoint == "ipc://x"  # remembered from the install
    assert new.engine_command == manifest.engine_command != ["ignored"]


def test_a_mistyped_profile_folder_is_refused(tmp_path, sources, wheels):
    p = fake_platform(tmp_path)
    s = settings_for(tmp_path, sources, wheels, krita_dirs=[tmp_path / "no-such-krita"])
    with pytest.raises(install.InstallError, match="is not a folder"):
        install.plan_install(p, s)


def test_repair_without_an_install_says_so(tmp_path):
    with pytest.raises(install.InstallError, match="nothing to repair"):
        install.plan_repair(fake_platform(tmp_path), Settings(["sketchfill"]))


def test_no_host_still_installs_models_and_says_what_to_do(tmp_path, sources, wheels):
    p = fake_platform(tmp_path)
    models = make(tmp_path / "models/face/model.json", "{}").parent.parent
    make(models / "face-int8/model.json", '{"int8": true}')  # two models: one staging folder
    plan = install.plan_install(p, settings_for(tmp_path, sources, wheels, models=models))
    assert "Found no GIMP 3 or Krita profile" in plan.report() and "--gimp-dir" in plan.report()
    install.apply(plan)
    assert (p.data_dir / "models/face/model.json").read_text() == "{}"
    assert (p.data_dir / "models/face-int8/model.json").read_text() == '{"int8": true}'
    assert sorted(x.name for x in (p.data_dir / "models").iterdir()) == ["face", "face-int8"]


@pytest.mark.parametrize(
    ("system", "platform_tag", "module"),
    [
        ("windows", "win_amd64", "_zmq.cp310-win_amd64.pyd"),
        ("darwin", "macosx_10_15_universal2", "_zmq.cpython-310-darwin.so"),
    ],
)
def test_install_on_other_systems(tmp_path, sources, system, platform_tag, module):
    """Layouts, engine command and wheel choice for Windows and macOS; pip picks the
    wheels by their platform tags (these are stand-ins: they cannot load here)."""
    p = fake_platform(tmp_path, system)
    offered = tmp_path / "offered"
    fake_wheel(offered, f"cp310-cp310-{platform_tag}", module)
    fake_wheel(offered, f"cp311-cp311-{platform_tag}", module.replace("310", "311"))
    fake_wheel(offered, f"cp312-abi3-{platform_tag}", "_zmq.abi3.so")
    fake_wheel(offered, "cp312-abi3-manylinux_2_28_x86_64", "_zmq.abi3.so")  # wrong platform
    if system == "windows":
        gimp, krita = p.home / "AppData/Roaming/GIMP/3.0", p.home / "AppData/Roaming/krita"
        kritarc = p.home / "AppData/Local/kritarc"
    else:
        support = p.home / "Library/Application Support"
        gimp, krita = support / "GIMP/3.0", support / "krita"
        kritarc = p.home / "Library/Preferences/kritarc"
    gimp.mkdir(parents=True)
    krita.mkdir(parents=True)
    command = install.engine_command_for(tmp_path / "venv", system)
    make(Path(command[0]))
    install.apply(install.plan_install(p, Settings(command, wheels=offered, sources=sources)))
    config = ClientConfig.load(gimp / "plug-ins/sketchfill/client.json")
    expected = "venv/Scripts/sketchfill.exe" if system == "windows" else "venv/bin/sketchfill"
    assert config.engine_command == [str(tmp_path / expected)]
    assert install.kritarc_enabled(kritarc.read_bytes())
    record = json.loads((krita / "pykrita/sketchfill/vendor/sketchfill-vendor.json").read_text())
    assert all(platform_tag in w["name"] for w in record) and len(record) == 3


def test_cli_reports_nothing_to_uninstall(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    sketchfill = str(Path(sys.executable).with_name("sketchfill"))
    run = subprocess.run(
        [sketchfill, "install-plugins", "--uninstall"], capture_output=True, text=True, env=env
    )
    assert run.returncode == 1
    assert "nothing to uninstall" in run.stderr and str(tmp_path / "data") in run.stderr


# -- the installer scripts ------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="install.sh is for Linux and macOS")
def test_install_sh_end_to_end(tmp_path, wheels):
    """Dry run, install, repair (a rebuild), a re-run that keeps the environment, a wrong
    option refused before any build, a failed re-install of changed sources (the engine
    environment is restored) and uninstall, into a HOME whose data folder has a space in
    its path. Failures of install-plugins itself are rolled back by it (the tests above)."""
    repo = checkout_copy(tmp_path)
    home = tmp_path / "home"
    gimp_flatpak = home / ".var/app/org.gimp.GIMP/config/GIMP/3.0"
    gimp_flatpak.mkdir(parents=True)
    (home / ".local/share/krita").mkdir(parents=True)
    make(home / ".config/kritarc", "[General]\nfoo=1\n")
    bin_dir = tmp_path / "bin"
    make(bin_dir / "gimp-3.0").chmod(0o755)  # native GIMP 3, never started
    data = home / "my data"  # a space: the venv's scripts must still run
    data.mkdir()
    env = user_env(home, data, bin_dir)
    python = Path(sys.base_prefix) / "bin" / "python3"
    script = [str(repo / "installers/install.sh"), "--python", str(python), "--wheels", str(wheels)]

    def run(*args: str, **more_env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*script, *args],
            capture_output=True,
            text=True,
            env={**env, **more_env},
            timeout=300,
            cwd=tmp_path,
        )

    def user_files() -> dict[str, tuple]:
        return {k: v for k, v in snapshot(home).items() if not k.startswith(".cache")}

    original = user_files()
    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Dry run: nothing was changed." in dry.stdout and "GIMP 3.0 (Flatpak)" in dry.stdout
    assert user_files() == original

    done = run()
    assert done.returncode == 0, done.stdout + done.stderr
    venv = data / "sketchfill/venv"
    engine = venv / "bin/sketchfill"
    native = home / ".config/GIMP/3.0/plug-ins/sketchfill"
    assert ClientConfig.load(native / "client.json").engine_command == [str(engine)]
    flatpak = ClientConfig.load(gimp_flatpak / "plug-ins/sketchfill/client.json")
    assert flatpak.engine_command == ["flatpak-spawn", "--host", str(engine)]
    version = subprocess.run([str(engine), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and "sketchfill" in version.stdout
    assert install.kritarc_enabled((home / ".config/kritarc").read_bytes())
    assert install.check_client_imports(native, str(venv / "bin/python")) is None
    assert not (repo / "build").exists(), "the checkout must not be written to"

    installed = user_files()
    shutil.rmtree(native / "vendor")  # damage; --repair puts it back with the same engine
    repaired = run("--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "Problems found:" in repaired.stdout and "Repaired" in repaired.stdout
    assert "Rebuilding the engine environment" in repaired.stdout

    def outside_venv(files: dict[str, tuple]) -> dict[str, tuple]:
        # --repair rebuilds the environment: new bytecode, same everything else
        return {k: v for k, v in files.items() if not k.startswith("my data/sketchfill/venv")}

    assert outside_venv(user_files()) == outside_venv(installed)
    installed = user_files()

    # Run again from the same sources: the healthy environment is kept, not rebuilt.
    sentinel = venv / "kept"
    sentinel.write_text("")
    again = run()
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Keeping the engine environment" in again.stdout and sentinel.exists()
    # A wrong option is refused before anything is built or changed.
    wrong = run("--krita-dir", str(home / "nowhere"))
    assert wrong.returncode != 0 and "is not a folder" in wrong.stderr
    assert "Creating the engine environment" not in wrong.stdout and sentinel.exists()
    sentinel.unlink()

    # A new version of the sources rebuilds; with the network gone pip cannot build the
    # new environment, and the old one comes back.
    init = repo / "engine/__init__.py"
    init.write_text(init.read_text() + "# a new version\n")
    broken = run(PIP_NO_INDEX="1", PIP_FIND_LINKS="")
    assert broken.returncode != 0
    assert "built from other sources" in broken.stdout, broken.stdout
    assert "nothing was changed" in broken.stderr
    assert user_files() == installed

    gone = run("--uninstall")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert user_files() == original


def test_install_ps1_parses():
    pwsh = shutil.which("pwsh") or shutil.which("powershell")
    if pwsh is None:
        pytest.skip("PowerShell (pwsh) is not installed here")
    script = REPO / "installers/install.ps1"
    check = (
        "$errors = $null; [void][System.Management.Automation.Language.Parser]::ParseFile("
        f"'{script}', [ref]$null, [ref]$errors); if ($errors) {{ $errors; exit 1 }}"
    )
    run = subprocess.run([pwsh, "-NoProfile", "-Command", check], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
