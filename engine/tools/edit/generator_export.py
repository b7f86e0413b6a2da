"""The edit generator's export (`sketchfill export`, see export.py): a training checkpoint
to ONNX, checked against torch on training-style inputs, timed as the engine runs it,
optionally quantised to int8, each with its model card."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ...pipeline.modelcard import INPUT_NAME, ONNX_FILE, ModelCard, sha256_file
from ...pipeline.runtime import DEFAULT_MODEL
from ...training.exporting import (
    ORT_THREADS,
    ExportError,
    export_onnx,
    latency_ms,
    ort_run,
    ort_session,
    publish,
)
from ...training.guides import default_cache
from ...training.notice import NOTICE_FILE, card_licence, write_notice
from .card import GENERATOR, GENERATOR_FORMAT, LAST, training_summary
from .model import Generator


def load_checkpoint(path: Path) -> tuple[dict, int, float, dict[str, torch.Tensor]]:
    """(config, step, trained seconds, float32 EMA generator state) from generator.pt or
    last.pt (or a run folder holding either)."""
    if path.is_dir():
        path = path / GENERATOR if (path / GENERATOR).is_file() else path / LAST
    if not path.is_file():
        raise ExportError(f"no checkpoint at {path}")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("format") == GENERATOR_FORMAT:
        state = ckpt["state_dict"]
    elif "ema" in ckpt:
        state = ckpt["ema"]
    else:
        raise ExportError(f"{path} is not a sketchfill training checkpoint")
    state = {k: v.float() for k, v in state.items()}
    return ckpt["config"], int(ckpt["step"]), float(ckpt.get("trained_seconds", 0.0)), state


def synthetic_inputs(res: int, n: int, seed: int) -> np.ndarray:
    """Inputs with the contract's statistics when no images are at hand: smooth random
    images, real training masks, stroke sketches, noise."""
    import cv2

    from ...training.masks import random_mask, stroke_mask
    from .data import EditSample, encode

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        image = cv2.resize(
            rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
            (res, res),
            interpolation=cv2.INTER_CUBIC,
        )
        mask = random_mask(rng, res)
        sketch = (stroke_mask(rng, res) & mask).astype(np.float32)
        painted = mask.astype(np.float32) * (rng.random() < 0.5)
        color = np.full((res, res, 3), rng.uniform(0, 255, 3), np.float32)
        noise = rng.standard_normal((res, res)).astype(np.float32) * mask
        out.append(encode(EditSample(image, mask, sketch, color, painted, noise)))
    return np.stack(out)


def data_inputs(folder: Path, cache: Path, config: dict, res: int, n: int, seed: int) -> np.ndarray:
    """Training-style inputs (real faces, HED sketches, region colours), no augmentation."""
    from ...training.guides import prepare
    from ...training.images import list_images
    from .data import EditDataset, encode

    images = list_images(folder)
    if not images:
        raise ExportError(f"no images in {folder}")
    picked = [images[i] for i in np.random.default_rng(seed).permutation(len(images))[:n]]
    guides = prepare(picked, cache, config["guide_size"], quiet=True)
    ds = EditDataset(picked, guides, res, config["guide_size"], seed, augment=False)
    return np.stack([encode(ds.sample(i)) for i in range(n)])


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB over masked pixels of images in [-1, 1] (peak 1 after mapping to [0, 1])."""
    mse = float((((a - b) / 2) ** 2 * mask).sum() / max(mask.sum() * a.shape[1], 1))
    return round(10 * np.log10(1.0 / max(mse, 1e-12)), 2)


def quantize_int8(fp32: Path, out: Path, calib: np.ndarray) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter(calib)

        def get_next(self):
            x = next(self.items, None)
            return None if x is None else {INPUT_NAME: x[None]}

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(
            str(pre),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )


def export(args: argparse.Namespace) -> list[Path]:
    config, step, seconds, state = load_checkpoint(Path(args.checkpoint))
    # The generator is fully convolutional: it may serve at another size than it trained.
    res = args.res or config["res"]
    name = args.name or DEFAULT_MODEL
    version = args.version or f"0.1.0+step{step}"
    gen = Generator(config["width"])
    gen.load_state_dict(state)
    gen.eval()

    folder = args.calib_data or Path(config["data"]["path"])
    cache = Path(args.cache) if args.cache else default_cache()
    real = folder.is_dir()
    n = max(args.calib_count, 4) if args.int8 else 2
    if real:
        inputs = data_inputs(folder, cache, config, res, n + 4, seed=1234)
    elif args.int8:
        raise ExportError(
            f"--int8 needs calibration images: {folder} is not a folder (pass --calib-data)"
        )
    else:
        inputs = synthetic_inputs(res, n + 4, seed=1234)
    held_out, calib = inputs[:4], inputs[4:]

    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_root))
    int8_staging = out_root / f".{name}-int8.staging-{os.getpid()}"
    try:
        onnx_path = staging / ONNX_FILE
        export_onnx(gen, res, onnx_path, args.opset)
        session = ort_session(onnx_path)
        with torch.no_grad():
            ref = gen(torch.from_numpy(held_out)).numpy()
        got = ort_run(session, held_out)
        diff = float(np.abs(ref - got).max())
        print(f"parity: max |torch - onnxruntime| = {diff:.2e} (tolerance {args.tolerance:g})")
        if not diff <= args.tolerance:
            raise ExportError(f"ONNX output differs from torch by {diff:.2e}")
        fp32_ms = latency_ms(session, held_out)
        print(f"latency: {fp32_ms} ms per {res}-px edit ({ORT_THREADS} threads, ORT_ENABLE_ALL)")
        metrics = {}
        if args.metrics:
            found = json.loads(Path(args.metrics).read_text(encoding="utf-8"))
            metrics = {
                "methods": found["methods"],
                "images": found.get("images"),
                "size": found.get("size"),
                "data": Path(found.get("data") or "").name,
                "protocol": "sketchfill eval: one seeded mask/sketch/colour per image, model "
                "through the engine's edit pipeline, metrics inside the mask",
            }
        extra = {
            "architecture": f"SC-FEGAN gated-convolution U-Net, width {config['width']}, "
            "dilations 2/4/8 at 1/16 resolution, no LRN",
            "parameters": sum(p.numel() for p in gen.parameters()),
            "opset": args.opset,
            "parity_max_abs_diff": diff,
            "parity_inputs": "training-style" if real else "synthetic",
            "latency_ms": fp32_ms,
            "latency_setup": f"onnxruntime CPU, {ORT_THREADS} intra-op threads, ORT_ENABLE_ALL, "
            f"measured on {os.cpu_count()} CPUs at export",
        }
        card = ModelCard.for_generator(
            name,
            version,
            res,
            sha256_file(onnx_path),
            description="Sketch- and colour-guided face inpainting (SC-FEGAN style), fills "
            "the masked region following the sketch and colour hints.",
            license=args.license or card_licence(config["data"]["note"]),
            training={
                **training_summary(config, step, seconds),
                **({"schedule": args.schedule} if args.schedule else {}),
            },
            metrics=metrics,
            extra=extra,
        )
        card.save(staging)
        if args.notice:
            data = args.notice_data or Path(config["data"]["path"])
            write_notice(staging, name, args.notice, data if data.is_dir() else None)
        folders = [(staging, out_root / name)]
        if args.int8:
            _int8(onnx_path, card, calib, held_out, got, fp32_ms, int8_staging)
            if (staging / NOTICE_FILE).is_file():
                shutil.copyfile(staging / NOTICE_FILE, int8_staging / NOTICE_FILE)
            folders.append((int8_staging, out_root / f"{name}-int8"))
        for src, dst in folders:
            publish(src, dst)
        return [dst for _, dst in folders]
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(int8_staging, ignore_errors=True)


def _int8(
    fp32: Path,
    card: ModelCard,
    calib: np.ndarray,
    held_out: np.ndarray,
    fp32_out: np.ndarray,
    fp32_ms: float,
    staging: Path,
) -> None:
    staging.mkdir()
    path = staging / ONNX_FILE
    quantize_int8(fp32, path, calib)
    session = ort_session(path)
    got = ort_run(session, held_out)
    mask = held_out[:, 3:4]
    ms = latency_ms(session, held_out)
    quality = {
        "psnr_vs_fp32_in_mask_db": masked_psnr(got, fp32_out, mask),
        "max_abs_diff_vs_fp32": round(float(np.abs(got - fp32_out).max()), 4),
        "latency_ms": ms,
        "speedup_vs_fp32": round(fp32_ms / ms, 2),
        "scheme": "static QDQ, U8 activations, S8 per-channel weights, MinMax calibration on "
        f"{len(calib)} training-style inputs",
    }
    print(
        f"int8: {quality['psnr_vs_fp32_in_mask_db']} dB vs fp32 inside the mask, "
        f"{ms} ms ({quality['speedup_vs_fp32']}x)"
    )
    int8 = ModelCard.for_generator(
        f"{card.name}-int8",
        card.version,
        card.resolution,
        sha256_file(path),
        description=card.description + " Int8-quantised.",
        license=card.license,
        training=card.training,
        metrics={},
        extra={**card.extra, "latency_ms": ms, "quantization": quality},
    )
    int8.save(staging)
