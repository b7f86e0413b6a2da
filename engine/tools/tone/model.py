"""The tone networks: the enhancer (exported), its inverse and the naturalness critic.

ToneNet is an encoder, residual blocks and a decoder with skip connections (the tone
patent's layout). Instead of pixels it predicts a colour transform that the engine applies
at full size (sketchfill.tools.tone.infer): per-channel curves of KNOTS+1 points, monotone by
construction, and a GAINxGAIN grid of log2 exposure gains in [-MAX_EV, MAX_EV]. At
initialisation the transform is the identity, so training starts from "leave it alone".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...pipeline.modelcard import TONE_LUT_SIZE

KNOTS = 16  # curve segments per channel
GAIN = 16  # gain grid side
MAX_EV = 1.0  # largest local exposure change, in stops
HIST_BINS = 32


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.2, inplace=True))


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(ch, ch, 3, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def soft_histogram(x: torch.Tensor, bins: int = HIST_BINS) -> torch.Tensor:
    """Per-channel histogram with triangular bins (differentiable, ONNX-exportable):
    [B, 3, H, W] in [0, 1] -> [B, 3 * bins]."""
    centres = torch.arange(bins, dtype=x.dtype, device=x.device).view(1, 1, bins, 1)
    flat = x.flatten(2).unsqueeze(2) * (bins - 1)  # B, 3, 1, HW
    weights = torch.relu(1 - (flat - centres).abs())
    return weights.mean(dim=3).flatten(1)


def knot_weights(x: torch.Tensor, knots: int = KNOTS) -> torch.Tensor:
    """Piecewise-linear interpolation weights of x in [0, 1] over knots+1 evenly spaced
    points: [...] -> [..., knots + 1]."""
    points = torch.arange(knots + 1, dtype=x.dtype, device=x.device)
    return torch.relu(1 - (x.unsqueeze(-1) * knots - points).abs())


class ToneNet(nn.Module):
    def __init__(self, width: int = 24):
        super().__init__()
        w = width
        self.enc1 = _conv(3, w)
        self.enc2 = _conv(w, 2 * w, 2)
        self.enc3 = _conv(2 * w, 4 * w, 2)
        self.enc4 = _conv(4 * w, 4 * w, 2)
        self.res = nn.Sequential(*[ResBlock(4 * w) for _ in range(3)])
        self.dec3 = _conv(8 * w, 2 * w)
        self.dec2 = _conv(4 * w, w)
        self.gain_head = nn.Conv2d(w, 1, 1)
        self.curve_head = nn.Sequential(
            nn.Linear(4 * w + w + 3 * HIST_BINS, 128),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(128, 3 * (KNOTS + 2)),
        )
        # Identity transform at start: equal curve steps, end points 0 and 1, no gain.
        nn.init.zeros_(self.gain_head.weight)
        nn.init.zeros_(self.gain_head.bias)
        last = self.curve_head[-1]
        nn.init.zeros_(last.weight)
        bias = torch.zeros(3, KNOTS + 2)
        bias[:, KNOTS:] = -6.0  # black and white end points start near 0 and 1
        last.bias.data.copy_(bias.flatten())
        self.register_buffer("lut_weights", knot_weights(torch.linspace(0, 1, TONE_LUT_SIZE)).T)

    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, 3, H, W] in [0, 1] -> (curve points [B, 3, KNOTS+1], log2 gain [B, 1, G, G])."""
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        r = self.res(self.enc4(e3))
        d3 = self.dec3(torch.cat([F.interpolate(r, size=e3.shape[2:]), e3], 1))
        d2 = self.dec2(torch.cat([F.interpolate(d3, size=e2.shape[2:]), e2], 1))
        gain = MAX_EV * torch.tanh(F.adaptive_avg_pool2d(self.gain_head(d2), GAIN))
        pooled = torch.cat([r.mean(dim=(2, 3)), d2.mean(dim=(2, 3)), soft_histogram(x)], 1)
        params = self.curve_head(pooled).view(-1, 3, KNOTS + 2)
        steps = F.softplus(params[..., :KNOTS] + 1.0)
        shape = torch.cumsum(steps, -1) / steps.sum(-1, keepdim=True)
        shape = torch.cat([torch.zeros_like(shape[..., :1]), shape], -1)
        black = 0.25 * torch.sigmoid(params[..., KNOTS : KNOTS + 1])
        white = 1 - 0.25 * torch.sigmoid(params[..., KNOTS + 1 :])
        return black + (white - black) * shape, gain

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the engine runs: (lut [B, 3, 256], log2 gain [B, 1, G, G])."""
        points, gain = self.transform(x)
        return points @ self.lut_weights, gain


def apply_tone(x: torch.Tensor, points: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """The transform at x's own size, as sketchfill.tools.tone.infer.apply_transform does it."""
    curved = (knot_weights(x) * points[:, :, None, None, :]).sum(-1)
    spread = F.interpolate(gain, size=x.shape[2:], mode="bilinear", align_corners=False)
    return (curved * torch.exp2(spread)).clamp(0, 1)


class Inverse(nn.Module):
    """Maps an enhanced image back to its input; fewer layers than the enhancer, so it
    can undo colour and tone but not invent lost detail (the artifact loss)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            _conv(3, width), _conv(width, width), _conv(width, width), _conv(width, width)
        )
        self.out = nn.Conv2d(width, 3, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.out(self.body(x))


class Critic(nn.Module):
    """Least-squares GAN discriminator of natural-looking photos (patch scores)."""

    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.body = nn.Sequential(
            _conv(3, w, 2), _conv(w, 2 * w, 2), _conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w, 2)
        )
        self.out = nn.Conv2d(4 * w, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x * 2 - 1))
