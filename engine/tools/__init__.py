"""One package per tool (edit, tone, composite, restore); registry.py lists them."""
