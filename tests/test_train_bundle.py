"""`sketchfill train-bundle`: a folder that trains on a box without network or weights."""

from __future__ import annotations

import os
import subprocess
import sys

import torch
from sketchfill.training import bundle
from sketchfill.training.images import list_images
from sketchfill.training.weights import VGG_FILE
from train_helpers import SIZE, TINY, cache_dir, guide_files, small_faces, workdir


def test_bundle_trains_offline(tmp_path):
    guide_files()
    out = workdir() / "bundle"
    argv = [
        "--data",
        str(small_faces()),
        "--out",
        str(out),
        "--guide-size",
        str(SIZE),
        "--cache",
        str(cache_dir()),
    ]
    assert bundle.main(argv) == 0
    images = list_images(out / small_faces().name)
    assert [p.name for p in images] == [p.name for p in list_images(small_faces())]
    assert (out / "guides" / VGG_FILE).stat().st_size < 5_000_000
    assert len(list((out / "guides").glob("*.npz"))) == len(images) + 1

    # No weights cache, no package index: everything must come from the bundle.
    env = {
        **os.environ,
        "SKETCHFILL_CACHE": str(tmp_path / "empty"),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": "",
        "PIP_EXTRA_INDEX_URL": "",
    }
    cmd = [
        sys.executable,
        "-m",
        "sketchfill.tools.edit.train",
        "--data",
        str(out / small_faces().name),
        "--cache",
        str(out / "guides"),
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "1",
        *TINY,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["step"] == 1
    assert not (tmp_path / "empty").exists()
