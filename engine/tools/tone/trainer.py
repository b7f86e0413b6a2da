"""The tone training loop (see train.py for the losses and the command)."""

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
from .data import ToneData
from .model import Critic, Inverse, ToneNet, apply_tone

LOSSES = ("color", "natural", "artifact", "inverse", "critic")
SAMPLE_ROWS = 6


def load_checkpoint(path: Path) -> dict:
    """RUN/tone.pt as written by the trainer; ValueError for anything else."""
    return read_checkpoint(path, FORMAT, "train-tone")


class ToneTrainer(StepLoop):
    FORMAT = FORMAT
    LOSSES = LOSSES
    PARTS = ("tone", "inverse", "critic", "opt_g", "opt_c", "opt_d")

    def __init__(self, args: argparse.Namespace, weights: dict[str, float], started: float):
        super().__init__(args, started)
        self.weights = weights
        self.path = args.out / CHECKPOINT
        saved = load_checkpoint(self.path) if args.resume and self.path.is_file() else None
        width = saved["config"]["width"] if saved else args.width
        self.res = saved["config"]["res"] if saved else args.res
        self.data = ToneData(list(args.data), self.res)
        self.tone, self.inverse, self.critic = ToneNet(width), Inverse(), Critic()
        betas = (0.5, 0.999)
        self.opt_g = torch.optim.Adam(self.tone.parameters(), args.lr, betas=betas)
        self.opt_c = torch.optim.Adam(self.inverse.parameters(), args.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.critic.parameters(), args.lr, betas=betas)
        self.config = {
            "width": width,
            "res": self.res,
            "batch": args.batch,
            "lr": args.lr,
            "weights": weights,
            "seed": args.seed,
            "data": [str(f.absolute()) for f in args.data],
            "prepared": prepared_summaries(args.data),  # licences of prepare-faces folders
            "photos": len(self.data.paths),
            "data_note": args.data_note,
        }
        if saved is not None:
            self.resume(saved, args.lr)

    def _train_step(self, batch) -> list[float]:
        w = self.weights
        x, target, real = (
            torch.from_numpy(a) for a in (batch.inputs, batch.targets, batch.natural)
        )
        points, gain = self.tone.transform(x)
        out = apply_tone(x, points, gain)

        # Critic: untouched photos score 1, enhanced ones 0 (least squares).
        self.opt_d.zero_grad(set_to_none=True)
        d_loss = (
            0.5 * ((self.critic(real) - 1) ** 2).mean()
            + 0.5 * (self.critic(out.detach()) ** 2).mean()
        )
        d_loss.backward()
        self.opt_d.step()

        # Inverse: learn to undo the enhancement.
        self.opt_c.zero_grad(set_to_none=True)
        c_loss = F.mse_loss(self.inverse(out.detach()), x)
        c_loss.backward()
        self.opt_c.step()

        # Enhancer: the weighted sum of colour, naturalness and artifact losses.
        self.opt_g.zero_grad(set_to_none=True)
        color = F.mse_loss(out, target)
        natural = ((self.critic(out) - 1) ** 2).mean()
        artifact = F.mse_loss(self.inverse(out), x)
        total = w["color"] * color + w["natural"] * natural + w["artifact"] * artifact
        total.backward()
        self.opt_g.step()
        return [t.item() for t in (color, natural, artifact, c_loss, d_loss)]

    @torch.no_grad()
    def _samples(self) -> Path:
        """A sheet of fixed preview photos: faulty input, fixed algorithm, network, original."""
        batch = self.data.batch(SAMPLE_ROWS, self.args.seed + 1, 1 << 40)
        x = torch.from_numpy(batch.inputs)
        out = apply_tone(x, *self.tone.transform(x)).numpy()
        rows = [
            np.concatenate([a[i] for a in (batch.inputs, batch.targets, out, batch.originals)], 2)
            for i in range(SAMPLE_ROWS)
        ]
        sheet = (np.concatenate(rows, 1).transpose(1, 2, 0) * 255 + 0.5).clip(0, 255)
        path = self._sheet_path()
        save_image(path, sheet.astype(np.uint8))
        return path
