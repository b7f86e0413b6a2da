"""`sketchfill broker`: one endpoint in front of several engines."""

from __future__ import annotations

import argparse
import signal
import sys

import zmq

from ..serve.broker import Broker
from ..wire import protocol
from ..wire.launch import is_local
from .serve import curve_problem

HELP = "serve one endpoint from several engines (start them with serve --broker BACKEND)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--endpoint", default=protocol.DEFAULT_ENDPOINT, help="where clients connect (%(default)s)"
    )
    p.add_argument(
        "--backend",
        default="tcp://127.0.0.1:5738",
        help="where engines connect; cancels are published on its port + 1 (%(default)s)",
    )
    p.add_argument("--curve-secret", metavar="FILE", help="the broker's secret key file")
    p.add_argument(
        "--authorized-clients",
        metavar="DIR",
        help="folder of the public key files of the clients to accept",
    )


def run(args: argparse.Namespace) -> int:
    problem = curve_problem(args, args.endpoint)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    if not is_local(args.backend):
        print(
            f"the backend {args.backend} must be on this machine: engines connect to it "
            "without keys",
            file=sys.stderr,
        )
        return 2
    broker = Broker(
        args.endpoint,
        args.backend,
        curve_secret_file=args.curve_secret,
        authorized_clients=args.authorized_clients,
    )
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: broker.stop())
    try:
        broker.serve_forever()
    except (zmq.ZMQError, OSError, ValueError) as exc:
        print(f"the broker cannot serve: {exc}", file=sys.stderr)
        return 1
    return 0
