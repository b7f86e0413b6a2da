"""The Generate procedure's settings (standard library only: the plug-in registers its
procedures with these even when the engine client cannot load)."""

from dataclasses import dataclass

MASK_SOURCES = ("auto", "selection", "layer")
MAX_SEED = 2**31 - 1
MAX_FEATHER = 64.0  # the engine's limit (engine/pipeline/pasteback.py)
AUTO_FEATHER = -1.0  # scaled with the mask and the photo (sketchfill_client.roles.auto_feather)


@dataclass
class Settings:
    """The procedure's arguments. Layer roles are names, so remembered settings and batch
    scripts carry over to every image of a series; "" means "none" (for the image layer:
    the selected layer). A guide role left at its own name ("sketch", "color", "mask")
    also picks the other names of sketchfill_client.roles.ROLE_NAMES ("lines", "colour"...);
    feather -1 is the automatic one."""

    image_layer: str = ""
    sketch_layer: str = "sketch"
    color_layer: str = "color"
    mask_source: str = "auto"
    mask_layer: str = "mask"
    seed: int = -1
    feather: float = AUTO_FEATHER
    strength: float = 100.0  # the new layer's opacity, in percent
    endpoint: str = ""
