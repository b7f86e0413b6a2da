"""The restore training loop (see train.py for the losses and the command)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ...pipeline.images import save_image
from ...training.losses import LossWeights, VGGFeatures, generator_losses
from ...training.prepared import summaries as prepared_summaries
from ...training.step_loop import StepLoop, read_checkpoint
from ...training.weights import vgg_pool3_arrays
from .card import CHECKPOINT, FORMAT
from .data import RestoreData
from .model import Generator, initial_generator

LOSSES = ("l1", "perceptual", "style", "tv", "hole_l1")
SAMPLE_ROWS = 6


def load_checkpoint(path: Path) -> dict:
    """RUN/restore.pt as written by the trainer; ValueError for anything else."""
    return read_checkpoint(path, FORMAT, "train-restore")


class RestoreTrainer(StepLoop):
    FORMAT = FORMAT
    LOSSES = LOSSES
    PARTS = ("net", "opt")

    def __init__(self, args: argparse.Namespace, started: float):
        super().__init__(args, started)
        if args.threads:
            torch.set_num_threads(args.threads)
        self.path = args.out / CHECKPOINT
        saved = load_checkpoint(self.path) if args.resume and self.path.is_file() else None
        config = saved["config"] if saved else {}
        self.res = config.get("res", args.res)
        prior = not config.get("no_prior", args.no_prior)
        self.data = RestoreData(list(args.data), self.res, prior=prior)
        if saved is not None:
            self.net = Generator(config["width"])
        else:
            self.net = initial_generator(args.init)
        self.net.train()
        self.weights = LossWeights.parse(",".join(filter(None, ["adv=0", args.loss_weights])))
        self.vgg = VGGFeatures(vgg_pool3_arrays())
        self.opt = torch.optim.Adam(self.net.parameters(), args.lr, betas=(0.5, 0.999))
        self.config = {
            "width": self.net.enc1.conv.weight.shape[0] // 2,
            "res": self.res,
            "batch": args.batch,
            "lr": args.lr,
            "no_prior": not prior,
            "init": config.get("init", str(args.init)),
            "weights": self.weights.as_dict(),
            "seed": args.seed,
            "data": [str(f.absolute()) for f in args.data],
            "prepared": prepared_summaries(args.data),  # licences of prepare-faces folders
            "photos": len(self.data.paths),
            "faces": len(self.data.faces),
            "data_note": args.data_note,
        }
        if saved is not None:
            self.resume(saved, args.lr)

    def _train_step(self, batch: dict[str, np.ndarray]) -> list[float]:
        x, target, mask = (torch.from_numpy(batch[k]) for k in ("input", "target", "mask"))
        out = self.net(x)
        terms = generator_losses(out, target, mask, self.vgg, None, self.weights)
        self.opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.opt.step()
        with torch.no_grad():
            hole = ((out - target).abs() * mask).sum() / (3 * mask.sum()).clamp(min=1)
        return [terms[k].item() for k in LOSSES[:4]] + [hole.item()]

    @torch.no_grad()
    def _samples(self) -> Path:
        """A sheet of fixed samples: erased input, prior, restored, truth."""
        self.net.eval()
        b = self.data.batch(SAMPLE_ROWS, self.args.seed + 1, 1 << 40)
        x = torch.from_numpy(b["input"])
        out = self.net(x).numpy()
        self.net.train()
        erased, prior = b["input"][:, :3], b["input"][:, 5:8]
        mask = b["mask"]
        comp = out * mask + b["target"] * (1 - mask)
        cols = [erased, prior, comp, b["target"]]
        rows = [np.concatenate([c[i] for c in cols], 2) for i in range(SAMPLE_ROWS)]
        sheet = ((np.concatenate(rows, 1).transpose(1, 2, 0) + 1) * 127.5 + 0.5).clip(0, 255)
        path = self._sheet_path()
        save_image(path, sheet.astype(np.uint8))
        return path
