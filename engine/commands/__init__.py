"""The `sketchfill` commands that belong to no one tool: serve, broker, keys, hello,
install-plugins, demo and bench (the table is cli.py; each tool's own commands are in its
folder under tools/)."""
