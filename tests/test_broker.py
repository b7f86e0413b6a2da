"""Several engines behind `sketchfill broker` on loopback: requests spread over both,
cancels reach the engine that holds the edit, and a killed engine loses only its own."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from onnx_fixtures import build_model
from sketchfill.wire.client import Client
from sketchfill.wire.errors import EngineError
from test_server import edit_request

pytestmark = pytest.mark.slow
SKETCHFILL = str(Path(sys.executable).with_name("sketchfill"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    # Under a second per edit on one thread: long enough to overlap, short enough to wait.
    model = build_model(tmp_path / "medium", resolution=128, slow_convs=40, name="medium")
    front = f"tcp://127.0.0.1:{free_port()}"
    back_port = free_port()
    while True:  # the cancel feed takes the next port
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", back_port + 1))
                break
            except OSError:
                back_port = free_port()
    back = f"tcp://127.0.0.1:{back_port}"
    procs = [subprocess.Popen([SKETCHFILL, "broker", "--endpoint", front, "--backend", back])]
    for _ in range(2):
        procs.append(
            subprocess.Popen(
                [SKETCHFILL, "serve", "--broker", back, "--model", str(model), "--threads", "1"]
            )
        )
    try:
        pids = set()
        deadline = time.monotonic() + 90
        while len(pids) < 2 and time.monotonic() < deadline:  # both engines answer
            with Client(front) as c:
                try:
                    pids.add(c.hello(1.0)["engine"]["pid"])
                except EngineError:
                    time.sleep(0.2)
        assert len(pids) == 2, "the engines did not come up behind the broker"
        yield front, procs
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_requests_spread_over_both_engines(cluster):
    front, procs = cluster
    clients = [Client(front) for _ in range(4)]
    ids = [c.submit(edit_request(300, 300)) for c in clients]
    served = {c.wait(rid, timeout=60).header["engine"]["pid"] for c, rid in zip(clients, ids)}
    assert served == {procs[1].pid, procs[2].pid}
    for c in clients:
        c.close()


def test_cancel_reaches_the_engine_holding_the_edit(cluster):
    front, _ = cluster
    with Client(front) as client:
        rids = [client.submit(edit_request(300, 300)) for _ in range(4)]
        # Cancel once both engines are generating (not after a fixed sleep: a fast machine
        # finishes the first edits before it ends).
        generating: set[str] = set()
        deadline = time.monotonic() + 30
        while len(generating) < 2 and time.monotonic() < deadline:
            for event in client.poll(0.05):
                assert event.kind == "progress", event.header
                if event.header.get("stage") == "generate":
                    generating.add(event.id)
        assert len(generating) == 2, "both engines should be generating"
        for rid in rids:
            client.cancel(rid)
        for rid in rids:
            with pytest.raises(EngineError) as err:
                client.wait(rid, timeout=20)
            assert err.value.code == "cancelled"


def test_a_killed_engine_loses_only_its_own_edits(cluster):
    front, procs = cluster
    victim, survivor = procs[1], procs[2]
    clients = [Client(front) for _ in range(4)]
    ids = [c.submit(edit_request(300, 300)) for c in clients]
    time.sleep(0.2)
    victim.kill()
    served, lost = [], []
    for c, rid in zip(clients, ids):
        try:
            served.append(c.wait(rid, timeout=8).header["engine"]["pid"])
        except EngineError as exc:
            assert exc.code == "timeout"  # a heartbeat never came: told plainly
            lost.append(rid)
    assert served and set(served) == {survivor.pid}
    assert len(lost) <= 2
    with Client(front) as client:  # new work goes to the survivor
        assert client.edit(edit_request(300, 300), timeout=30).header["engine"]["pid"] == (
            survivor.pid
        )
    for c in clients:
        c.close()
