"""`sketchfill keys`: a CURVE key pair for studio mode (an engine or a client)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import zmq
import zmq.auth

HELP = "make a CURVE key pair for an engine or a client (studio mode)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--name", default="engine", help="key name, e.g. engine or a user (%(default)s)")
    p.add_argument("--out", default=".", help="folder to write NAME.key and NAME.key_secret")
    p.add_argument("--force", action="store_true", help="replace an existing pair")


def run(args: argparse.Namespace) -> int:
    if not zmq.has("curve"):
        print("this pyzmq build has no CURVE support", file=sys.stderr)
        return 1
    out = Path(args.out).expanduser()
    public, secret = out / f"{args.name}.key", out / f"{args.name}.key_secret"
    if not args.force and (public.exists() or secret.exists()):
        print(f"{public} or {secret} exists; pass --force to replace it", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    # Write both files in a private temporary folder, then move them into place, so a
    # failure never leaves half a pair and the secret is never readable by others.
    with tempfile.TemporaryDirectory(dir=out, prefix=".keys-") as tmp:
        made_public, made_secret = zmq.auth.create_certificates(tmp, args.name)
        os.chmod(made_secret, 0o600)
        os.replace(made_secret, secret)
        os.replace(made_public, public)
    print(f"public key (share it): {public}\nsecret key (keep it):  {secret}")
    return 0
