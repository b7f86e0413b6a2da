"""`sketchfill export-tone`: RUN/tone.pt -> models/<name>/model.onnx + model.json.

Checked against torch on training-style thumbnails (fails above --tolerance), timed with
ONNX Runtime as the engine runs it, and described by a model card (task "tone").

The CLI imports this module to build its parser: torch and onnx are imported in `run` only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ...training.cli import add_export_arguments, run_export
from .card import card_metrics

HELP = "export a trained tone network to ONNX with its model card"
DEFAULT_NAME = "sketchfill-tone"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_export_arguments(p, "train-tone", DEFAULT_NAME)


def run(args: argparse.Namespace) -> int:
    return run_export(export, args)


def export(args: argparse.Namespace) -> Path:
    import numpy as np

    from ...pipeline.modelcard import INPUT_NAME, ONNX_FILE, TONE_OUTPUTS, ModelCard, sha256_file
    from ...training.exporting import export_checked, read_checkpoint, staged_model
    from .data import ToneData
    from .model import GAIN, ToneNet
    from .trainer import load_checkpoint

    ckpt = read_checkpoint(Path(args.checkpoint), load_checkpoint)
    config, step = ckpt["config"], int(ckpt["step"])
    net = ToneNet(config["width"])
    net.load_state_dict(ckpt["tone"])
    net.eval()
    res = config["res"]
    folders = [Path(f) for f in config["data"] if Path(f).is_dir()]
    if folders:
        samples = ToneData(folders, res).batch(4, seed=1234, step=0).inputs
    else:  # the training photos are not on this machine: random thumbnails still check
        samples = np.random.default_rng(0).random((4, 3, res, res), dtype=np.float32)

    feeds = [{INPUT_NAME: x[None]} for x in samples]
    with staged_model(Path(args.out), args.name) as staging:
        onnx_path = staging / ONNX_FILE
        diff, ms = export_checked(
            net, feeds, list(TONE_OUTPUTS), onnx_path, args.opset, args.tolerance
        )
        print(f"latency: {ms} ms per {res}-px thumbnail")
        metrics = card_metrics(args.metrics) if args.metrics else {}
        card = ModelCard.for_tone(
            args.name,
            args.version or f"0.1.0+step{step}",
            res,
            sha256_file(onnx_path),
            GAIN,
            description="Auto tone: per-channel tone curves and a coarse exposure-gain grid "
            "predicted from a thumbnail, applied at full resolution by the engine.",
            license="Non-commercial research use only: trained on non-commercial research "
            "data (see training.licence).",
            training={
                "photos": config["photos"],
                "licence": config["data_note"],
                "steps": step,
                "resolution": res,
                "batch": config["batch"],
                "device": "cpu",
                "hours": round(float(ckpt["seconds"]) / 3600, 3),
                "loss_weights": config["weights"],
                "losses": [
                    "colour: MSE to the fixed algorithm's result (gray-world white balance, "
                    "auto-levels, gamma to mid-grey) for the same input",
                    "naturalness: least-squares GAN loss against untouched photos",
                    "artifact: MSE between the input and the inverse network's reconstruction",
                ],
                "inputs": "photos with random exposure, gamma, contrast, colour-cast and "
                "faded-black faults (15 % left as they are); no pairs are used",
                **({"schedule": args.schedule} if args.schedule else {}),
            },
            metrics=metrics,
            extra={
                "architecture": f"encoder (3 stride-2 stages), 3 residual blocks, decoder with "
                f"skip connections; width {config['width']}; heads: {GAIN}x{GAIN} log2 gain "
                "grid (+-1 stop) and 17-point monotone curves per channel",
                "parameters": sum(p.numel() for p in net.parameters()),
                "opset": args.opset,
                "parity_max_abs_diff": diff,
                "latency_ms": ms,
            },
        )
        card.save(staging)
    return Path(args.out) / args.name
