"""The tone tool: auto tone curves for a photo or a selection of it."""
