"""`sketchfill hello`: ask a running engine who it is."""

from __future__ import annotations

import argparse
import json
import sys

from ..wire.client import Client
from ..wire.errors import EngineError
from ..wire.protocol import DEFAULT_ENDPOINT

HELP = "ask a running engine for its version, model, limits and queue"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", default=DEFAULT_ENDPOINT, help="engine endpoint (%(default)s)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait (%(default)s)")


def run(args: argparse.Namespace) -> int:
    with Client(args.engine) as client:
        try:
            hello = client.hello(args.timeout)
        except EngineError as exc:
            print(exc.message, file=sys.stderr)
            return 1
    print(json.dumps(hello, indent=2))
    return 0
