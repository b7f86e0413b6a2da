"""`sketchfill serve`: run the engine."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

import zmq

from ..serve.server import Engine, ServeConfig
from ..wire.launch import is_local

HELP = "run the engine: a ZeroMQ service the plug-ins and `sketchfill edit` talk to"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = ServeConfig()
    p.add_argument("--endpoint", default=d.endpoint, help="ZeroMQ endpoint to bind (%(default)s)")
    p.add_argument("--model", help="model folder or name (default: sketchfill-face)")
    p.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads (default: all cores)")
    p.add_argument("--workers", type=int, default=d.workers, help="edits run at once (%(default)s)")
    p.add_argument(
        "--max-pixels",
        type=int,
        default=d.max_pixels,
        help="largest region one edit may send, in pixels (%(default)s)",
    )
    p.add_argument(
        "--max-message-bytes",
        type=int,
        default=d.max_message_bytes,
        help="largest request, in bytes (%(default)s)",
    )
    p.add_argument(
        "--max-queue",
        type=int,
        default=d.max_queue,
        help="edits that may wait before new ones are refused as busy (%(default)s)",
    )
    p.add_argument(
        "--max-client-queue",
        type=int,
        default=d.max_client_queue,
        help="requests one client may have queued, running or unread (%(default)s)",
    )
    p.add_argument(
        "--max-queued-bytes",
        type=int,
        default=d.max_queued_bytes,
        help="bytes of requests and unread replies the engine holds at once (%(default)s)",
    )
    p.add_argument(
        "--shutdown-grace",
        type=float,
        default=d.shutdown_grace,
        help="seconds running edits get to answer on SIGTERM (%(default)s)",
    )
    p.add_argument(
        "--broker",
        metavar="BACKEND",
        help="serve behind `sketchfill broker`: connect to its backend instead of binding",
    )
    p.add_argument(
        "--curve-secret",
        metavar="FILE",
        help="studio mode: the engine's secret key file (from `sketchfill keys`)",
    )
    p.add_argument(
        "--authorized-clients",
        metavar="DIR",
        help="studio mode: folder of the public key files of the clients to accept",
    )


def curve_problem(args: argparse.Namespace, binds: str | None) -> str | None:
    """What is wrong with the studio-mode options for binding `binds` (None: nothing is
    bound here), or None when they are fine. Shared with `sketchfill broker`."""
    if bool(args.curve_secret) != bool(args.authorized_clients):
        return "--curve-secret and --authorized-clients go together"
    if binds and not is_local(binds) and not args.curve_secret:
        return (
            f"refusing to bind {binds} without keys: anyone on the network could use and "
            "read it. Make keys with `sketchfill keys` and pass --curve-secret and "
            "--authorized-clients (see README, studio mode), or bind tcp://127.0.0.1:PORT"
        )
    if args.authorized_clients and not Path(args.authorized_clients).is_dir():
        return f"--authorized-clients {args.authorized_clients} is not a folder"
    return None


def run(args: argparse.Namespace) -> int:
    problem = curve_problem(args, None if args.broker else args.endpoint)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    config = ServeConfig(
        endpoint=args.endpoint,
        model=args.model,
        threads=args.threads,
        workers=max(1, args.workers),
        max_pixels=args.max_pixels,
        max_message_bytes=args.max_message_bytes,
        max_queue=args.max_queue,
        max_client_queue=max(1, args.max_client_queue),
        max_queued_bytes=args.max_queued_bytes,
        shutdown_grace=max(0.0, args.shutdown_grace),
        curve_secret_file=args.curve_secret,
        authorized_clients=args.authorized_clients,
        broker=args.broker,
    )
    ctx = zmq.Context()
    engine = Engine(config, ctx)
    # SIGTERM or Ctrl-C: every queued and running request is answered (shutting_down)
    # within the grace period; a second signal skips what is left of it.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: engine.stop())
    try:
        engine.serve_forever()
    except Exception as exc:  # binding errors mostly: say which endpoint and why
        print(f"the engine cannot serve {config.endpoint}: {exc}", file=sys.stderr)
        return 1
    finally:
        # Waits (up to the sockets' linger) for the last replies to leave the process.
        ctx.destroy(linger=1000)
    return 0
