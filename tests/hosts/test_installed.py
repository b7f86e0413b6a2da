"""The installed copy in the real hosts: installers/install.sh runs into a temporary HOME
(a real engine virtual environment, the plug-ins, vendored pyzmq, client.json, the model),
then GIMP 3 registers and runs the installed plug-in and Krita imports it from the
installed pykrita folder; each edit auto-starts the INSTALLED engine, with a pyzmq on the
path that fails to import so only the installer's vendored pyzmq can serve the plug-in.

The shipped model in the copied checkout is the echo fixture under the default model's
name: the engine's hello then shows that the installed copy of it was served."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import checkout_copy, user_env
from onnx_fixtures import build_model
from sketchfill import install
from test_gimp_plugin import ASTRONAUT, SCRIPTS, _free_port, _hello, _stop, check_one_new_layer

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
PROBES = HERE / "probes"


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheels, host_setup):
    """install.sh run for a user whose HOME has GIMP 3 and Krita profiles."""
    tmp = tmp_path_factory.mktemp("installed")
    repo = checkout_copy(tmp)
    build_model(repo / "models" / "sketchfill-face", resolution=64)  # replaces any shipped one
    home = tmp / "home"
    (home / ".config/GIMP/3.0").mkdir(parents=True)
    (home / ".local/share/krita").mkdir(parents=True)
    (home / ".config/kritarc").write_text("[General]\n")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "gimp-3.0").write_text("")
    (bin_dir / "gimp-3.0").chmod(0o755)
    data = home / ".local/share"
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    env = user_env(home, data, bin_dir)
    python = Path(sys.base_prefix) / "bin" / "python3"
    script = repo / "installers/install.sh"
    args = ["--python", str(python), "--wheels", str(wheels), "--endpoint", endpoint]

    def install_sh(*more: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(script), *args, *more],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            cwd=tmp,
        )

    t0 = time.monotonic()
    done = install_sh()
    assert done.returncode == 0, done.stdout + done.stderr
    info = {
        "install_sh": install_sh,
        "first_install_s": time.monotonic() - t0,
        "home": home,
        "data": data,
        "endpoint": endpoint,
        "venv": data / "sketchfill/venv",
        "gimp_plugin": home / ".config/GIMP/3.0/plug-ins/sketchfill",
        "pykrita": data / "krita/pykrita",
        "broken_zmq": tmp / "broken-zmq",
    }
    broken = info["broken_zmq"] / "zmq"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("the host has no usable pyzmq")\n')
    yield info
    hello = _hello(endpoint, 0.5)
    if hello is not None:
        _stop(hello["engine"]["pid"])


def _installed_engine(info: dict) -> dict:
    """The engine the plug-in started: answers at the installed endpoint, runs from the
    installed environment, serves the installed model."""
    hello = _hello(info["endpoint"], 2.0)
    assert hello is not None, f"no engine at {info['endpoint']} after the edit"
    cmdline = Path(f"/proc/{hello['engine']['pid']}/cmdline").read_bytes().split(b"\0")
    assert any(str(info["venv"]).encode() in part for part in cmdline), cmdline
    assert hello["model"]["name"] == "echo"
    return hello


def test_installer_runs_again_without_rebuilding(installed):
    """Run again with the same options, install.sh keeps the healthy engine environment it
    built (a file put inside it survives: no rebuild, seconds instead of a 200 MB build)
    and refreshes the plug-ins; an option naming a missing profile folder is refused
    before anything is built or changed. The host tests after this one then run the
    re-installed copy."""
    venv = installed["venv"]
    sentinel = venv / "kept-by-the-re-run"
    sentinel.write_text("")
    python = (venv / "bin/python").stat()
    t0 = time.monotonic()
    again = installed["install_sh"]()
    seconds = time.monotonic() - t0
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Keeping the engine environment" in again.stdout, again.stdout
    assert "Creating the engine environment" not in again.stdout
    assert sentinel.exists() and (venv / "bin/python").stat().st_ino == python.st_ino
    assert seconds < installed["first_install_s"], (seconds, installed["first_install_s"])
    assert (installed["gimp_plugin"] / "client.json").is_file()

    missing = installed["home"] / "no-such-profile"
    refused = installed["install_sh"]("--gimp-dir", str(missing))
    assert refused.returncode != 0
    assert f"--gimp-dir {missing} is not a folder" in refused.stderr, refused.stderr
    assert "Nothing was changed." in refused.stderr
    assert "Creating the engine environment" not in refused.stdout + refused.stderr
    assert sentinel.exists()
    sentinel.unlink()


def test_gimp_runs_the_installed_plugin(gimp, installed):
    """GIMP 3 registers the installed plug-in's procedures and one Generate adds one layer,
    through the vendored pyzmq and the installed client.json, auto-starting the installed
    engine (which outlives GIMP: stopped here)."""
    base = Path(sys.base_prefix)
    if base == Path("/usr") or Path("/usr") in base.parents:
        pytest.skip(f"the engine's Python lives in {base}, which the GIMP chroot cannot show")
    plugin = installed["gimp_plugin"]
    assert (plugin / "client.json").is_file() and (plugin / "vendor").is_dir()
    os.utime(plugin / "sketchfill.py")  # GIMP queries it afresh, with the broken pyzmq
    run = gimp(
        (SCRIPTS / "autostart.py").read_text(),
        files=[ASTRONAUT],
        plugin_dirs=[plugin],
        pythonpath=[SCRIPTS, installed["broken_zmq"]],
        env={"XDG_DATA_HOME": str(installed["data"])},  # where the engine finds the model
        binds=[installed["home"], base],
        timeout=240,
    ).check()
    try:
        r = run.result
        assert r is not None, run.output[-4000:]
        check_one_new_layer(r)
        _installed_engine(installed)
    finally:
        hello = _hello(installed["endpoint"], 0.5)
        if hello is not None:
            _stop(hello["engine"]["pid"])


def test_krita_imports_the_installed_plugin(krita, installed):
    """Krita (5.1.5, the host's) imports the plug-in from the installed pykrita folder with
    only the vendored pyzmq, and an edit auto-starts the installed engine."""
    pykrita = installed["pykrita"]
    assert (pykrita / "sketchfill.desktop").is_file()
    assert install.kritarc_enabled((installed["home"] / ".config/kritarc").read_bytes())
    args = [str(pykrita), str(installed["broken_zmq"]), str(PROBES / "krita_plugin")]
    env = {"XDG_DATA_HOME": str(installed["data"])}  # where the engine finds the model
    try:
        v = krita(PROBES / "installed", "installed_probe", "installed_edit", args, env=env)
        r = v.check().value
        assert r["run"]["outcome"] == "done", r["run"]
        assert re.search(r"SF \d+ fill", " ".join(r["layers"])), r["layers"]
        assert Path(r["plugin_file"]).is_relative_to(pykrita), r["plugin_file"]
        assert Path(r["zmq_file"]).is_relative_to(pykrita / "sketchfill" / "vendor"), r["zmq_file"]
        _installed_engine(installed)
    finally:
        hello = _hello(installed["endpoint"], 0.5)
        if hello is not None:
            _stop(hello["engine"]["pid"])
