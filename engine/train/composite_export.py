"""`sketchfill export-composite`: RUN/composite.pt -> models/<name>/model.onnx + model.json.

Checked against torch on training scenes (fails above --tolerance), timed with ONNX Runtime
as the engine runs it, and described by a model card (task "composite").

The CLI imports this module to build its parser: torch and onnx are imported in `run` only.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

HELP = "export a trained composite network to ONNX with its model card"
DEFAULT_NAME = "sketchfill-composite"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", type=Path, help="composite.pt from `sketchfill train-composite`")
    p.add_argument("-o", "--out", type=Path, default=Path("models"), help="models folder")
    p.add_argument("--name", default=DEFAULT_NAME)
    p.add_argument("--version", default=None, help="model version (default: from the step)")
    p.add_argument(
        "--metrics", type=Path, default=None, help="JSON from `sketchfill eval-composite`"
    )
    p.add_argument("--schedule", default="", help="how the run was trained, in words, for the card")
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--opset", type=int, default=17)


def run(args: argparse.Namespace) -> int:
    from .exporting import ExportError

    try:
        folder = export(args)
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    card = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    print(f"wrote {folder}: {card['name']} {card['version']} (sha256 {card['sha256'][:12]}...)")
    return 0


def export(args: argparse.Namespace) -> Path:
    import shutil
    import warnings

    import numpy as np
    import onnx
    import torch

    from ..modelcard import COMPOSITE_INPUTS, COMPOSITE_OUTPUTS, ONNX_FILE, ModelCard, sha256_file
    from .composite_data import CompositeData
    from .composite_model import CompositeNet
    from .composite_trainer import load_checkpoint
    from .exporting import ExportError, _publish, latency_ms, ort_session

    path = Path(args.checkpoint)
    if not path.is_file():
        raise ExportError(f"no checkpoint at {path}")
    try:
        ckpt = load_checkpoint(path)
    except ValueError as exc:
        raise ExportError(str(exc)) from None
    config, step = ckpt["config"], int(ckpt["step"])
    weights = config.get("weights") or {  # runs from before the seam weight existed
        "face": config["face_weight"],
        "gradient": config["gradient_weight"],
        "seam": 0.0,
    }
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

    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{args.name}.", dir=out_root))
    try:
        onnx_path = staging / ONNX_FILE
        zeros = (
            torch.zeros(1, 3, res, res),
            torch.zeros(1, 3, res, res),
            torch.zeros(1, 1, res, res),
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                net,
                zeros,
                str(onnx_path),
                input_names=list(COMPOSITE_INPUTS),
                output_names=list(COMPOSITE_OUTPUTS),
                opset_version=args.opset,
                dynamo=False,
            )
        onnx.checker.check_model(onnx.load(str(onnx_path)))
        session = ort_session(onnx_path)
        diff = 0.0
        with torch.no_grad():
            for feed in samples:
                ref = [
                    t.numpy() for t in net(*(torch.from_numpy(feed[k]) for k in COMPOSITE_INPUTS))
                ]
                got = session.run(None, feed)
                diff = max(diff, *(float(np.abs(r - g).max()) for r, g in zip(ref, got)))
        print(f"parity: max |torch - onnxruntime| = {diff:.2e} (tolerance {args.tolerance:g})")
        if not diff <= args.tolerance:
            raise ExportError(f"ONNX output differs from torch by {diff:.2e}")
        ms = latency_ms(session, samples[0])
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
                "loss_weights": weights,
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
        target = out_root / args.name
        _publish(staging, target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def card_metrics(path: Path) -> dict:
    """The summary of an `eval-composite` JSON for the card (the per-image rows stay out)."""
    found = json.loads(path.read_text(encoding="utf-8"))
    return {
        "methods": found["methods"],
        "images": found["images"],
        "size": found["size"],
        "data": Path(found["data"]).name,
        "protocol": found["protocol"],
    }
