"""`sketchfill eval-restore`: the restore generator against its baselines on held-out faces.

Every held-out photo gets --masks occluder masks (occluders.py), seeded by the file
name so every run and every method sees the same inputs: the first half over one side of
the face ("side": where the mirrored prior has most to give), the rest hands, glasses, hair
strands and text. The hole is painted with an opaque occluder and the face mesh is found on
that picture, as the engine finds it on the user's. Methods, all on the same pictures:
OpenCV Telea and Navier-Stokes inpainting, the plain edit generator with no guides
(`--plain`, the generator this one starts from), the same network trained without the prior
(`--ablation`, optional) and the restore generator. Metrics inside the mask, against the
untouched photo: psnr, st_lpips (shift-tolerant LPIPS, lower is better) and l1 (0-1),
overall and per mask group.

The CLI imports this module to build its parser: heavy imports happen in `run` only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "evaluate the restore generator (and its baselines) on held-out face photos"
METRICS = ("psnr", "st_lpips", "l1")
GROUPS = ("side", "other")
OTHER_KINDS = ("hand", "glasses", "strand", "text")
PROTOCOL = (
    "sketchfill eval-restore: seeded occluder masks per held-out photo placed by its face "
    "mesh (half over one side of the face, the rest hands, glasses, hair strands, text), the "
    "hole painted with an opaque occluder before the mesh is found; metrics inside the mask "
    "against the untouched photo"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, type=Path, help="folder of held-out face photos")
    p.add_argument("--model", default="sketchfill-restore", help="model folder or name")
    p.add_argument(
        "--plain", default="sketchfill-face", help="the edit generator run without guides"
    )
    p.add_argument("--ablation", help="a restore model trained without the prior (--no-prior)")
    p.add_argument("--json", required=True, type=Path, help="where to write the results")
    p.add_argument("--masks", type=int, default=4, help="masks per photo (half of them 'side')")
    p.add_argument("--limit", type=int, default=None, help="the first N photos only")
    p.add_argument("--size", type=int, default=512, help="photos are cut square at this side")
    p.add_argument(
        "--grid", type=Path, help="also write a PNG sheet: occluded, each method, untouched"
    )
    p.add_argument("--grid-rows", type=int, default=6)


def kinds_for(count: int) -> list[str]:
    """Mask kinds for one photo: the first half one-side masks, then the others in turn."""
    half = (count + 1) // 2
    return ["side"] * half + [OTHER_KINDS[i % len(OTHER_KINDS)] for i in range(count - half)]


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ...pipeline.facemesh import FaceNotFound
    from ...pipeline.preprocess import EditInputs
    from ...pipeline.result import apply_patch
    from ...pipeline.runtime import ModelError, load_generator, load_model
    from ...training.images import list_photos, load_square
    from ...training.metrics import STLPIPS, masked_l1, masked_psnr
    from ...training.report import image_seed, mean_finite, print_table, save_report, write_sheet
    from ..edit.infer import run_edit
    from .infer import face_finder, run_restore
    from .occluders import fill_occluder, occluder_mask

    try:
        paths = list_photos([args.data])[: args.limit]
        nets = {"sketchfill restore": load_model(args.model, task="restore")}
        plain = load_generator(args.plain)
        if args.ablation:
            nets["no prior"] = load_model(args.ablation, task="restore")
    except (ValueError, ModelError) as exc:
        print(f"sketchfill eval-restore: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    if not paths:
        print(f"sketchfill eval-restore: no photos in {args.data}", file=sys.stderr)
        return 2
    methods = ["telea", "ns", "plain generator", *reversed(nets)]
    lpips = STLPIPS.pretrained()
    finder = face_finder()
    print(f"{len(paths)} photos x {args.masks} masks at {args.size} px")

    per = {g: {m: {k: [] for k in METRICS} for m in methods} for g in ("all", *GROUPS)}
    rows, sheet, skipped = [], [], []
    for path in paths:
        truth = load_square(path, args.size)
        clean = finder.landmarks(truth).points  # only to place the masks on the face
        for k, kind in enumerate(kinds_for(args.masks)):
            rng = np.random.default_rng([image_seed(path.name), k])
            mask, _ = occluder_mask(rng, clean, args.size, kind)
            occluded = fill_occluder(truth, mask, rng)
            rgba = np.dstack([occluded, np.full(mask.shape, 255, np.uint8)])
            hole = mask.astype(bool)
            mask8 = mask * np.uint8(255)
            ys, xs = np.nonzero(hole)
            near = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            try:
                points = finder.landmarks(occluded, near).points
            except FaceNotFound:
                skipped.append(f"{path.name}#{k}")
                continue
            outputs = {}
            for name in methods:
                if name in ("telea", "ns"):
                    result = run_restore(None, rgba, mask8, method=name)
                elif name == "plain generator":
                    result = run_edit(plain, EditInputs(rgba, mask8), seed=k)
                else:
                    result = run_restore(nets[name], rgba, mask8, seed=k, landmarks=points)
                outputs[name] = apply_patch(rgba, result)[..., :3]
            group = "side" if kind == "side" else "other"
            row = {"image": path.name, "mask": k, "kind": kind}
            for name, out in outputs.items():
                values = {
                    "psnr": masked_psnr(out, truth, hole),
                    "st_lpips": lpips.masked(out, truth, hole),
                    "l1": masked_l1(out, truth, hole),
                }
                row[name] = {m: round(v, 4) for m, v in values.items()}
                for m, v in values.items():
                    per["all"][name][m].append(v)
                    per[group][name][m].append(v)
            rows.append(row)
            if args.grid and len(sheet) < args.grid_rows:
                sheet.append([occluded, *(outputs[m] for m in methods), truth])
    summary = {
        g: {name: {m: mean_finite(v) for m, v in vals.items()} for name, vals in by.items()}
        for g, by in per.items()
    }
    result = {
        "data": str(args.data),
        "images": len(paths),
        "masks": len(rows),
        "no_face": skipped,
        "size": args.size,
        "protocol": PROTOCOL,
        "model": nets["sketchfill restore"].describe(),
        "methods": summary["all"],
        "groups": {g: summary[g] for g in GROUPS},
        "per_image": rows,
    }
    save_report(args.json, result)
    if args.grid:
        write_sheet(args.grid, sheet)
    for g in ("all", *GROUPS):
        n = len(per[g][methods[0]]["psnr"])
        print(f"\n{g} masks ({n})")
        print_table(summary[g], METRICS, digits=3)
    if skipped:
        print(f"\nno face found with the occluder in place: {len(skipped)} masks, skipped")
    return 0
