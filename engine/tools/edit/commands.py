"""`sketchfill edit`: one edit from image files, through a running engine or in process."""

from __future__ import annotations

import argparse
import json
import secrets
import sys

from ...pipeline.images import ImageFileError, check_output, has_alpha, load_inputs, save_image
from ...pipeline.preprocess import EditInputs, mask_bbox
from ...pipeline.result import EditError, EditResult, apply_patch
from ...pipeline.runtime import ModelError, load_generator
from ...wire import protocol
from ...wire.client import Client
from ...wire.errors import EngineError
from ...wire.requests import EditRequest, edit_region
from ..cli import (
    add_engine_arguments,
    add_fill_arguments,
    answering_engine,
    cut,
    remote_result,
)
from .infer import run_edit

HELP = "edit an image file: regenerate the masked area following a sketch and colours"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="the photo (any format Pillow reads)")
    p.add_argument(
        "--mask",
        required=True,
        help="what to regenerate: white on black, or paint on a transparent layer",
    )
    p.add_argument("--sketch", help="pen lines: dark on white, or strokes on a transparent layer")
    p.add_argument("--color", help="colour dabs on a transparent layer")
    add_fill_arguments(p)
    p.add_argument("-o", "--output", required=True, help="where to write the edited image")
    add_engine_arguments(p)
    p.add_argument("--model", help="model folder or name for in-process runs")
    p.add_argument("--threads", type=int, help="ONNX Runtime threads for in-process runs")


def run(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    try:
        check_output(args.output)
        inputs = load_inputs(args.image, args.mask, args.sketch, args.color)
        result, where = _edit(inputs, seed, args)
        save_image(args.output, apply_patch(inputs.image, result), keep_alpha=has_alpha(args.image))
    except (ImageFileError, EditError, ModelError, EngineError) as exc:
        print(f"sketchfill edit: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    b = result.box
    summary = {"output": args.output, "seed": result.seed, "engine": where, "patch": b.to_json()}
    print(json.dumps(summary))
    return 0


def _edit(inputs: EditInputs, seed: int, args: argparse.Namespace) -> tuple[EditResult, str]:
    found = None if args.in_process else answering_engine(args.engine)
    if found is not None:
        client, hello = found
        with client:
            return _remote(client, hello, inputs, seed, args.feather), args.engine
    model = load_generator(args.model, threads=args.threads)
    return run_edit(model, inputs, seed, args.feather), "in-process"


def _remote(client: Client, hello: dict, inputs: EditInputs, seed: int, feather: float):
    """Send only the pixels the engine will read, as the plug-ins do."""
    height, width = inputs.mask.shape
    bbox = mask_bbox(inputs.regenerate)
    if bbox is None:
        raise EditError(protocol.EMPTY_MASK, "the mask selects nothing")
    r = edit_region(bbox, width, height, hello)
    request = EditRequest(
        canvas_width=width,
        canvas_height=height,
        region=r,
        image=cut(inputs.image, r),
        mask=cut(inputs.mask, r),
        sketch=cut(inputs.sketch, r),
        color=cut(inputs.color, r),
        seed=seed,
        feather=feather,
    )
    return remote_result(client, request)
