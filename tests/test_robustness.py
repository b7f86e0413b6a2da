"""Faults a studio meets: an engine killed mid-request, and long runs of edits."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import face_like
from sketchfill.wire.config import ClientConfig
from sketchfill.wire.errors import EngineError
from sketchfill.wire.launch import connect
from sketchfill.wire.protocol import Box
from sketchfill.wire.requests import EditRequest
from test_client import free_port

pytestmark = pytest.mark.slow
SKETCHFILL = str(Path(sys.executable).with_name("sketchfill"))


def big_request(side: int = 512, seed: int = 1) -> EditRequest:
    image = face_like(side, side, seed)
    mask = np.zeros((side, side), np.uint8)
    mask[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = 255
    return EditRequest(side, side, Box(0, 0, side, side), image, mask, seed=seed)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
def autostart_config(tmp_path, monkeypatch, request):
    """A client config that auto-starts this checkout's engine on a free port."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    models = tmp_path / "models"
    models.mkdir()
    model = request.getfixturevalue(request.param)
    (models / "sketchfill-face").symlink_to(model)
    monkeypatch.setenv("SKETCHFILL_MODELS", str(models))
    config = ClientConfig(
        endpoint=f"tcp://127.0.0.1:{free_port()}",
        engine_command=[SKETCHFILL],
        connect_timeout=0.3,
        start_timeout=60,
        reply_timeout=20,
    )
    pids: list[int] = []
    yield config, pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


@pytest.mark.parametrize("autostart_config", ["slow_model"], indirect=True)
def test_killed_engine_is_reported_and_the_next_request_starts_a_fresh_one(autostart_config):
    config, pids = autostart_config
    statuses: list[str] = []
    client, hello = connect(config, on_status=statuses.append)
    first_pid = hello["engine"]["pid"]
    pids.append(first_pid)
    rid = client.submit(big_request())
    time.sleep(0.5)  # the edit is running now
    os.kill(first_pid, signal.SIGKILL)
    with pytest.raises(EngineError) as err:
        client.wait(rid)
    assert err.value.code == "unreachable"
    assert "closed the connection during the edit" in err.value.message
    client.close()

    client, hello = connect(config, on_status=statuses.append)  # what a plug-in does next
    pids.append(hello["engine"]["pid"])
    assert hello["engine"]["pid"] != first_pid
    started = [
        "Starting the SketchFill engine...",
        "Starting the SketchFill engine: loading its model...",
    ]
    assert statuses == started * 2
    assert client.edit(big_request()).width == 256
    client.close()


MEMORY_BOUND_MB = 40  # growth allowed between edit 100 and edit 1000


@pytest.mark.parametrize("autostart_config", ["echo_model"], indirect=True)
def test_a_thousand_edits_without_memory_growth(autostart_config):
    config, pids = autostart_config
    client, hello = connect(config)
    pid = hello["engine"]["pid"]
    pids.append(pid)
    requests = [big_request(seed=i) for i in range(4)]
    for i in range(100):  # allocator pools and caches settle
        client.edit(requests[i % 4])
    settled = rss_mb(pid)
    for i in range(900):
        result = client.edit(requests[i % 4])
        assert result.width == 256
    grown = rss_mb(pid) - settled
    client.close()
    assert grown < MEMORY_BOUND_MB, f"engine grew {grown:.1f} MB over 900 edits"
