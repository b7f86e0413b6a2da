"""The restore tool: what an occluder hides on a face, from a mask alone."""
