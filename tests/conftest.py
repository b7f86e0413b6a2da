"""Shared fixtures: tiny contract-shaped ONNX models and real engines on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq
from onnx_fixtures import build_model
from sketchfill import install
from sketchfill.serve.server import Engine, ServeConfig

REPO = Path(__file__).resolve().parents[1]
PYZMQ_WHEELS = Path(
    os.environ.get("SKETCHFILL_TEST_WHEELS") or Path.home() / ".cache/sketchfill/test-wheels"
)


@pytest.fixture(scope="session")
def echo_model(tmp_path_factory) -> Path:
    return build_model(tmp_path_factory.mktemp("models") / "echo", resolution=64)


@pytest.fixture(scope="session")
def slow_model(tmp_path_factory) -> Path:
    # About two seconds a run on two cores: long enough to cancel and to queue behind.
    return build_model(
        tmp_path_factory.mktemp("models") / "slow", resolution=256, slow_convs=60, name="slow"
    )


@contextlib.contextmanager
def running_engine(model: Path | str | None, **config) -> Iterator[Engine]:
    """An Engine serving on a free loopback port in a thread of this process."""
    cfg = ServeConfig(
        endpoint="tcp://127.0.0.1:*",
        model=str(model) if model else None,
        **{"threads": 2, "warmup": 0, **config},
    )
    engine = Engine(cfg, context=zmq.Context())
    thread = threading.Thread(target=engine.serve_forever, daemon=True)
    thread.start()
    assert engine.ready.wait(30), "engine did not start"
    try:
        yield engine
    finally:
        engine.stop()
        thread.join(10)
        assert not thread.is_alive(), "engine did not stop"


@pytest.fixture
def engine(echo_model) -> Iterator[Engine]:
    with running_engine(echo_model) as e:
        yield e


def face_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """An RGBA test picture with structure everywhere (gradients plus noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack(
        [x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=-1
    )
    rgb = (rgb + rng.integers(0, 30, rgb.shape)).clip(0, 255).astype(np.uint8)
    return np.concatenate([rgb, np.full((height, width, 1), 255, np.uint8)], axis=-1)


@pytest.fixture(scope="session")
def wheels(tmp_path_factory) -> Path:
    """Real pyzmq wheels for this machine and every host Python, downloaded once into a
    cache outside the repo (the same code path as the installer's own cache)."""
    here = install.Platform.current(tmp_path_factory.mktemp("data"))
    try:
        install.fetch_pyzmq(here, tmp_path_factory.mktemp("w"), wheels=None, cache=PYZMQ_WHEELS)
    except install.InstallError as exc:
        pytest.skip(f"no pyzmq wheels for this platform and no network to get them: {exc}")
    return PYZMQ_WHEELS


def checkout_copy(tmp_path: Path) -> Path:
    """The files a clean clone has (tracked or not ignored), copied: ignored build outputs
    and big local files must not make the installer pass here and fail on a fresh clone."""
    repo = tmp_path / "checkout"
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, repo / name)
    return repo


def user_env(home: Path, data: Path, bin_dir: Path) -> dict[str, str]:
    """The environment of a user whose home is `home` and data folder `data`, with only
    `bin_dir` and the system's folders on PATH (what an installer run there sees)."""
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(data),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        # The real pip cache: the engine's dependencies then install in seconds.
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache/pip"),
    }
    env.pop("GIMP3_DIRECTORY", None)
    return env
