"""`sketchfill eval`: the generator against OpenCV's Telea and Navier-Stokes inpainting.

Two protocols. `guided` (the default): each image gets one mask, sketch and colour hint,
drawn with the training pipeline from a generator seeded by the file name, so they are
identical across runs and methods. `centre`: the mask-only benchmark of the inpainting
literature (DeepFill v2 and others on CelebA-HQ): the face at 256 px, a centred 128-px
square hole, no sketch, no colour. `--upscale K` scales photo and guides by K before the
edit (a retoucher's large file) and the result back down for the metrics, so the figures
compare with the run at the plain size. The model
runs through the engine's own edit pipeline (infer.run_edit: crop, resize, ONNX Runtime,
paste back) so it is measured exactly as users get it. Metrics are computed inside the
mask (see training/metrics.py). This is the only code that may read the held-out faces
(../shared/data/faces_eval/).

The CLI imports this module to build its parser: heavy imports happen in `run` only.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from ...training.report import image_seed, mean_finite, print_table, save_report

HELP = "evaluate a generator (and OpenCV inpainting baselines) on held-out images"
METRICS = ("l1", "psnr", "ssim", "perceptual", "sketch_f1", "color_de", "sharpness")
PROTOCOLS = ("guided", "centre")
CENTRE_SIZE = 256
BASELINES = ("telea", "ns")
INPAINT_RADIUS = 5


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="folder of held-out images")
    p.add_argument(
        "--model",
        default=None,
        help="model folder or installed name (without it only the baselines run)",
    )
    p.add_argument("--json", required=True, type=Path, help="where to write the results")
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N images only")
    p.add_argument(
        "--grid",
        type=Path,
        help="also write a PNG sheet of the first --grid-rows images: erased input, sketch, "
        "colour, each method's output, truth (keep it out of the repository when the "
        "photos' licences say so)",
    )
    p.add_argument("--grid-rows", type=int, default=8, help="rows of the --grid sheet")
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="images are square-cropped to this (default 512; 256 for --protocol centre)",
    )
    p.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="guided",
        help="guided: seeded mask, sketch and colour per image; centre: centred square hole "
        "of half the side, no guides",
    )
    p.add_argument(
        "--upscale",
        type=int,
        default=1,
        metavar="K",
        help="scale photo and guides by K before the edit and the result back for the "
        "metrics (large-file behaviour)",
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="guide cache for the test images' HED ridges and regions",
    )


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np
    import torch

    from ...pipeline.images import save_image
    from ...pipeline.preprocess import EditInputs
    from ...pipeline.runtime import load_generator
    from ...training.guides import default_cache, load_guides, prepare
    from ...training.hed import edge_map, load_hed
    from ...training.images import list_images, load_square
    from ...training.metrics import (
        STLPIPS,
        color_de,
        masked_l1,
        masked_psnr,
        masked_ssim,
        sharpness,
        sketch_f1,
    )
    from ...training.sketches import widen
    from .data import make_sample

    images = list_images(args.data)[: args.limit]
    if not images:
        print(f"no images in {args.data}", file=sys.stderr)
        return 2
    if args.upscale < 1:
        print("--upscale must be at least 1", file=sys.stderr)
        return 2
    centre = args.protocol == "centre"
    if args.size is None:
        args.size = CENTRE_SIZE if centre else 512
    guides = prepare(images, args.cache or default_cache(), args.size)
    model = load_generator(args.model) if args.model else None
    methods = (("sketchfill",) if model else ()) + BASELINES
    hed, lpips = load_hed(), STLPIPS.pretrained()
    tol = max(2.0, args.size / 128)

    rows, sheet = [], []
    for i, (path, gfile) in enumerate(zip(images, guides, strict=True), 1):
        truth = load_square(path, args.size)
        g = load_guides(gfile)
        seed = image_seed(path.name)
        s = make_sample(
            truth,
            widen(g.ridges),
            g.coarse,
            g.fine,
            np.random.default_rng(seed),
            allow_empty=False,
            mask=centre_mask(args.size) if centre else None,
        )
        if centre:
            s = unguided(s)
        mask = s.mask > 0
        painted = s.painted > 0
        outputs = {}
        if model:
            rgba = np.dstack([truth, np.full(mask.shape, 255, np.uint8)])
            color = np.dstack(
                [np.clip(s.color, 0, 255).astype(np.uint8), (painted * 255).astype(np.uint8)]
            )
            sketch = (s.sketch * 255).astype(np.uint8) if s.sketch.any() else None
            inputs = EditInputs(rgba, s.mask * 255, sketch, color if painted.any() else None)
            outputs["sketchfill"] = edit_at_scale(model, inputs, seed, args.upscale)
        bgr = np.ascontiguousarray(truth[..., ::-1])
        m8 = s.mask * 255
        outputs["telea"] = cv2.inpaint(bgr, m8, INPAINT_RADIUS, cv2.INPAINT_TELEA)[..., ::-1]
        outputs["ns"] = cv2.inpaint(bgr, m8, INPAINT_RADIUS, cv2.INPAINT_NS)[..., ::-1]
        row = {"file": path.name, "mask_area": round(float(mask.mean()), 4)}
        for name in methods:
            out = np.ascontiguousarray(outputs[name])
            with torch.inference_mode():
                edges = edge_map(hed, out)
            row[name] = {
                "l1": masked_l1(out, truth, mask),
                "psnr": masked_psnr(out, truth, mask),
                "ssim": masked_ssim(out, truth, mask),
                "perceptual": lpips.masked(out, truth, mask),
                "sketch_f1": sketch_f1(edges, s.sketch, mask, tol),
                "color_de": color_de(out, s.color, painted),
                "sharpness": sharpness(out, truth, mask),
            }
        rows.append(row)
        if args.grid and len(sheet) < args.grid_rows:
            sheet.append(sheet_row(truth, s, [outputs[m] for m in methods]))
        if sys.stderr.isatty():
            print(f"\reval {i}/{len(images)}", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)

    summary = {m: {k: mean_finite([r[m][k] for r in rows]) for k in METRICS} for m in methods}
    result = {
        "methods": summary,
        "images": len(rows),
        "data": str(Path(args.data).resolve()),
        "size": args.size,
        "protocol": args.protocol,
        "upscale": args.upscale,
        "model": model.describe() if model else None,
        "per_image": [_clean(r) for r in rows],
    }
    save_report(args.json, result)
    if sheet:
        save_image(args.grid, np.concatenate(sheet, 0))
        names = " | ".join(["input", "sketch", "colour", *methods, "truth"])
        print(f"grid ({names}): {args.grid}")
    print_table(summary, METRICS)
    return 0


def centre_mask(size: int):
    """The mask-only benchmark's hole: a centred square of half the side."""
    import numpy as np

    mask = np.zeros((size, size), np.uint8)
    q = size // 4
    mask[q : size - q, q : size - q] = 1
    return mask


def unguided(sample):
    """The sample with its sketch and colour hint taken away."""
    import dataclasses

    import numpy as np

    return dataclasses.replace(
        sample,
        sketch=np.zeros_like(sample.sketch),
        painted=np.zeros_like(sample.painted),
    )


def edit_at_scale(model, inputs, seed: int, k: int, frame_faces: bool = True):
    """The engine's edit of `inputs` scaled by k (photo bicubic, mask, sketch and colour
    nearest: a pen stroke stays a stroke of k times the width), the result brought back to
    the original size (area average) for the metrics."""
    import numpy as np
    from PIL import Image

    from ...pipeline.preprocess import EditInputs
    from ...pipeline.result import apply_patch
    from .infer import run_edit

    if k == 1:
        return apply_patch(inputs.image, run_edit(model, inputs, seed, frame_faces=frame_faces))[
            ..., :3
        ]
    h, w = inputs.mask.shape
    size = (w * k, h * k)

    def up(a, resample):
        if a is None:
            return None
        return np.asarray(Image.fromarray(np.ascontiguousarray(a)).resize(size, resample))

    big = EditInputs(
        up(inputs.image, Image.Resampling.BICUBIC),
        up(inputs.mask, Image.Resampling.NEAREST),
        up(inputs.sketch, Image.Resampling.NEAREST),
        up(inputs.color, Image.Resampling.NEAREST),
    )
    out = apply_patch(big.image, run_edit(model, big, seed, frame_faces=frame_faces))[..., :3]
    return np.array(Image.fromarray(np.ascontiguousarray(out)).resize((w, h), Image.BOX))


def sheet_row(truth, sample, outputs, tile: int = 256):
    """One row of the --grid sheet, each picture `tile` px: the erased photo (grey where
    masked), the sketch over the mask, the colour hint, the outputs, the truth."""
    import cv2
    import numpy as np

    m = (sample.mask > 0)[..., None]
    painted = (sample.painted > 0)[..., None]
    erased = np.where(m, 128, truth)
    sketch = (255 - 55 * m - 200 * sample.sketch[..., None]).repeat(3, -1)
    color = np.where(painted, np.clip(sample.color, 0, 255), 128)
    pictures = [erased, sketch, color, *outputs, truth]
    small = [
        cv2.resize(np.asarray(p, np.float32), (tile, tile), interpolation=cv2.INTER_AREA)
        for p in pictures
    ]
    return np.concatenate(small, 1).round().clip(0, 255).astype(np.uint8)


def _clean(row: dict) -> dict:
    """Per-image row for JSON: rounded, NaN (no sketch / no paint) as null."""

    def fix(v):
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, float):
            return None if math.isnan(v) else round(v, 4)
        return v

    return fix(row)
