"""SketchFill engine: sketch- and colour-guided face editing served over ZeroMQ."""

__version__ = "0.1.0"
