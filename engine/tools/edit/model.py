"""The edit tool's networks: the SC-FEGAN generator and SN-PatchGAN discriminator.

They live in training/scfegan.py because the restore tool trains the same generator (with
its prior in the guides' channels); this module names them for the edit tool, as every
tool's model.py names its own.
"""

from __future__ import annotations

from ...training.scfegan import Discriminator, Generator, generator_from_onnx

__all__ = ["Discriminator", "Generator", "generator_from_onnx"]
