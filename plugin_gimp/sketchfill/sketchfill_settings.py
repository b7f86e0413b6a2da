"""The Generate procedure's settings (standard library only: the plug-in registers its
procedures with these even when the engine client cannot load)."""

from dataclasses import dataclass

MASK_SOURCES = ("auto", "selection", "layer")
MAX_SEED = 2**31 - 1
MAX_FEATHER = 64.0  # the engine's limit (engine/pipeline/pasteback.py)


@dataclass
class Settings:
    """The procedure's arguments. Layer roles are names, so remembered settings and batch
    scripts carry over to every image of a series; "" means "none" (for the image layer:
    the selected layer)."""

    image_layer: str = ""
    sketch_layer: str = "sketch"
    color_layer: str = "color"
    mask_source: str = "auto"
    mask_layer: str = "mask"
    seed: int = -1
    feather: float = 0.0
    endpoint: str = ""
