"""`sketchfill export-composite`: RUN/composite.pt -> models/<name>/model.onnx + model.json.

Checked against torch on training scenes (fails above --tolerance), timed with ONNX Runtime
as the engine runs it, and described by a model card (task "composite").

The CLI imports this module to build its parser: torch and onnx are imported in `run` only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ...training.cli import add_export_arguments, run_export
from ...training.report import card_metrics

HELP = "export a trained composite network to ONNX with its model card"
DEFAULT_NAME = "sketchfill-composite"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_export_arguments(p, "train-composite", DEFAULT_NAME)


def run(args: argparse.Namespace) -> int:
    return run_export(export, args)


def export(args: argparse.Namespace) -> Path:
    import numpy as np

    from ...pipeline.modelcard import (
        COMPOSITE_INPUTS,
        COMPOSITE_OUTPUTS,
        ONNX_FILE,
        ModelCard,
        sha256_file,
    )
    from ...training.exporting import export_checked, read_checkpoint, staged_model
    from .data import CompositeData
    from .model import CompositeNet
    from .trainer import load_checkpoint

    ckpt = read_checkpoint(Path(args.checkpoint), load_checkpoint)
    config, step = ckpt["config"], int(ckpt["step"])
    net = CompositeNet(config["width"])
    net.load_state_dict(ckpt["net"])
    net.eval()
    res = config["res"]
    folders = [Path(f) for f in config["data"] if Path(f).is_dir()]
    if folders:
        batch = CompositeData(folders, res).batch(4, seed=1234, step=0)
    else:  # the training photos are not on this machine: random inputs still check
        rng = np.random.default_rng(0)
        batch = {
            k: rng.random((4, c, res, res), dtype=np.float32)
            for k, c in (("target", 3), ("source", 3), ("mask", 1))
        }
    samples = [{k: batch[k][i : i + 1] for k in COMPOSITE_INPUTS} for i in range(4)]

    with staged_model(Path(args.out), args.name) as staging:
        onnx_path = staging / ONNX_FILE
        outputs = list(COMPOSITE_OUTPUTS)
        diff, ms = export_checked(net, samples, outputs, onnx_path, args.opset, args.tolerance)
        print(f"latency: {ms} ms per {res}-px region")
        metrics = card_metrics(args.metrics) if args.metrics else {}
        card = ModelCard.for_composite(
            args.name,
            args.version or f"0.1.0+step{step}",
            res,
            sha256_file(onnx_path),
            description="Harmonised face compositing: a soft composite mask and a per-pixel "
            "affine colour transform of the pasted face, predicted at the network's resolution "
            "from the photo, the face layer and the region; applied at full size by the engine.",
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
                "losses": [
                    "L1 to the untouched photo, weighted up inside the face region",
                    "L1 of horizontal and vertical image differences (seams), weighted up "
                    "along the mask's edge",
                ],
                "loss_weights": config["weights"],
                "inputs": "self-supervised scenes: a photo's face relit (exposure, tone curve, "
                "cast, saturation, hue, directional light) pasted through a rough, wobbly, "
                "hard or feathered mask over the same photo holding another person's face "
                "recoloured to it; the answer is the untouched photo",
                **({"schedule": args.schedule} if args.schedule else {}),
            },
            metrics=metrics,
            extra={
                "architecture": f"two encoders (photo, face; 3 stride-2 stages, width "
                f"{config['width']}) with a face-mask head each; softmax composite mask limited "
                "to the region and min-max normalised; mask-based AdaIN of the face features "
                "to the photo's at 1/8 and 1/4; decoder to 3x4 colour coefficients on a 1/4 "
                "grid, added to masked statistics matching of the colours",
                "parameters": sum(p.numel() for p in net.parameters()),
                "opset": args.opset,
                "parity_max_abs_diff": diff,
                "latency_ms": ms,
            },
        )
        card.save(staging)
    return Path(args.out) / args.name
