"""The command-line side every tool's commands.py shares: --engine and --in-process,
--seed and --feather, finding a running engine, and cutting out and reading back a region."""

from __future__ import annotations

import argparse

import numpy as np

from ..pipeline.layers import as_array
from ..pipeline.result import EditResult
from ..wire import protocol
from ..wire.client import Client
from ..wire.errors import EngineError
from ..wire.protocol import Box
from ..wire.requests import Request


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """--engine and --in-process: commands that use a running engine when one answers."""
    p.add_argument(
        "--engine",
        default=protocol.DEFAULT_ENDPOINT,
        help="use the engine at this endpoint when one answers (%(default)s)",
    )
    p.add_argument(
        "--in-process", action="store_true", help="do not look for an engine; run the model here"
    )


def add_fill_arguments(p: argparse.ArgumentParser) -> None:
    """--seed and --feather: commands whose generator fills a mask (edit, restore)."""
    p.add_argument("--seed", type=int, help="noise seed (random when left out)")
    p.add_argument(
        "--feather",
        type=float,
        default=0.0,
        help="soften the seam over this many pixels inside the mask (%(default)s)",
    )


def answering_engine(endpoint: str) -> tuple[Client, dict] | None:
    """A connected client and the engine's hello, or None when nobody answers in a second
    (the command then runs in process). The caller closes the client."""
    client = Client(endpoint)
    try:
        return client, client.hello(1.0)
    except EngineError:
        client.close()
        return None


def cut(a: np.ndarray | None, region: Box) -> np.ndarray | None:
    """The pixels of a layer inside `region` (what a request sends), or None."""
    r = region
    return None if a is None else np.ascontiguousarray(a[r.y : r.y1, r.x : r.x1])


def remote_result(client: Client, request: Request) -> EditResult:
    """Send the request and wait; the engine's patch as an array."""
    got = client.edit(request)
    patch = as_array(got.data, got.width, got.height, got.layout)
    return EditResult(np.array(patch), got.x, got.y, got.seed)
