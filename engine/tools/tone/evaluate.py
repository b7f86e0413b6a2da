"""`sketchfill eval-tone`: the tone network against the fixed algorithm it learnt from.

Every held-out photo gets --faults tone faults (the training fault model, seeded by the
file name so every run and method sees the same inputs). Each method's result is judged
- without a reference, by its natural-tone distance (NTD): the Mahalanobis distance of
  its tone statistics (CIELAB lightness mean, spread and 5th/95th percentiles, mean a*,
  b*, chroma, clipped fraction) from a Gaussian fitted on --reference photos (untouched
  photos: the training set, never the evaluated one), in the spirit of NIQE;
- and, since the faults are synthetic, against the untouched photo: PSNR and CIEDE2000.
"input" is the faulty photo left alone. "original" gives the NTD of the untouched photos.

The CLI imports this module to build its parser: heavy imports happen in `run` only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "evaluate the tone network (and the fixed algorithm) on held-out photos"
METRICS = ("ntd", "psnr", "delta_e")
STATS_SIDE = 128  # tone statistics are measured on thumbnails of this size


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="folder of held-out photos")
    p.add_argument(
        "--reference",
        required=True,
        type=Path,
        nargs="+",
        help="folders of untouched photos that define natural tone (e.g. the training set)",
    )
    p.add_argument("--model", default="sketchfill-tone", help="tone model folder or name")
    p.add_argument("--json", required=True, type=Path, help="where to write the results")
    p.add_argument("--faults", type=int, default=2, help="tone faults per photo")
    p.add_argument("--limit", type=int, default=None, help="the first N photos only")
    p.add_argument("--size", type=int, default=512, help="photos are resized to this short side")
    p.add_argument(
        "--grid",
        type=Path,
        help="also write a PNG sheet: faulty input, fixed algorithm, network, untouched",
    )
    p.add_argument("--grid-rows", type=int, default=6)


def tone_stats(rgb) -> list[float]:
    import numpy as np
    from PIL import Image
    from skimage.color import rgb2lab

    thumb = np.asarray(Image.fromarray(rgb).resize((STATS_SIDE, STATS_SIDE), Image.BOX))
    lab = rgb2lab(thumb.astype(np.float32) / 255.0).reshape(-1, 3)
    lightness, a, b = lab.T
    clipped = float(((thumb >= 250) | (thumb <= 5)).any(axis=2).mean())
    p5, p95 = np.percentile(lightness, [5, 95])
    chroma = float(np.hypot(a, b).mean())
    return [lightness.mean(), lightness.std(), p5, p95, a.mean(), b.mean(), chroma, clipped]


class NaturalTone:
    """A Gaussian of natural photos' tone statistics; distance() is the NTD."""

    def __init__(self, photos: list) -> None:
        import numpy as np

        feats = np.array([tone_stats(p) for p in photos], np.float64)
        self.mean = feats.mean(axis=0)
        cov = np.cov(feats, rowvar=False)
        cov += np.diag(np.diag(cov) * 1e-3 + 1e-6)  # a few dozen photos: keep it invertible
        self.precision = np.linalg.inv(cov)

    def distance(self, rgb) -> float:
        import numpy as np

        d = np.asarray(tone_stats(rgb)) - self.mean
        return float(np.sqrt(d @ self.precision @ d))


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from skimage.color import deltaE_ciede2000, rgb2lab

    from ...pipeline.runtime import ModelError, load_model
    from ...training.images import list_photos
    from ...training.report import (
        image_seed,
        mean_finite,
        print_table,
        save_report,
        small,
        write_sheet,
    )
    from .data import degrade, load_photo
    from .infer import run_tone

    try:
        paths = list_photos([args.data])[: args.limit]
        references = list_photos(list(args.reference))
        model = load_model(args.model, task="tone")
    except (ValueError, ModelError) as exc:
        print(f"sketchfill eval-tone: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    if set(references) & set(paths):
        print(
            "sketchfill eval-tone: --reference must not hold the evaluated photos", file=sys.stderr
        )
        return 2
    natural = NaturalTone([load_photo(p, STATS_SIDE) for p in references])
    print(f"{len(paths)} photos x {args.faults} faults; NTD fitted on {len(references)} photos")

    def toned(rgb, net):
        rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
        return run_tone(net, rgba).patch[..., :3]

    def small_lab(rgb):
        return rgb2lab(small(rgb).astype(np.float32) / 255.0)

    methods = ("input", "fixed", "sketchfill")
    rows, per_method = [], {m: {k: [] for k in METRICS} for m in methods}
    original_ntd, sheet = [], []
    for path in paths:
        photo = load_photo(path, args.size)
        original_ntd.append(natural.distance(photo))
        truth_lab = small_lab(photo)
        for k in range(args.faults):
            faulty = degrade(photo, np.random.default_rng([image_seed(path.name), k]), keep=0.0)
            outputs = {
                "input": faulty,
                "fixed": toned(faulty, None),
                "sketchfill": toned(faulty, model),
            }
            row = {"image": path.name, "fault": k}
            for name, out in outputs.items():
                mse = float(((out.astype(np.float32) - photo) / 255.0).__pow__(2).mean())
                values = {
                    "ntd": natural.distance(out),
                    "psnr": 10 * np.log10(1 / max(mse, 1e-10)),
                    "delta_e": float(deltaE_ciede2000(truth_lab, small_lab(out)).mean()),
                }
                row[name] = {m: round(v, 4) for m, v in values.items()}
                for m, v in values.items():
                    per_method[name][m].append(v)
            rows.append(row)
            if args.grid and len(sheet) < args.grid_rows:
                sheet.append([faulty, outputs["fixed"], outputs["sketchfill"], photo])
    summary = {
        name: {m: mean_finite(v) for m, v in vals.items()} for name, vals in per_method.items()
    }
    summary["original"] = {"ntd": mean_finite(original_ntd), "psnr": None, "delta_e": None}
    result = {
        "data": str(args.data),
        "reference": [str(r) for r in args.reference],
        "images": len(paths),
        "faults": args.faults,
        "size": args.size,
        "model": model.describe(),
        "methods": summary,
        "per_image": rows,
    }
    save_report(args.json, result)
    if args.grid:
        write_sheet(args.grid, sheet)
    print_table(summary, METRICS, digits=3)
    return 0
