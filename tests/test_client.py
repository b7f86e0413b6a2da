"""The thin client: imports with the standard library and pyzmq alone, times out plainly,
starts a local engine when none answers, and carries its config."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from sketchfill.install.plugins import CLIENT_FILES
from sketchfill.wire import launch
from sketchfill.wire.client import Client
from sketchfill.wire.config import ClientConfig
from sketchfill.wire.errors import EngineError
from sketchfill.wire.launch import connect, engine_log_path, is_local

WIRE = Path(__file__).resolve().parents[1] / "engine" / "wire"


def vendored_client(folder: Path) -> Path:
    """Lay the client out the way the installer does: a sketchfill_client package."""
    pkg = folder / "sketchfill_client"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name in CLIENT_FILES:
        shutil.copy(WIRE / name, pkg / name)
    return folder


def test_client_imports_with_stdlib_and_pyzmq_only(tmp_path):
    root = vendored_client(tmp_path / "plugin")
    site = tmp_path / "site"
    site.mkdir()
    zmq_dir = Path(zmq.__file__).parent
    for entry in zmq_dir.parent.iterdir():  # zmq and its bundled libzmq, nothing else
        if entry.name == "zmq" or entry.name.startswith("pyzmq"):
            (site / entry.name).symlink_to(entry)
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        "before = set(sys.modules)\n"
        "from sketchfill_client import client\n"
        "c = client.Client('tcp://127.0.0.1:1'); c.close()\n"
        "import sysconfig; allowed = (sysconfig.get_paths()['stdlib'], *sys.path[:2])\n"
        "bad = [m for m in set(sys.modules) - before\n"
        "       if getattr(sys.modules[m], '__file__', None)\n"
        "       and not sys.modules[m].__file__.startswith(allowed)]\n"
        "print('EXTRA', sorted(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(root), str(site)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "EXTRA []" in out.stdout, out.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hello_times_out_with_a_plain_message():
    with Client(f"tcp://127.0.0.1:{free_port()}") as client:
        t0 = time.monotonic()
        with pytest.raises(EngineError) as err:
            client.hello(0.3)
    assert time.monotonic() - t0 < 1.0
    assert err.value.code == "unreachable" and "sketchfill serve" in err.value.message


def test_connect_without_autostart_reports_unreachable():
    config = ClientConfig(
        endpoint=f"tcp://127.0.0.1:{free_port()}", autostart=False, connect_timeout=0.3
    )
    with pytest.raises(EngineError) as err:
        connect(config)
    assert err.value.code == "unreachable"


def test_connect_starts_a_local_engine_and_reuses_it(tmp_path, monkeypatch, echo_model):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    sketchfill = Path(sys.executable).with_name("sketchfill")
    config = ClientConfig(
        endpoint=endpoint,
        engine_command=[str(sketchfill), "--verbose"],
        connect_timeout=0.3,
        start_timeout=60,
    )
    monkeypatch.setenv("SKETCHFILL_MODELS", str(echo_model.parent))
    # The engine picks its default model name; point the search path at a folder holding it.
    (echo_model.parent / "sketchfill-face").symlink_to(echo_model)
    statuses: list[str] = []
    t0 = time.monotonic()
    client, hello = connect(config, on_status=statuses.append)
    try:
        assert statuses == [
            "Starting the SketchFill engine...",
            "Starting the SketchFill engine: loading its model...",
        ]
        assert hello["model"]["name"] == "echo"
        second, _ = connect(config, on_status=statuses.append)
        second.close()
        assert len(statuses) == 2, "a running engine was started twice"
        assert time.monotonic() - t0 < 30
        assert engine_log_path().read_text()
    finally:
        client.close()
        _stop_engine_on(endpoint)


def _stop_engine_on(endpoint: str) -> None:
    port = endpoint.rsplit(":", 1)[1]
    out = subprocess.run(["fuser", f"{port}/tcp"], capture_output=True, text=True)
    for pid in out.stdout.split():
        os.kill(int(pid), signal.SIGTERM)


def test_connect_reports_an_engine_that_cannot_start(tmp_path, monkeypatch):
    """A missing or broken engine interpreter: the message names the client.json that was
    read (the plug-in's own, not ~/.config's) and says to run the installer with
    --repair."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    beside = tmp_path / "plug-in" / "client.json"
    ClientConfig(
        endpoint=f"tcp://127.0.0.1:{free_port()}",
        engine_command=[str(tmp_path / "venv" / "bin" / "missing-python")],
        connect_timeout=0.2,
    ).save(beside)
    config = ClientConfig.load(beside)
    assert config.source == str(beside)
    with pytest.raises(EngineError) as err:
        connect(config)
    assert "cannot start the engine" in err.value.message
    assert "missing-python is missing or broken" in err.value.message
    assert "--repair" in err.value.message and str(beside) in err.value.message
    assert "source" not in json.loads(beside.read_text())  # where it was read is not saved
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/bin/sh\necho 'model folder is gone' >&2\nexit 4\n")
    broken.chmod(0o755)
    config.engine_command = [str(broken)]
    with pytest.raises(EngineError) as err:
        connect(config)
    assert "exited at start-up (code 4)" in err.value.message
    assert "model folder is gone" in err.value.message
    assert "--repair" in err.value.message and str(beside) in err.value.message


def test_nothing_listening_starts_the_engine_without_waiting_for_a_hello(tmp_path, monkeypatch):
    """A local endpoint that refuses connections has no engine: connect() starts one at
    once instead of waiting connect_timeout for a hello first; prestart() (what the
    plug-ins call when the host opens) starts one and returns without waiting, and only
    when nothing listens and the config allows it."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    assert launch.nothing_listens(endpoint)
    assert not launch.nothing_listens("tcp://10.0.0.5:5737")  # not local: unsure
    started = tmp_path / "started"
    script = tmp_path / "engine.sh"
    script.write_text(f"#!/bin/sh\necho $@ >> {started}\nexit 3\n")
    script.chmod(0o755)
    config = ClientConfig(endpoint=endpoint, engine_command=[str(script)], connect_timeout=30)
    t0 = time.monotonic()
    with pytest.raises(EngineError, match="exited at start-up"):
        connect(config)
    assert time.monotonic() - t0 < 10, "waited for a hello from nobody"
    assert started.read_text().split() == ["serve", "--endpoint", endpoint]
    assert launch.prestart(config) is True
    deadline = time.monotonic() + 10
    while len(started.read_text().splitlines()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(started.read_text().splitlines()) == 2
    config.start_with_host = False
    assert launch.prestart(config) is False
    config.start_with_host, config.autostart = True, False
    assert launch.prestart(config) is False
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", port))
        listening.listen()
        config.autostart = True
        assert not launch.nothing_listens(endpoint)
        assert launch.prestart(config) is False


def test_remote_endpoints_are_not_autostarted():
    assert is_local("tcp://127.0.0.1:5737") and is_local("tcp://localhost:1")
    assert not is_local("tcp://10.0.0.5:5737")
    config = ClientConfig(endpoint="tcp://192.0.2.1:5737", connect_timeout=0.2)
    with pytest.raises(EngineError) as err:
        connect(config)
    assert "not auto-started" in err.value.message


def test_config_round_trip_and_defaults(tmp_path):
    path = tmp_path / "client.json"
    assert ClientConfig.load(path) == ClientConfig()
    ClientConfig(endpoint="tcp://127.0.0.1:6000", autostart=False).save(path)
    loaded = ClientConfig.load(path)
    assert loaded.endpoint == "tcp://127.0.0.1:6000" and loaded.autostart is False
    path.write_text("{broken")
    with pytest.raises(EngineError, match="cannot read the SketchFill config"):
        ClientConfig.load(path)


def test_plugin_config_prefers_env_then_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SKETCHFILL_CLIENT_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    assert ClientConfig.for_plugin(plugin) == ClientConfig()
    ClientConfig(endpoint="tcp://127.0.0.1:7001").save(
        tmp_path / "xdg" / "sketchfill" / "client.json"
    )
    assert ClientConfig.for_plugin(plugin).endpoint == "tcp://127.0.0.1:7001"
    ClientConfig(endpoint="tcp://127.0.0.1:7002").save(plugin / "client.json")
    assert ClientConfig.for_plugin(plugin).endpoint == "tcp://127.0.0.1:7002"
    ClientConfig(endpoint="tcp://127.0.0.1:7003").save(tmp_path / "env.json")
    monkeypatch.setenv("SKETCHFILL_CLIENT_CONFIG", str(tmp_path / "env.json"))
    assert ClientConfig.for_plugin(plugin).endpoint == "tcp://127.0.0.1:7003"
