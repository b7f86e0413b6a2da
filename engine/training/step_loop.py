"""The training loop the small networks share (tone, composite, restore): steps up to --steps or
the time limit, a log line every --log-every steps, a checkpoint every --save-every
minutes (and at the end, also on SIGTERM), then a sheet of samples."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np


def save_atomic(obj, path: Path) -> None:
    """torch.save via a temporary file and a rename: a killed run never leaves half a
    checkpoint."""
    import torch

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def format_seconds(s: float) -> str:
    s = max(0, int(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def read_checkpoint(path: Path, fmt: str, command: str) -> dict:
    """A checkpoint of format `fmt` as written by `sketchfill COMMAND`; ValueError for
    anything else."""
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != fmt:
        raise ValueError(f"{path} is not a checkpoint written by `sketchfill {command}`")
    return saved


class StepLoop:
    """Subclasses set `path`, `data` (with `paths` and `batch(size, seed, step)`), `res`,
    `config`, `FORMAT`, `LOSSES`, `PARTS` (the attributes holding the networks and
    optimisers a checkpoint keeps) and implement `_train_step` and `_samples`."""

    FORMAT: str
    LOSSES: tuple[str, ...]
    PARTS: tuple[str, ...]
    path: Path
    res: int
    config: dict[str, Any]

    def __init__(self, args: argparse.Namespace, started: float):
        self.args, self.started = args, started
        self.stop_requested = False
        self.step, self.seconds = 0, 0.0

    def request_stop(self) -> None:
        self.stop_requested = True

    def resume(self, saved: dict, lr: float) -> None:
        """Every part from the checkpoint, and where it stopped; --lr counts on resume too."""
        import torch

        for name in self.PARTS:
            part = getattr(self, name)
            part.load_state_dict(saved[name])
            if isinstance(part, torch.optim.Optimizer):
                for group in part.param_groups:
                    group["lr"] = lr
        self.step, self.seconds = saved["step"], saved["seconds"]
        print(f"resumed {self.path} at step {self.step}")

    def train(self) -> int:
        a = self.args
        a.out.mkdir(parents=True, exist_ok=True)
        print(f"{len(self.data.paths)} photos, {self.res} px, batch {a.batch}, to step {a.steps}")
        last_save = time.monotonic()
        sums, count, tick = np.zeros(len(self.LOSSES)), 0, time.monotonic()
        step_time = 0.0
        while self.step < a.steps and not self._should_stop(step_time):
            t0 = time.monotonic()
            sums += self._train_step(self.data.batch(a.batch, a.seed, self.step))
            count += 1
            self.step += 1
            step_time = time.monotonic() - t0
            self.seconds += step_time
            if self.step % a.log_every == 0 or self.step == a.steps:
                self._progress(count / (time.monotonic() - tick), sums / count)
                sums, count, tick = np.zeros(len(self.LOSSES)), 0, time.monotonic()
            if time.monotonic() - last_save > a.save_every * 60:
                self._save()
                last_save = time.monotonic()
        self._save()
        self._samples()
        print(f"stopped at step {self.step}; checkpoint {self.path}")
        return 0

    def _train_step(self, batch) -> list[float]:
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        return {name: getattr(self, name).state_dict() for name in self.PARTS}

    def _samples(self) -> Path:
        raise NotImplementedError

    def _should_stop(self, step_time: float) -> bool:
        if self.args.time_limit is None:
            return self.stop_requested
        reserve = 3 * step_time + 10  # a checkpoint and the sample sheet
        return self.stop_requested or (
            time.monotonic() + reserve > self.started + self.args.time_limit * 60
        )

    def _progress(self, rate: float, losses: np.ndarray) -> None:
        a = self.args
        left = format_seconds((a.steps - self.step) / max(rate, 1e-9))
        vals = " ".join(f"{k} {v:.4g}" for k, v in zip(self.LOSSES, losses, strict=True))
        print(f"step {self.step}/{a.steps} | {rate:.2f} steps/s | ETA {left} | {vals}", flush=True)

    def _save(self) -> None:
        meta = {"format": self.FORMAT, "step": self.step, "seconds": self.seconds}
        save_atomic({**meta, "config": self.config, **self._state()}, self.path)

    def _sheet_path(self) -> Path:
        return self.args.out / "samples" / f"step_{self.step:07d}.png"
