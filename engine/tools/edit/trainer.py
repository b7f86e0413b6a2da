"""The training loop behind `sketchfill train` (see train.py for the command and options).

Per step: one generator forward, a discriminator step (hinge + gradient penalty on one
concatenated real/fake/interpolated batch), a generator step (L1, perceptual, style, TV,
adversarial) and an EMA update of the generator weights, which are what gets exported.
GPU throughput: bf16 autocast, channels_last, cudnn autotuning, fused Adam, augmentation in
DataLoader workers, and no host-device sync except when logging or checking the time limit.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader

from ...pipeline.modelcard import write_atomic
from ...training.diffaugment import diff_augment, parse_policy
from ...training.guides import default_cache, prepare
from ...training.images import list_images
from ...training.losses import LossWeights, VGGFeatures, discriminator_losses, generator_losses
from ...training.prepared import summary as prepared_summary
from ...training.step_loop import format_seconds, save_atomic
from ...training.weights import VGG_FILE, vgg_pool3_arrays, write_vgg_pool3
from .card import GENERATOR, GENERATOR_FORMAT, LAST
from .data import EditDataset, StepSampler, encode, to_target
from .model import Discriminator, Generator

LOSS_NAMES = ("l1", "perceptual", "style", "tv", "adv", "d_hinge", "gp")
SAMPLE_ROWS = 4
EMA_DECAY = 0.999
PREVIEW_BASE = 1 << 40  # sample ids of the fixed preview batch, far from training ids


class Trainer:
    def __init__(self, args: argparse.Namespace, started: float):
        # OpenCV's thread pool does not survive fork(): a DataLoader worker forked after
        # the pool started blocks forever in its first parallel call. One OpenCV thread per
        # process, set before any OpenCV call, means the pool never starts; the DataLoader
        # workers are the parallelism.
        cv2.setNumThreads(1)
        self.args = args
        self.started = started
        self.stop_requested = False
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
        if use_cuda:
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        else:
            self.device = torch.device("cpu")
        if self.world > 1:
            # Long timeout: rank 0 may spend minutes computing guides before the barrier.
            dist.init_process_group(
                "nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=60)
            )
            if not use_cuda:
                torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.world))
        self.cuda = use_cuda
        self.is_main = self.rank == 0
        self.tty = sys.stderr.isatty()

    # --- set-up -------------------------------------------------------------------------

    def request_stop(self) -> None:
        self.stop_requested = True

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()

    def log(self, text: str, end: str = "\n") -> None:
        if self.is_main:
            print(text, end=end, file=sys.stderr, flush=True)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def _data(self, cache: Path) -> tuple[list[Path], list[Path]]:
        a = self.args
        images = list_images(a.data)
        if not images:
            raise SystemExit(f"no images in {a.data}")
        if self.is_main:
            prepare(images, cache, a.guide_size, quiet=False)
            if not (cache / VGG_FILE).is_file():
                write_vgg_pool3(cache / VGG_FILE)
        self.barrier()
        return images, prepare(images, cache, a.guide_size, quiet=True)

    def _config(self, images: list[Path], weights: LossWeights) -> dict:
        a = self.args
        data = Path(a.data).resolve()
        return {
            "res": a.res,
            "width": a.width,
            "d_width": a.d_width,
            "seed": a.seed,
            "batch": a.batch,
            "world": self.world,
            "lr": a.lr,
            "guide_size": a.guide_size,
            "d_augment": a.d_augment,
            "loss_weights": weights.as_dict(),
            "data": {
                "path": str(data),
                "name": data.name,
                "images": len(images),
                "note": a.data_note,
                # a prepare-faces folder: its crops' licences (with counts) and settings
                "prepared": prepared_summary(data),
            },
            "device": torch.cuda.get_device_name(self.device) if self.cuda else "cpu",
        }

    # --- the loop -----------------------------------------------------------------------

    def train(self) -> int:
        a = self.args
        out = Path(a.out)
        last, gen_only = out / LAST, out / GENERATOR
        if (last.exists() or gen_only.exists()) and not a.resume:
            self.log(f"{out} holds a run: pass --resume to continue it, or choose another --out")
            return 2
        cache = Path(a.cache) if a.cache else default_cache()
        images, guides = self._data(cache)
        weights = LossWeights.parse(a.loss_weights)
        config = self._config(images, weights)

        # Resume from last.pt; without it (a fresh GPU box that got only the small
        # generator.pt back) from the generator alone: discriminator and optimisers restart.
        ckpt = None
        if a.resume and (last.exists() or gen_only.exists()):
            ckpt = torch.load(
                last if last.exists() else gen_only, map_location="cpu", weights_only=True
            )
            if not last.exists():
                self.log(
                    f"no {LAST}: resuming the generator from {gen_only} (discriminator "
                    "and optimisers start afresh)"
                )
            for key in ("width", "d_width"):
                if ckpt["config"][key] != config[key]:
                    self.log(
                        f"--{key.replace('_', '-')} {config[key]} differs from the "
                        f"checkpoint's {ckpt['config'][key]}: using the checkpoint's"
                    )
                    config[key] = ckpt["config"][key]
        step = ckpt["step"] if ckpt else 0
        self.trained_seconds = ckpt.get("trained_seconds", 0.0) if ckpt else 0.0

        dev = self.device
        torch.manual_seed(a.seed + self.rank)
        gen = Generator(config["width"]).to(dev)
        disc = Discriminator(config["d_width"]).to(dev)
        ema = copy.deepcopy(gen).eval().requires_grad_(False)
        vgg = VGGFeatures(vgg_pool3_arrays([cache])).to(dev)
        full = ckpt is not None and "opt_g" in ckpt
        if ckpt and not full:
            weights_only = {k: v.float() for k, v in ckpt["state_dict"].items()}
            gen.load_state_dict(weights_only)
            ema.load_state_dict(weights_only)
        if full:
            gen.load_state_dict(ckpt["G"])
            disc.load_state_dict(ckpt["D"])
            ema.load_state_dict(ckpt["ema"])
            # The RNG drives the gradient-penalty interpolation: restoring it makes a
            # resumed run continue exactly like an uninterrupted one.
            torch.set_rng_state(ckpt["rng"]["cpu"])
            if self.cuda and ckpt["rng"]["cuda"] is not None:
                torch.cuda.set_rng_state(ckpt["rng"]["cuda"])
        fmt = torch.channels_last if self.cuda else torch.contiguous_format
        for m in (gen, disc, ema, vgg):
            m.to(memory_format=fmt)
        opt_kw = {"lr": a.lr, "betas": (0.5, 0.999)}
        if self.cuda:
            opt_kw["fused"] = True
        opt_g = torch.optim.Adam(gen.parameters(), **opt_kw)
        opt_d = torch.optim.Adam(disc.parameters(), **opt_kw)
        if full:
            opt_g.load_state_dict(ckpt["opt_g"])
            opt_d.load_state_dict(ckpt["opt_d"])
        gen_ddp, disc_ddp = gen, disc
        if self.world > 1:
            ids = [dev.index] if self.cuda else None
            gen_ddp = DDP(gen, device_ids=ids)
            disc_ddp = DDP(disc, device_ids=ids)

        dataset = EditDataset(images, guides, a.res, a.guide_size, a.seed)
        preview = self._preview(dataset)
        workers = a.workers if a.workers is not None else max(0, min(15, (os.cpu_count() or 1) - 1))
        loader = DataLoader(
            dataset,
            batch_size=a.batch,
            num_workers=workers,
            pin_memory=self.cuda,
            sampler=StepSampler(step, a.steps, a.batch, self.rank, self.world),
            drop_last=True,
            prefetch_factor=4 if workers else None,
            persistent_workers=False,
            # The loader draws its workers' base seed from this generator when iteration
            # starts; from the global one it would shift the restored RNG on every resume
            # (the samples themselves are seeded by their ids, see data.py).
            generator=torch.Generator().manual_seed(a.seed + self.rank),
        )
        self.log(
            f"training {len(images)} images at {a.res} px, batch {a.batch} x {self.world} "
            f"process(es), {workers} workers/process, device {config['device']}, "
            f"generator {sum(p.numel() for p in gen.parameters()) / 1e6:.2f} M params, "
            f"steps {step} -> {a.steps}"
        )
        if step >= a.steps:
            self.log("nothing to do: --steps already reached")
            return 0

        amp = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda)
        adversarial = weights.adv > 0
        policy = parse_policy(a.d_augment)
        no_d_terms = {k: torch.zeros((), device=dev) for k in ("d_hinge", "gp")}
        ema_params = list(ema.parameters())
        gen_params = list(gen.parameters())
        sums = torch.zeros(len(LOSS_NAMES), device=dev)
        count = 0
        self.save_seconds = 5.0  # until measured
        step_time = None
        last_save = last_log = time.monotonic()
        log_step = step
        session_start = time.monotonic()
        stopped_early = False

        prev = time.monotonic()
        for batch in loader:
            x = batch["input"].to(dev, non_blocking=True).contiguous(memory_format=fmt)
            y = batch["target"].to(dev, non_blocking=True).contiguous(memory_format=fmt)
            mask, cond = x[:, 3:4], x[:, 3:8]
            with amp:
                out_img = gen_ddp(x)
            comp = out_img * mask + y * (1 - mask)

            # With the adversarial weight at 0 (a CPU schedule: the discriminator's gradient
            # penalty needs a double backward) the discriminator is not run at all.
            d_terms = no_d_terms
            if adversarial:
                with amp:
                    d_terms = discriminator_losses(
                        disc_ddp, y, comp.detach(), cond, mask, weights, policy
                    )
                opt_d.zero_grad(set_to_none=True)
                d_terms["total"].backward()
                opt_d.step()

            # Generator step: the plain (non-DDP) discriminator with frozen weights, so DDP
            # never sees a discriminator forward without its own backward.
            disc.requires_grad_(False)
            with amp:
                fake_logits = disc(*diff_augment(comp, cond, policy)) if adversarial else None
                g_terms = generator_losses(out_img, y, mask, vgg, fake_logits, weights)
            opt_g.zero_grad(set_to_none=True)
            g_terms["total"].backward()
            opt_g.step()
            disc.requires_grad_(True)

            step += 1
            with torch.no_grad():
                decay = min(EMA_DECAY, (1 + step) / (10 + step))
                torch._foreach_lerp_(ema_params, gen_params, 1 - decay)
                terms = {**g_terms, **d_terms}
                sums += torch.stack([terms[k].detach().float() for k in LOSS_NAMES])
            count += 1

            # Wall time per step, data waits included: on a GPU the host runs ahead of the
            # device, so only the step-to-step interval measures the real pace.
            now = time.monotonic()
            dt, prev = now - prev, now
            step_time = dt if step_time is None else 0.9 * step_time + 0.1 * dt
            if step % a.log_every == 0 or step == a.steps:
                rate = (step - log_step) / max(now - last_log, 1e-9)
                self._progress(step, rate, (sums / count).tolist())
                sums.zero_()
                count, log_step, last_log = 0, step, now
            if self.is_main and step % a.sample_every == 0:
                self._write_samples(ema, preview, out, step)
            if step == a.steps:
                break
            if self._should_stop(step, step_time):
                stopped_early = True
                break
            if self.is_main and now - last_save > a.save_every * 60:
                self._save(out, step, config, gen, disc, ema, opt_g, opt_d, session_start)
                last_save = time.monotonic()

        if self.tty:
            self.log("")
        if self.is_main:
            self._write_samples(ema, preview, out, step)
            self._save(out, step, config, gen, disc, ema, opt_g, opt_d, session_start)
            why = "time limit / stop request" if stopped_early else "done"
            self.log(
                f"stopped at step {step}/{a.steps} ({why}); checkpoint {out / LAST}, "
                f"generator {out / GENERATOR}"
            )
        self.barrier()
        return 0

    def _should_stop(self, step: int, step_time: float) -> bool:
        """Time limit or SIGTERM. All ranks must stop at the same step, so with several
        processes the decision is shared (every 10 steps: one tiny all-reduce)."""
        if self.world > 1 and step % 10:
            return False
        stop = self.stop_requested
        if self.args.time_limit is not None:
            # Keep room for a checkpoint, a sample grid and a couple of steps.
            reserve = 2 * self.save_seconds + 3 * step_time + 5
            stop |= time.monotonic() + reserve > self.started + self.args.time_limit * 60
        if self.world > 1:
            flag = torch.tensor([float(stop)], device=self.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            stop = bool(flag.item())
        return stop

    def _progress(self, step: int, rate: float, losses: list[float]) -> None:
        a = self.args
        left = (a.steps - step) / max(rate, 1e-9)
        if a.time_limit is not None:
            left = min(left, self.started + a.time_limit * 60 - time.monotonic())
        frac = step / a.steps
        bar = "#" * int(frac * 20) + "." * (20 - int(frac * 20))
        vals = " ".join(f"{k} {v:.4g}" for k, v in zip(LOSS_NAMES, losses, strict=True))
        line = (
            f"[{bar}] {frac:4.0%} step {step}/{a.steps} | {rate:.2f} steps/s "
            f"{rate * a.batch * self.world:.1f} img/s | ETA {format_seconds(left)} | {vals}"
        )
        self.log(("\r" + line) if self.tty else line, end="" if self.tty else "\n")

    # --- outputs ------------------------------------------------------------------------

    def _preview(self, dataset: EditDataset) -> dict[str, torch.Tensor]:
        samples = [dataset.sample(PREVIEW_BASE + i) for i in range(SAMPLE_ROWS)]
        return {
            "input": torch.from_numpy(np.stack([encode(s) for s in samples])),
            "target": torch.from_numpy(np.stack([to_target(s.image) for s in samples])),
        }

    @torch.no_grad()
    def _write_samples(self, ema: Generator, preview: dict, out: Path, step: int) -> None:
        """Grid PNG, one row per preview sample: input, sketch, colour, output, truth."""
        x = preview["input"].to(self.device)
        y = preview["target"].to(self.device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.cuda):
            gen = ema(x).float()
        mask = x[:, 3:4]
        comp = gen * mask + y * (1 - mask)

        def rgb(t: torch.Tensor) -> np.ndarray:
            return ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()

        m = mask.cpu().numpy()[:, 0, ..., None]
        sketch = x[:, 4:5].cpu().numpy()[:, 0, ..., None]
        painted = (x[:, 5:8].abs().sum(1, keepdim=True) > 0).float().cpu().numpy()
        painted = painted[:, 0, ..., None]
        erased = rgb(x[:, 0:3]) * (1 - m) + 128 * m
        sketch_view = 255 - 55 * m - 200 * sketch
        color_view = rgb(x[:, 5:8]) * painted + 128 * (1 - painted)
        cols = [erased, sketch_view.repeat(3, -1), color_view, rgb(comp), rgb(y)]
        grid = np.concatenate([np.concatenate(list(c), 0) for c in cols], 1)
        folder = out / "samples"
        folder.mkdir(parents=True, exist_ok=True)
        ok, png = cv2.imencode(".png", np.ascontiguousarray(grid.astype(np.uint8)[..., ::-1]))
        if ok:
            write_atomic(folder / f"step_{step:07d}.png", png.tobytes())

    def _save(
        self, out: Path, step: int, config: dict, gen, disc, ema, opt_g, opt_d, session_start: float
    ) -> None:
        t = time.monotonic()
        out.mkdir(parents=True, exist_ok=True)
        trained = self.trained_seconds + (t - session_start)
        save_atomic(
            {
                "format": "sketchfill-train/1",
                "step": step,
                "config": config,
                "trained_seconds": trained,
                "G": gen.state_dict(),
                "D": disc.state_dict(),
                "ema": ema.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "rng": {
                    "cpu": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state() if self.cuda else None,
                },
            },
            out / LAST,
        )
        # float16 halves the file (5.5 M params: 11 MB); export casts back to float32.
        half = {
            k: v.detach().to("cpu", torch.float16).contiguous() for k, v in ema.state_dict().items()
        }
        save_atomic(
            {
                "format": GENERATOR_FORMAT,
                "step": step,
                "config": config,
                "trained_seconds": trained,
                "state_dict": half,
            },
            out / GENERATOR,
        )
        self.save_seconds = max(self.save_seconds * 0.5, time.monotonic() - t)
