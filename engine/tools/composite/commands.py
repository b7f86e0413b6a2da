"""`sketchfill composite`: put a face onto a photo, harmonised, through a running engine
or in process; `--method` runs one of the three classic steps instead (the baselines)."""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ...pipeline import layers
from ...pipeline.images import (
    ImageFileError,
    check_output,
    has_alpha,
    load_layer,
    load_rgba,
    save_image,
)
from ...pipeline.result import EditError, EditResult, apply_patch
from ...pipeline.runtime import ModelError, load_model
from ...wire.client import Client
from ...wire.errors import EngineError
from ...wire.requests import CompositeRequest, edit_region
from ..cli import add_engine_arguments, answering_engine, cut, remote_result
from .infer import BASELINES, DEFAULT_COMPOSITE_MODEL, face_region, run_composite

HELP = "put a face (a layer with alpha) onto a photo: colour, light and seam matched"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="the photo that receives the face")
    p.add_argument(
        "face",
        help="the face layer: an image with alpha, the photo's size, or smaller with --at",
    )
    p.add_argument("--at", metavar="X,Y", help="where the face image's top-left corner goes")
    p.add_argument(
        "--mask",
        help="composite only here, within the face layer (soft): white on black, or paint "
        "on a transparent layer",
    )
    p.add_argument("-o", "--output", required=True, help="where to write the result")
    p.add_argument(
        "--method",
        choices=sorted(BASELINES),
        help="a classic step instead of the network (what the evaluation compares against)",
    )
    add_engine_arguments(p)
    p.add_argument(
        "--model", help=f"model folder or name, run in process (default {DEFAULT_COMPOSITE_MODEL})"
    )
    p.add_argument("--threads", type=int, help="ONNX Runtime threads for in-process runs")


def run(args: argparse.Namespace) -> int:
    try:
        check_output(args.output)
        image = load_rgba(args.image)
        face = place(load_rgba(args.face), image.shape[:2], args.at, args.face)
        mask = None
        if args.mask:
            mask = layers.mask_channel(load_layer(args.mask, image), "RGBA")
        result, where = _composite(image, face, mask, args)
        save_image(args.output, apply_patch(image, result), keep_alpha=has_alpha(args.image))
    except (ImageFileError, EditError, ModelError, EngineError) as exc:
        print(f"sketchfill composite: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    print(json.dumps({"output": args.output, "engine": where, "patch": result.box.to_json()}))
    return 0


def place(face: np.ndarray, size: tuple[int, int], at: str | None, name: str) -> np.ndarray:
    """The face image on a transparent canvas of `size` (height, width), its top-left
    corner at `at` ("X,Y"); without `at` it must be canvas-sized already."""
    height, width = size
    if at is None:
        if face.shape[:2] != (height, width):
            raise ImageFileError(
                f"{name} is {face.shape[1]}x{face.shape[0]} but the photo is {width}x{height}; "
                "pass --at X,Y to place a smaller face image"
            )
        return face
    try:
        x, y = (int(v) for v in at.split(","))
    except ValueError:
        raise ImageFileError(f"--at {at!r} is not X,Y in pixels") from None
    canvas = np.zeros((height, width, 4), np.uint8)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + face.shape[1], width), min(y + face.shape[0], height)
    if x0 >= x1 or y0 >= y1:
        raise ImageFileError(f"{name} placed at {x},{y} lies outside the {width}x{height} photo")
    canvas[y0:y1, x0:x1] = face[y0 - y : y1 - y, x0 - x : x1 - x]
    return canvas


def _composite(image: np.ndarray, face: np.ndarray, mask: np.ndarray | None, args):
    if args.method:
        return run_composite(None, image, face, mask, method=args.method), args.method
    found = None if args.in_process or args.model else answering_engine(args.engine)
    if found is not None:
        client, hello = found
        with client:
            return _remote(client, hello, image, face, mask), args.engine
    model = load_model(
        args.model or DEFAULT_COMPOSITE_MODEL, task="composite", threads=args.threads
    )
    return run_composite(model, image, face, mask), "in-process"


def _remote(client: Client, hello: dict, image, face, mask) -> EditResult:
    height, width = image.shape[:2]
    _, bbox = face_region(face, mask)
    # The tool's context square (margin 0.5, its model's size at least) holds the
    # network's (margin 0.2).
    r = edit_region(bbox, width, height, hello, tool="composite")
    request = CompositeRequest(
        canvas_width=width,
        canvas_height=height,
        region=r,
        image=cut(image, r),
        face=cut(face, r),
        mask=cut(mask, r),
    )
    return remote_result(client, request)
