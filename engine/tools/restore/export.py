"""`sketchfill export-restore`: RUN/restore.pt -> models/<name>/model.onnx + model.json.

The restore generator is exported at --res, the size the engine runs it at (default 128, the
size it trained at: the engine brings the square around face and mask to it, framed as in
training; exported at 256 and 512 it scored lower on the validation faces, the face then
being larger than any it trained on). Checked against torch (fails above --tolerance),
timed with ONNX Runtime and described by a model card (task "restore",
modelcard.RESTORE_CHANNELS).

The CLI imports this module to build its parser: torch and onnx are imported in `run` only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ...training.cli import add_export_arguments, run_export
from .card import restore_metrics

HELP = "export a trained restore generator to ONNX with its model card"
DEFAULT_NAME = "sketchfill-restore"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_export_arguments(p, "train-restore", DEFAULT_NAME)
    p.add_argument("--res", type=int, default=128, help="resolution the engine runs it at")


def run(args: argparse.Namespace) -> int:
    return run_export(export, args)


def export(args: argparse.Namespace) -> Path:
    import numpy as np
    import torch

    from ...pipeline.modelcard import ONNX_FILE, ModelCard, sha256_file
    from ...training.exporting import (
        ExportError,
        export_onnx,
        latency_ms,
        ort_run,
        ort_session,
        read_checkpoint,
        staged_model,
    )
    from .model import Generator
    from .trainer import load_checkpoint

    ckpt = read_checkpoint(Path(args.checkpoint), load_checkpoint)
    config, step = ckpt["config"], int(ckpt["step"])
    gen = Generator(config["width"])
    gen.load_state_dict(ckpt["net"])
    gen.eval()
    res = args.res
    if res % 16:
        raise ExportError("--res must be a multiple of 16")
    rng = np.random.default_rng(0)
    samples = rng.uniform(-1, 1, (2, 9, res, res)).astype(np.float32)
    samples[:, 3:5] = (samples[:, 3:5] > 0).astype(np.float32)

    with staged_model(Path(args.out), args.name) as staging:
        onnx_path = staging / ONNX_FILE
        export_onnx(gen, res, onnx_path, args.opset)
        session = ort_session(onnx_path)
        with torch.no_grad():
            ref = gen(torch.from_numpy(samples)).numpy()
        diff = float(np.abs(ref - ort_run(session, samples)).max())
        print(f"parity: max |torch - onnxruntime| = {diff:.2e} (tolerance {args.tolerance:g})")
        if not diff <= args.tolerance:
            raise ExportError(f"ONNX output differs from torch by {diff:.2e}")
        ms = latency_ms(session, samples[:1])
        print(f"latency: {ms} ms per {res}-px restore")
        prior = not config["no_prior"]
        card = ModelCard.for_generator(
            args.name,
            args.version or f"0.1.0+step{step}",
            res,
            sha256_file(onnx_path),
            task="restore",
            description="Occluded-face restoration from a mask alone: a gated-convolution "
            "U-Net fills the mask guided by a face-structure prior (the visible face texture "
            "in MediaPipe's canonical UV layout, hidden texels taken from the mirrored side, "
            "rendered back into the picture)."
            + ("" if prior else " Ablation: trained with the prior's channels empty."),
            license="Non-commercial research use only: trained on non-commercial research "
            "data (see training.licence).",
            training={
                "photos": config["photos"],
                "faces": config["faces"],
                "licence": config["data_note"],
                "steps": step,
                "resolution": config["res"],
                "batch": config["batch"],
                "lr": config["lr"],
                "device": "cpu",
                "hours": round(float(ckpt["seconds"]) / 3600, 3),
                "init": config["init"],
                "prior": prior,
                "losses": "L1 (hole-weighted), VGG16 perceptual and style, total variation",
                "loss_weights": config["weights"],
                "masks": "occluders placed by the face mesh: one-side blobs 40 %, hands 20 %, "
                "glasses 15 %, hair strands 12 %, text 13 %",
                **({"schedule": args.schedule} if args.schedule else {}),
            },
            metrics=restore_metrics(args.metrics) if args.metrics else {},
            extra={
                "architecture": f"SC-FEGAN gated-convolution U-Net, width {config['width']}, "
                "the edit generator's network with the prior in the guides' channels",
                "prior": prior,
                "parameters": sum(p.numel() for p in gen.parameters()),
                "opset": args.opset,
                "parity_max_abs_diff": diff,
                "latency_ms": ms,
                "face_mesh": "MediaPipe face detector (short range) and 468-point face mesh, "
                "converted to ONNX (engine/assets/facemesh, Apache-2.0)",
            },
        )
        card.save(staging)
    return Path(args.out) / args.name
