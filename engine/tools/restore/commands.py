"""`sketchfill restore`: remove what hides part of a face (hand, glasses, hair, text) given
only a mask, through a running engine or in process; `--method` runs OpenCV's Telea or
Navier-Stokes inpainting instead (the evaluation's baselines)."""

from __future__ import annotations

import argparse
import json
import secrets
import sys

from ...pipeline import layers
from ...pipeline.images import (
    ImageFileError,
    check_output,
    has_alpha,
    load_layer,
    load_rgba,
    save_image,
)
from ...pipeline.preprocess import MASK_THRESHOLD, mask_bbox
from ...pipeline.result import EditError, EditResult, apply_patch
from ...pipeline.runtime import ModelError, load_model
from ...wire import protocol
from ...wire.client import Client
from ...wire.errors import EngineError
from ...wire.requests import RestoreRequest, edit_region
from ..cli import (
    add_engine_arguments,
    add_fill_arguments,
    answering_engine,
    cut,
    remote_result,
)
from .infer import BASELINES, DEFAULT_RESTORE_MODEL, run_restore

HELP = "remove an occluder from a face given only its mask (face-structure prior)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="the photo with the face")
    p.add_argument(
        "--mask",
        required=True,
        help="what hides the face: white on black, or paint on a transparent layer",
    )
    p.add_argument("-o", "--output", required=True, help="where to write the restored image")
    add_fill_arguments(p)
    p.add_argument(
        "--method",
        choices=BASELINES,
        help="classic inpainting instead of the network (what the evaluation compares against)",
    )
    add_engine_arguments(p)
    p.add_argument(
        "--model", help=f"model folder or name, run in process (default {DEFAULT_RESTORE_MODEL})"
    )
    p.add_argument("--threads", type=int, help="ONNX Runtime threads for in-process runs")


def run(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    try:
        check_output(args.output)
        image = load_rgba(args.image)
        mask = layers.mask_channel(load_layer(args.mask, image), "RGBA")
        result, where = _restore(image, mask, seed, args)
        save_image(args.output, apply_patch(image, result), keep_alpha=has_alpha(args.image))
    except (ImageFileError, EditError, ModelError, EngineError) as exc:
        print(f"sketchfill restore: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    summary = {"output": args.output, "seed": result.seed, "engine": where}
    print(json.dumps({**summary, "patch": result.box.to_json()}))
    return 0


def _restore(image, mask, seed: int, args: argparse.Namespace) -> tuple[EditResult, str]:
    if args.method:
        return run_restore(None, image, mask, seed, args.feather, method=args.method), args.method
    found = None if args.in_process or args.model else answering_engine(args.engine)
    if found is not None:
        client, hello = found
        with client:
            return _remote(client, hello, image, mask, seed, args.feather), args.engine
    model = load_model(args.model or DEFAULT_RESTORE_MODEL, task="restore", threads=args.threads)
    return run_restore(model, image, mask, seed, args.feather), "in-process"


def _remote(client: Client, hello: dict, image, mask, seed: int, feather: float) -> EditResult:
    """Send what the engine reads: a wide square around the mask (it finds the face there)."""
    height, width = mask.shape
    bbox = mask_bbox(mask >= MASK_THRESHOLD)
    if bbox is None:
        raise EditError(protocol.EMPTY_MASK, "the mask selects nothing")
    r = edit_region(bbox, width, height, hello, tool="restore")
    request = RestoreRequest(
        canvas_width=width,
        canvas_height=height,
        region=r,
        image=cut(image, r),
        mask=cut(mask, r),
        seed=seed,
        feather=feather,
    )
    return remote_result(client, request)
