"""`sketchfill tone`: auto tone of an image file, through a running engine or in process."""

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
from ...wire import protocol
from ...wire.client import Client
from ...wire.errors import EngineError
from ...wire.requests import ToneRequest
from ..cli import add_engine_arguments, answering_engine, remote_result
from .infer import DEFAULT_TONE_MODEL, run_tone

HELP = "auto tone an image file: exposure, contrast and colour balance"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="the photo (any format Pillow reads)")
    p.add_argument(
        "--mask",
        help="tone only here (soft): white on black, or paint on a transparent layer",
    )
    p.add_argument("-o", "--output", required=True, help="where to write the toned image")
    p.add_argument(
        "--fixed",
        action="store_true",
        help="use the fixed algorithm (gray world, auto-levels, gamma) instead of the network",
    )
    add_engine_arguments(p)
    p.add_argument(
        "--model", help=f"model folder or name, run in process (default {DEFAULT_TONE_MODEL})"
    )
    p.add_argument("--threads", type=int, help="ONNX Runtime threads for in-process runs")


def run(args: argparse.Namespace) -> int:
    try:
        check_output(args.output)
        image = load_rgba(args.image)
        mask = None
        if args.mask:
            mask = layers.mask_channel(load_layer(args.mask, image), "RGBA")
        result, where = _tone(image, mask, args)
        save_image(args.output, apply_patch(image, result), keep_alpha=has_alpha(args.image))
    except (ImageFileError, EditError, ModelError, EngineError) as exc:
        print(f"sketchfill tone: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    print(json.dumps({"output": args.output, "engine": where, "patch": result.box.to_json()}))
    return 0


def _tone(image: np.ndarray, mask: np.ndarray | None, args: argparse.Namespace):
    if args.fixed:
        return run_tone(None, image, mask), "fixed algorithm"
    found = None if args.in_process or args.model else answering_engine(args.engine)
    if found is not None:
        client, _ = found
        with client:
            return _remote(client, image, mask), args.engine
    model = load_model(args.model or DEFAULT_TONE_MODEL, task="tone", threads=args.threads)
    return run_tone(model, image, mask), "in-process"


def _remote(client: Client, image: np.ndarray, mask: np.ndarray | None) -> EditResult:
    height, width = image.shape[:2]
    request = ToneRequest(
        canvas_width=width,
        canvas_height=height,
        region=protocol.Box(0, 0, width, height),
        image=image,
        mask=mask,
    )
    return remote_result(client, request)
