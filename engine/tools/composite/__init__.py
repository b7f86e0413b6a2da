"""The composite tool: a face from one layer blended onto the photo."""
