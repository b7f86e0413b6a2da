"""The composite training loop (see train.py for the losses and the command)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...pipeline.images import save_image
from ...training.prepared import summaries as prepared_summaries
from ...training.step_loop import StepLoop, read_checkpoint
from .card import CHECKPOINT, FORMAT
from .data import CompositeData
from .model import CompositeNet, compose

LOSSES = ("l1", "gradient", "source_l1")
SAMPLE_ROWS = 6


def load_checkpoint(path: Path) -> dict:
    """RUN/composite.pt as written by the trainer; ValueError for anything else."""
    return read_checkpoint(path, FORMAT, "train-composite")


def seam_band(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """1 within `radius` pixels of the mask's edge, 0 elsewhere (soft masks: their ramp)."""
    k = 2 * radius + 1
    grown = F.max_pool2d(mask, k, 1, radius)
    shrunk = -F.max_pool2d(-mask, k, 1, radius)
    return (grown - shrunk).clamp(0, 1)


def composite_loss(out, truth, mask, weights: dict[str, float]):
    """Weighted L1 (more inside the face) and L1 of horizontal and vertical differences,
    more along the mask's edge, where a seam shows."""
    weight = 1 + weights["face"] * mask
    l1 = (weight * (out - truth).abs()).mean() / (1 + weights["face"] * mask.mean())
    band = 1 + weights["seam"] * seam_band(mask, max(1, mask.shape[-1] // 64))
    dy = (torch.diff(out, dim=2) - torch.diff(truth, dim=2)).abs()
    dx = (torch.diff(out, dim=3) - torch.diff(truth, dim=3)).abs()
    gradient = (band[..., 1:, :] * dy).mean() + (band[..., :, 1:] * dx).mean()
    return l1, gradient, l1 + weights["gradient"] * gradient


class CompositeTrainer(StepLoop):
    FORMAT = FORMAT
    LOSSES = LOSSES
    PARTS = ("net", "opt")

    def __init__(self, args: argparse.Namespace, started: float):
        super().__init__(args, started)
        self.weights = {
            "face": args.face_weight,
            "gradient": args.gradient_weight,
            "seam": args.seam_weight,
        }
        self.path = args.out / CHECKPOINT
        saved = load_checkpoint(self.path) if args.resume and self.path.is_file() else None
        width = saved["config"]["width"] if saved else args.width
        self.res = saved["config"]["res"] if saved else args.res
        self.data = CompositeData(list(args.data), self.res)
        self.net = CompositeNet(width)
        self.opt = torch.optim.Adam(self.net.parameters(), args.lr, betas=(0.9, 0.999))
        self.config = {
            "width": width,
            "res": self.res,
            "batch": args.batch,
            "lr": args.lr,
            "weights": self.weights,
            "seed": args.seed,
            "data": [str(f.absolute()) for f in args.data],
            "prepared": prepared_summaries(args.data),  # licences of prepare-faces folders
            "photos": len(self.data.paths),
            "data_note": args.data_note,
        }
        if saved is not None:
            self.resume(saved, args.lr)

    def _train_step(self, batch: dict[str, np.ndarray]) -> list[float]:
        target, source, mask, truth = (
            torch.from_numpy(batch[k]) for k in ("target", "source", "mask", "truth")
        )
        out = compose(target, source, *self.net(target, source, mask))
        l1, gradient, total = composite_loss(out, truth, mask, self.weights)
        self.opt.zero_grad(set_to_none=True)
        total.backward()
        self.opt.step()
        with torch.no_grad():
            before = (source - truth).abs().mean()
        return [l1.item(), gradient.item(), before.item()]

    @torch.no_grad()
    def _samples(self) -> Path:
        """A sheet of fixed scenes: target, pasted face, network composite, truth."""
        b = {
            k: torch.from_numpy(v)
            for k, v in self.data.batch(SAMPLE_ROWS, self.args.seed + 1, 1 << 40).items()
        }
        out = compose(b["target"], b["source"], *self.net(b["target"], b["source"], b["mask"]))
        cols = [b["target"], b["source"], out, b["truth"]]
        rows = [np.concatenate([c[i].numpy() for c in cols], 2) for i in range(SAMPLE_ROWS)]
        sheet = (np.concatenate(rows, 1).transpose(1, 2, 0) * 255 + 0.5).clip(0, 255)
        path = self._sheet_path()
        save_image(path, sheet.astype(np.uint8))
        return path
