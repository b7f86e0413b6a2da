"""`sketchfill eval-composite`: the composite network against the three steps it replaces.

Every held-out photo gets --scenes synthetic composites (composite_data.make_scene: its own
face relit and pasted through a rough mask over the photo holding the next held-out photo's
face, recoloured to it), seeded by the file name so every run and every method sees the
same inputs. Methods: alpha paste (the face as pasted), Poisson blending (OpenCV
seamlessClone), Reinhard colour transfer to the photo's face under the mask, and the
network. Each result is compared with the untouched photo:
- psnr and st_lpips (shift-tolerant LPIPS, lower is better) inside the face region;
- seam: mean |gradient error| (0-255 levels per pixel step) in a band along the region's
  edge, where a visible seam is a gradient that the photo does not have.

The CLI imports this module to build its parser: heavy imports happen in `run` only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "evaluate the composite network (and its baselines) on held-out face photos"
METRICS = ("psnr", "st_lpips", "seam")
SEAM_BAND = 1 / 128  # half-width of the seam band, as a fraction of the photo's side
PROTOCOL = (
    "sketchfill eval-composite: seeded synthetic composites per held-out photo (face relit "
    "and pasted through a rough mask over the photo holding another held-out face "
    "recoloured to it); psnr and st_lpips inside the region, seam = mean absolute gradient "
    "error (levels per pixel) in a band along the region's edge; all against the untouched photo"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="folder of held-out face photos")
    p.add_argument("--model", default="sketchfill-composite", help="model folder or name")
    p.add_argument("--json", required=True, type=Path, help="where to write the results")
    p.add_argument("--scenes", type=int, default=2, help="composites per photo")
    p.add_argument("--limit", type=int, default=None, help="the first N photos only")
    p.add_argument("--size", type=int, default=512, help="photos are cut square at this side")
    p.add_argument(
        "--grid",
        type=Path,
        help="also write a PNG sheet: pasted, Poisson, Reinhard, network, untouched",
    )
    p.add_argument("--grid-rows", type=int, default=6)


def seam_band(mask, half_width: int):
    """Pixels within `half_width` of the region's edge (the mask at 50 %)."""
    import cv2
    import numpy as np

    hard = (mask >= 128).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * half_width + 1,) * 2)
    return (cv2.dilate(hard, kernel) - cv2.erode(hard, kernel)).astype(bool)


def gradient_error(out, truth, where) -> float:
    import numpy as np

    a, b = out.astype(np.float32), truth.astype(np.float32)
    errors = []
    for axis in (0, 1):
        d = np.abs(np.diff(a, axis=axis) - np.diff(b, axis=axis)).mean(axis=2)
        inside = where[:-1] if axis == 0 else where[:, :-1]
        errors.append(d[inside])
    return float(np.concatenate(errors).mean())


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ...pipeline.runtime import ModelError, load_model
    from ...training.images import list_photos, load_square
    from ...training.metrics import STLPIPS, masked_psnr
    from ...training.report import image_seed, mean_finite, print_table, save_report, write_sheet
    from .data import make_scene
    from .infer import run_composite

    try:
        paths = list_photos([args.data])[: args.limit]
        model = load_model(args.model, task="composite")
    except (ValueError, ModelError) as exc:
        print(f"sketchfill eval-composite: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    if len(paths) < 2:
        print("sketchfill eval-composite: needs at least two photos", file=sys.stderr)
        return 2
    lpips = STLPIPS.pretrained()
    band_px = max(2, round(args.size * SEAM_BAND))
    photos = [load_square(p, args.size) for p in paths]
    print(f"{len(paths)} photos x {args.scenes} scenes at {args.size} px")

    methods = ("alpha paste", "poisson", "reinhard", "sketchfill")
    rows, per_method = [], {m: {k: [] for k in METRICS} for m in methods}
    sheet = []
    for i, path in enumerate(paths):
        other = photos[(i + 1) % len(photos)]
        for k in range(args.scenes):
            rng = np.random.default_rng([image_seed(path.name), k])
            scene = make_scene(photos[i], other, rng)
            opaque = np.full(scene.mask.shape, 255, np.uint8)
            target, face = np.dstack([scene.target, opaque]), np.dstack([scene.source, opaque])
            region, band = scene.mask >= 128, seam_band(scene.mask, band_px)
            row = {"image": path.name, "scene": k}
            outputs = {}
            for name in methods:
                net = model if name == "sketchfill" else None
                result = run_composite(net, target, face, scene.mask, method=name)
                out = scene.target.copy()
                b = result.box
                out[b.y : b.y1, b.x : b.x1] = result.patch[..., :3]
                outputs[name] = out
                values = {
                    "psnr": masked_psnr(out, scene.truth, region),
                    "st_lpips": lpips.masked(out, scene.truth, region),
                    "seam": gradient_error(out, scene.truth, band),
                }
                row[name] = {m: round(v, 4) for m, v in values.items()}
                for m, v in values.items():
                    per_method[name][m].append(v)
            rows.append(row)
            if args.grid and len(sheet) < args.grid_rows:
                sheet.append([outputs[m] for m in methods] + [scene.truth])
    summary = {
        name: {m: mean_finite(v) for m, v in vals.items()} for name, vals in per_method.items()
    }
    result = {
        "data": str(args.data),
        "images": len(paths),
        "scenes": args.scenes,
        "size": args.size,
        "protocol": PROTOCOL,
        "model": model.describe(),
        "methods": summary,
        "per_image": rows,
    }
    save_report(args.json, result)
    if args.grid:
        write_sheet(args.grid, sheet)
    print_table(summary, METRICS, digits=3)
    return 0
