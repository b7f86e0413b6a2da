"""The tone training loop (see tone_loop.py for the losses and the command)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..images import save_image
from .tone_data import ToneData
from .tone_loop import CHECKPOINT, FORMAT
from .tone_model import Critic, Inverse, ToneNet, apply_tone
from .trainer import format_seconds, save_atomic

LOSSES = ("color", "natural", "artifact", "inverse", "critic")
SAMPLE_ROWS = 6


def load_checkpoint(path: Path) -> dict:
    """RUN/tone.pt as written by the trainer; ValueError for anything else."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise ValueError(f"{path} is not a tone checkpoint written by `sketchfill train-tone`")
    return saved


class ToneTrainer:
    def __init__(self, args: argparse.Namespace, weights: dict[str, float], started: float):
        self.args, self.weights, self.started = args, weights, started
        self.stop_requested = False
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
        self.step, self.seconds = 0, 0.0
        self.config = {
            "width": width,
            "res": self.res,
            "batch": args.batch,
            "lr": args.lr,
            "weights": weights,
            "seed": args.seed,
            "data": [str(f.absolute()) for f in args.data],
            "photos": len(self.data.paths),
            "data_note": args.data_note,
        }
        if saved is not None:
            for name in ("tone", "inverse", "critic", "opt_g", "opt_c", "opt_d"):
                getattr(self, name).load_state_dict(saved[name])
            for opt in (self.opt_g, self.opt_c, self.opt_d):
                for group in opt.param_groups:  # --lr counts on resume too
                    group["lr"] = args.lr
            self.step, self.seconds = saved["step"], saved["seconds"]
            print(f"resumed {self.path} at step {self.step}")

    def request_stop(self) -> None:
        self.stop_requested = True

    def train(self) -> int:
        a = self.args
        a.out.mkdir(parents=True, exist_ok=True)
        print(f"{len(self.data.paths)} photos, {self.res} px, batch {a.batch}, to step {a.steps}")
        last_save = time.monotonic()
        sums, count, tick = np.zeros(len(LOSSES)), 0, time.monotonic()
        step_time = 0.0
        while self.step < a.steps and not self._should_stop(step_time):
            t0 = time.monotonic()
            batch = self.data.batch(a.batch, a.seed, self.step)
            sums += self._train_step(batch)
            count += 1
            self.step += 1
            step_time = time.monotonic() - t0
            self.seconds += step_time
            if self.step % a.log_every == 0 or self.step == a.steps:
                rate = count / (time.monotonic() - tick)
                self._progress(rate, sums / count)
                sums, count, tick = np.zeros(len(LOSSES)), 0, time.monotonic()
            if time.monotonic() - last_save > a.save_every * 60:
                self._save()
                last_save = time.monotonic()
        self._save()
        self._samples()
        print(f"stopped at step {self.step}; checkpoint {self.path}")
        return 0

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

    def _should_stop(self, step_time: float) -> bool:
        if self.args.time_limit is None:
            return self.stop_requested
        reserve = 3 * step_time + 10  # a checkpoint and the sample sheet
        return self.stop_requested or (
            time.monotonic() + reserve > self.started + self.args.time_limit * 60
        )

    def _progress(self, rate: float, losses: np.ndarray) -> None:
        a = self.args
        left = (a.steps - self.step) / max(rate, 1e-9)
        vals = " ".join(f"{k} {v:.4g}" for k, v in zip(LOSSES, losses, strict=True))
        eta = format_seconds(left)
        print(f"step {self.step}/{a.steps} | {rate:.2f} steps/s | ETA {eta} | {vals}", flush=True)

    def _save(self) -> None:
        state = {
            "format": FORMAT,
            "step": self.step,
            "seconds": self.seconds,
            "config": self.config,
            **{n: getattr(self, n).state_dict() for n in ("tone", "inverse", "critic")},
            **{n: getattr(self, n).state_dict() for n in ("opt_g", "opt_c", "opt_d")},
        }
        save_atomic(state, self.path)

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
        path = self.args.out / "samples" / f"step_{self.step:07d}.png"
        save_image(path, sheet.astype(np.uint8))
        return path
