"""`sketchfill crop-stats`: is what the engine serves what the generator was trained on?

Two figures describe the square a generator sees: the face's scale (the FFHQ frame's side
over the square's side, faceframe.py) and the hole (the share of the square to fill). This
command draws them for training samples (the training sampler on a prepared folder) and
for served crops (the evaluation's seeded masks on a folder of photos, run through the
engine's crop planning at the photo's size times each --upscale), and prints their
quantiles side by side. The faces are found with the engine's detector in both cases.
With --model it also edits the bundled demo portrait scaled to 512, 1024, 2048 and 4096
px and prints the PSNR inside the mask between every two sizes (each result downscaled
to 512): a fill that does not depend on the photo's size scores high everywhere.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "compare face scale and hole size of training samples with the engine's served crops"
QUANTILES = (0.1, 0.5, 0.9)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, type=Path, help="training folder (prepared faces)")
    p.add_argument("--served", required=True, type=Path, help="folder of photos to serve")
    p.add_argument("--upscale", type=int, nargs="+", default=[1, 4], help="photo scales")
    p.add_argument("--samples", type=int, default=200, help="training samples to draw")
    p.add_argument("--res", type=int, default=512, help="the model's resolution")
    p.add_argument("--cache", type=Path, default=None, help="guide cache (see train --cache)")
    p.add_argument("--model", default=None, help="also compare the demo's fills across sizes")
    p.add_argument(
        "--old-rule",
        action="store_true",
        help="plan crops without face framing (the rule before it), for comparison",
    )


DEMO_SIDES = (512, 1024, 2048, 4096)


def demo_consistency(model, frame_faces: bool) -> dict[tuple[int, int], float]:
    """PSNR (dB) inside the mask between the demo's fills at every two DEMO_SIDES."""
    import itertools

    from ...pipeline.images import demo_inputs
    from ...training.metrics import masked_psnr
    from .evaluate import edit_at_scale

    base = demo_inputs()
    side = base.mask.shape[0]
    # The evaluation's large-file path: inputs scaled by k, the fill brought back to `side`.
    fills = {n: edit_at_scale(model, base, 1, n // side, frame_faces) for n in DEMO_SIDES}
    mask = base.mask >= 128
    return {
        (a, b): masked_psnr(fills[a], fills[b], mask)
        for a, b in itertools.combinations(DEMO_SIDES, 2)
    }


def face_scale(finder, rgb, side: int) -> float | None:
    from ...pipeline.faceframe import frames

    found = frames(finder, rgb)
    return max(f.side for f in found) / side if found else None


def quantiles(values: list[float]) -> str:
    import numpy as np

    if not values:
        return "-"
    q = np.quantile(np.asarray(values), QUANTILES)
    return " / ".join(f"{v:.2f}" for v in q)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from PIL import Image

    from ...pipeline import preprocess
    from ...pipeline.facemesh import face_finder
    from ...pipeline.runtime import load_generator
    from ...training.guides import default_cache, load_guides, prepare
    from ...training.images import list_images, load_square
    from ...training.report import image_seed
    from ...training.sketches import widen
    from .data import EditDataset, make_sample
    from .infer import plan_edit_crop

    finder = face_finder()
    cache = args.cache or default_cache()
    rows: list[tuple[str, list[float], list[float], int]] = []

    images = list_images(args.train)
    if not images:
        print(f"no images in {args.train}", file=sys.stderr)
        return 2
    dataset = EditDataset(images, prepare(images, cache, args.res), args.res, args.res, seed=0)
    scales, holes, missed = [], [], 0
    for i in range(args.samples):
        s = dataset.sample(i)
        holes.append(float(s.mask.mean()))
        scale = face_scale(finder, s.image, args.res)
        if scale is None:
            missed += 1
        else:
            scales.append(scale)
    rows.append(("training samples", scales, holes, missed))

    served = list_images(args.served)
    guides = prepare(served, cache, args.res)
    for k in args.upscale:
        scales, holes, missed = [], [], 0
        for path, gfile in zip(served, guides, strict=True):
            truth = load_square(path, args.res)
            g = load_guides(gfile)
            rng = np.random.default_rng(image_seed(path.name))
            mask = make_sample(truth, widen(g.ridges), g.coarse, g.fine, rng).mask
            big = args.res * k
            rgb = np.asarray(Image.fromarray(truth).resize((big, big), Image.Resampling.BICUBIC))
            m = np.asarray(Image.fromarray(mask * 255).resize((big, big), Image.Resampling.NEAREST))
            bbox = preprocess.mask_bbox(m >= 128)
            crop = plan_edit_crop(rgb, bbox, args.res, preprocess.DEFAULT_MARGIN, not args.old_rule)
            square = preprocess.square_crop(rgb, crop, "edge")
            small = np.asarray(Image.fromarray(square).resize((args.res, args.res)))
            hole = preprocess.resize_mask(preprocess.square_crop(m >= 128, crop), args.res)
            holes.append(float(hole.mean()))
            scale = face_scale(finder, small, args.res)
            if scale is None:
                missed += 1
            else:
                scales.append(scale)
        rows.append((f"served crops, photo x{k} ({args.res * k} px)", scales, holes, missed))

    q = "/".join(f"p{round(v * 100)}" for v in QUANTILES)
    print(f"{'inputs':<34}{'face frame / square (' + q + ')':>34}{'hole share (' + q + ')':>30}")
    for name, scales, holes, missed in rows:
        note = f" ({missed} without a face)" if missed else ""
        print(f"{name:<34}{quantiles(scales):>34}{quantiles(holes):>30}{note}")
    if args.model:
        pairs = demo_consistency(load_generator(args.model), not args.old_rule)
        print("\ndemo fill, PSNR inside the mask between sizes (downscaled to the demo's 512 px)")
        for (a, b), db in pairs.items():
            print(f"  {a:>4} vs {b:>4} px: {db:6.2f} dB")
        print(f"  lowest: {min(pairs.values()):.2f} dB")
    return 0
