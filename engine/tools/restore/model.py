"""The restore generator: the edit tool's gated U-Net, with the face prior's channels
where the edit tool has its sketch and colour (pipeline/modelcard.RESTORE_CHANNELS), and
started from an exported edit generator's weights.

The one place the restore tool builds on another tool's code: the network is the same, so
it is imported, not copied.
"""

from __future__ import annotations

import torch

from ...pipeline.modelcard import RESTORE_CHANNELS
from ...pipeline.runtime import resolve_model_dir
from ...training.scfegan import Generator, generator_from_onnx

__all__ = ["Generator", "initial_generator"]


def initial_generator(init: str) -> Generator:
    """The edit generator's weights from an exported model folder. The prior's RGB takes
    the colour hint's channels (the edit generator already follows colour there); the
    sketch channel's weights start at zero, as "the prior is known here" means nothing to
    it yet."""
    folder = resolve_model_dir(init)
    gen = generator_from_onnx(folder / "model.onnx")
    if gen is None:
        raise ValueError(f"{folder}/model.onnx is not an exported SketchFill edit generator")
    with torch.no_grad():
        gen.enc1.conv.weight[:, RESTORE_CHANNELS.index("prior_known")] = 0
    return gen.train()
