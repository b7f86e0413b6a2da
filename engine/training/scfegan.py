"""SC-FEGAN generator and SN-PatchGAN discriminator, sized for CPU serving.

The generator keeps SC-FEGAN's shape (Jo & Park, ICCV 2019): a U-Net of gated
convolutions, strided encoder, dilated gated convolutions in the middle, skip connections
into an upsampling decoder, tanh output. What differs is set by the measurements in
docs/ARCHITECTURE.md: no local response normalisation (25-160 % extra CPU time), a
32-channel base instead of 64
(the released 93 M-parameter graph needs 1.2 s per 512 edit on two cores; this one
~0.25-0.4 s), the bottleneck at 1/16 of the input, where dilations 2/4/8 still see real
pixels (SC-FEGAN's 4x4 bottleneck made its dilations pad-only), and nearest-neighbour
upsampling + convolution instead of transposed convolutions (no checkerboard, plain ONNX).
The architecture does not depend on the resolution, so a 256-px model can be fine-tuned at
512. Explicit integer padding everywhere: ONNX Runtime rejects dilation with auto_pad SAME.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

IN_CHANNELS = 9  # modelcard.INPUT_CHANNELS
COND_CHANNELS = 5  # mask, sketch, colour rgb: input channels 3..7, shown to the discriminator
DILATIONS = (2, 4, 8)


class GatedConv(nn.Module):
    """Gated convolution (Yu et al., DeepFill v2): features * sigmoid(gate), one conv."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout, k, stride, dilation * (k - 1) // 2, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat, gate = self.conv(x).chunk(2, 1)
        return F.leaky_relu(feat, 0.2) * torch.sigmoid(gate)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class Generator(nn.Module):
    """Input (N, 9, R, R) per modelcard.INPUT_CHANNELS, R a multiple of 16; output RGB in
    [-1, 1]. The raw output covers the whole square; the engine pastes only masked pixels."""

    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.width = width
        self.enc1 = GatedConv(IN_CHANNELS, w, 5, 2)  # R/2
        self.enc2 = GatedConv(w, 2 * w, 3, 2)  # R/4
        self.enc3 = GatedConv(2 * w, 4 * w, 3, 2)  # R/8
        self.enc4 = GatedConv(4 * w, 8 * w, 3, 2)  # R/16
        self.middle = nn.Sequential(*(GatedConv(8 * w, 8 * w, 3, 1, d) for d in DILATIONS))
        self.dec4 = GatedConv(8 * w + 4 * w, 4 * w)  # R/8
        self.dec3 = GatedConv(4 * w + 2 * w, 2 * w)  # R/4
        self.dec2 = GatedConv(2 * w + w, w)  # R/2
        # Full resolution is the costliest level: half width there, with the raw input
        # concatenated so that kept pixels and sketch lines are seen at full detail.
        self.dec1 = GatedConv(w + IN_CHANNELS, w // 2)
        self.out = nn.Conv2d(w // 2, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        y = self.middle(self.enc4(e3))
        y = self.dec4(torch.cat([_up(y), e3], 1))
        y = self.dec3(torch.cat([_up(y), e2], 1))
        y = self.dec2(torch.cat([_up(y), e1], 1))
        y = self.dec1(torch.cat([_up(y), x], 1))
        return torch.tanh(self.out(y))


class Discriminator(nn.Module):
    """SN-PatchGAN (DeepFill v2, as in SC-FEGAN): six spectrally normalised 5x5 stride-2
    convolutions over image + mask + sketch + colour; every element of the last feature map
    is a patch logit."""

    def __init__(self, width: int = 64):
        super().__init__()
        chans = [3 + COND_CHANNELS, width, 2 * width, 4 * width, 4 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(itertools.pairwise(chans)):
            layers.append(spectral_norm(nn.Conv2d(cin, cout, 5, 2, 2)))
            if i < len(chans) - 2:
                layers.append(nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, cond], 1))


def generator_from_onnx(path) -> Generator | None:
    """The exported generator back in PyTorch (eval mode), from the ONNX file's weights:
    the exporter keeps parameter names, so the same weights run in both. None when the
    file is not a graph of this Generator (e.g. a test fixture)."""
    import onnx
    from onnx import numpy_helper

    weights = {
        t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
        for t in onnx.load(str(path)).graph.initializer
    }
    first = weights.get("enc1.conv.weight")
    if first is None:
        return None
    gen = Generator(first.shape[0] // 2)
    try:
        gen.load_state_dict(weights, strict=True)
    except RuntimeError:
        return None
    return gen.eval()
