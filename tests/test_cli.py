"""The `sketchfill` command line, run as users run it (subprocesses, real files)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import running_engine
from PIL import Image

SKETCHFILL = str(Path(sys.executable).with_name("sketchfill"))
DEMO = Path(__file__).resolve().parents[1] / "engine" / "assets" / "demo"


def sketchfill(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([SKETCHFILL, *args], capture_output=True, text=True, timeout=timeout)


def demo_args(out: Path) -> list[str]:
    return [
        str(DEMO / "astronaut.png"),
        "--mask",
        str(DEMO / "mask.png"),
        "--sketch",
        str(DEMO / "sketch.png"),
        "--color",
        str(DEMO / "color.png"),
        "-o",
        str(out),
        "--seed",
        "5",
    ]


def test_edit_in_process_changes_only_the_mask(tmp_path, echo_model):
    out = tmp_path / "out.png"
    run = sketchfill("edit", *demo_args(out), "--in-process", "--model", str(echo_model))
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["engine"] == "in-process" and summary["seed"] == 5
    before = np.asarray(Image.open(DEMO / "astronaut.png").convert("RGB"))
    after = np.asarray(Image.open(out))
    assert after.shape == before.shape  # RGB in, RGB out
    mask = np.asarray(Image.open(DEMO / "mask.png")) >= 128
    assert np.array_equal(after[~mask], before[~mask])
    assert (after[mask] != before[mask]).any()


def test_edit_through_a_running_engine_matches_in_process(tmp_path, echo_model):
    local = tmp_path / "local.png"
    assert (
        sketchfill("edit", *demo_args(local), "--in-process", "--model", str(echo_model)).returncode
        == 0
    )
    remote = tmp_path / "remote.png"
    with running_engine(echo_model) as engine:
        run = sketchfill("edit", *demo_args(remote), "--engine", engine.bound_endpoint)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["engine"] == engine.bound_endpoint
    assert np.array_equal(np.asarray(Image.open(local)), np.asarray(Image.open(remote)))


def test_edit_falls_back_to_in_process_when_no_engine_answers(tmp_path, echo_model):
    out = tmp_path / "out.png"
    run = sketchfill(
        "edit",
        *demo_args(out),
        "--engine",
        f"tcp://127.0.0.1:{free_port()}",
        "--model",
        str(echo_model),
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["engine"] == "in-process"


def test_edit_with_mismatched_layer_sizes_fails_plainly_and_writes_nothing(tmp_path, echo_model):
    small = tmp_path / "small.png"
    Image.new("L", (10, 10), 255).save(small)
    out = tmp_path / "out.png"
    run = sketchfill(
        "edit",
        str(DEMO / "astronaut.png"),
        "--mask",
        str(small),
        "-o",
        str(out),
        "--in-process",
        "--model",
        str(echo_model),
    )
    assert run.returncode == 1
    assert "is 10x10 but the image is 512x512" in run.stderr
    assert list(tmp_path.iterdir()) == [small]


def test_edit_with_missing_model_says_what_to_do(tmp_path):
    run = sketchfill(
        "edit", *demo_args(tmp_path / "o.png"), "--in-process", "--model", str(tmp_path / "nope")
    )
    assert run.returncode == 1 and "model" in run.stderr and "Traceback" not in run.stderr


def test_demo_without_a_model_stops_with_a_clear_message(tmp_path):
    run = sketchfill("demo", "-o", str(tmp_path / "d.png"), "--model", "not-installed")
    assert run.returncode == 3
    assert "no model named 'not-installed' is installed" in run.stderr
    assert not (tmp_path / "d.png").exists()


def test_demo_writes_a_before_after_sheet(tmp_path, echo_model):
    out = tmp_path / "demo.png"
    run = sketchfill("demo", "-o", str(out), "--model", str(echo_model))
    assert run.returncode == 0, run.stderr
    sheet = Image.open(out)
    assert sheet.width > 3 * 512 and sheet.height > 512


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_and_hello_as_processes(echo_model):
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    proc = subprocess.Popen(
        [
            SKETCHFILL,
            "serve",
            "--endpoint",
            endpoint,
            "--model",
            str(echo_model),
            "--max-pixels",
            "1234567",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            run = sketchfill("hello", "--engine", endpoint, "--timeout", "1")
            if run.returncode == 0 or time.monotonic() > deadline:
                break
        assert run.returncode == 0, run.stderr
        hello = json.loads(run.stdout)
        assert hello["limits"]["max_pixels"] == 1234567 and hello["model"]["name"] == "echo"
    finally:
        proc.terminate()
        assert proc.wait(15) == 0, "serve did not stop cleanly on SIGTERM"


def test_hello_without_engine_fails_plainly():
    run = sketchfill("hello", "--engine", f"tcp://127.0.0.1:{free_port()}", "--timeout", "0.3")
    assert run.returncode == 1 and "no SketchFill engine answers" in run.stderr


@pytest.mark.parametrize("endpoint", ["tcp://0.0.0.0:5737", "tcp://192.168.1.10:5737"])
def test_serve_refuses_public_endpoints_without_keys(endpoint):
    run = sketchfill("serve", "--endpoint", endpoint)
    assert run.returncode == 2 and "without keys" in run.stderr and "sketchfill keys" in run.stderr
