"""Subcommands of the `sketchfill` CLI that drive the engine (see cli.py)."""
