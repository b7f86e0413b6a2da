"""The composite network: a face from one photo put onto another, harmonised, in one pass.

After the compositing patent: two encoders (target photo, source face), a feature-mask head
on each ("pixel classification layer"), a softmax of the two that becomes the composite
mask, mask-based adaptive instance normalisation of the face features to the target's
statistics under that mask, and a decoder. The decoder predicts a per-pixel affine colour
transform of the source (3x4 coefficients on a coarse grid) instead of pixels, so the
engine can apply it at full resolution and the face keeps its own detail; the base of that
transform is the same masked AdaIN done on the colours themselves (statistics matching),
which the learnt part corrects locally (lighting direction, tone curve, cast). The composite
mask is min-max normalised to [0, 1] and never reaches outside the user's mask:

    out = alpha * A(source) + (1 - alpha) * target

Inputs are RGB in [0, 1] and a mask in [0, 1], all at the card's resolution R.
Outputs: `alpha` [1, 1, R, R] and `coeffs` [1, 12, R/4, R/4].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...pipeline.modelcard import COMPOSITE_COEFFS as COEFFS
from ...pipeline.modelcard import COMPOSITE_STRIDE as COEFF_STRIDE

EPS = 1e-5
MIN_GAIN = 0.25  # the statistics-matching gain stays within 1/4..4 (flat regions)


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    pad = dilation
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, pad, dilation=dilation), nn.LeakyReLU(0.2, inplace=True)
    )


class Encoder(nn.Module):
    """RGB + mask -> features at 1/2, 1/4, 1/8, and a face-mask logit at 1/2."""

    def __init__(self, width: int):
        super().__init__()
        w = width
        self.stem = _conv(4, w)
        self.down1 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))
        self.down2 = nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w))
        self.down3 = nn.Sequential(_conv(4 * w, 4 * w, 2), _conv(4 * w, 4 * w, dilation=2))
        self.mask_head = nn.Conv2d(2 * w, 1, 3, 1, 1)  # the pixel classification layer

    def forward(self, rgb: torch.Tensor, mask: torch.Tensor):
        f1 = self.down1(self.stem(torch.cat([rgb * 2 - 1, mask], 1)))
        f2 = self.down2(f1)
        f3 = self.down3(f2)
        return f1, f2, f3, self.mask_head(f1)


def masked_stats(x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and standard deviation of x weighted by weight (N1HW)."""
    total = weight.sum((2, 3), keepdim=True) + EPS
    mean = (x * weight).sum((2, 3), keepdim=True) / total
    var = ((x - mean) ** 2 * weight).sum((2, 3), keepdim=True) / total
    return mean, torch.sqrt(var + EPS)


def masked_adain(face: torch.Tensor, photo: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The face's statistics under `weight` replaced by the photo's under the same weight."""
    f_mean, f_std = masked_stats(face, weight)
    p_mean, p_std = masked_stats(photo, weight)
    return (face - f_mean) / f_std * p_std + p_mean


def minmax(x: torch.Tensor) -> torch.Tensor:
    lo = x.amin((2, 3), keepdim=True)
    hi = x.amax((2, 3), keepdim=True)
    return (x - lo) / (hi - lo + EPS)


def apply_coeffs(coeffs: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """Per-pixel affine colour transform: coeffs (N,12,h,w) spread bilinearly over rgb."""
    full = F.interpolate(coeffs, size=rgb.shape[2:], mode="bilinear", align_corners=False)
    a = full.view(full.shape[0], 3, 4, *rgb.shape[2:])
    return (a[:, :, :3] * rgb[:, None]).sum(2) + a[:, :, 3]


def compose(
    target: torch.Tensor, source: torch.Tensor, alpha: torch.Tensor, coeffs: torch.Tensor
) -> torch.Tensor:
    return alpha * apply_coeffs(coeffs, source).clamp(0, 1) + (1 - alpha) * target


class CompositeNet(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.width = width
        self.target_encoder = Encoder(w)
        self.source_encoder = Encoder(w)
        self.middle = nn.Sequential(_conv(8 * w, 4 * w), _conv(4 * w, 4 * w, dilation=2))
        self.up = _conv(4 * w + 8 * w, 4 * w)  # 1/8 -> 1/4 with both encoders' 1/4 features
        self.head = nn.Sequential(_conv(4 * w, 2 * w), nn.Conv2d(2 * w, COEFFS, 3, 1, 1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, target: torch.Tensor, source: torch.Tensor, mask: torch.Tensor):
        _, t2, t3, t_logit = self.target_encoder(target, mask)
        _, s2, s3, s_logit = self.source_encoder(source, mask)

        # Composite mask: softmax over "keep the photo" / "take the face", limited to the
        # user's mask; spread to full resolution, then min-max normalised to [0, 1].
        half_mask = F.avg_pool2d(mask, 2)
        face = torch.softmax(torch.cat([t_logit, s_logit], 1), 1)[:, 1:] * half_mask
        face = F.interpolate(face, size=mask.shape[2:], mode="bilinear", align_corners=False)
        alpha = minmax(face)

        # Mask-based AdaIN of the face features to the photo's, under the composite mask.
        m3 = F.avg_pool2d(alpha, 8)
        mixed = m3 * masked_adain(s3, t3, m3) + (1 - m3) * t3
        x = self.middle(torch.cat([mixed, t3], 1))
        x = F.interpolate(x, size=t2.shape[2:], mode="bilinear", align_corners=False)
        m2 = F.avg_pool2d(alpha, 4)
        x = self.up(torch.cat([x, m2 * masked_adain(s2, t2, m2) + (1 - m2) * t2, s2], 1))

        # Base transform: the same statistics matching on colours (per-channel gain and
        # offset); the head learns the local correction on top of it.
        weight = F.avg_pool2d(alpha, COEFF_STRIDE)
        small_src = F.avg_pool2d(source, COEFF_STRIDE)
        small_tgt = F.avg_pool2d(target, COEFF_STRIDE)
        s_mean, s_std = masked_stats(small_src, weight)
        t_mean, t_std = masked_stats(small_tgt, weight)
        gain = (t_std / s_std).clamp(MIN_GAIN, 1 / MIN_GAIN)
        n, _, h, w = x.shape
        diag = (torch.eye(3) * gain.view(n, 3, 1)).view(n, 3, 3, 1, 1)
        offset = (t_mean - s_mean * gain).view(n, 3, 1, 1, 1)
        base = torch.cat([diag.expand(n, 3, 3, h, w), offset.expand(n, 3, 1, h, w)], 2)
        coeffs = base.reshape(n, COEFFS, h, w) + self.head(x)
        return alpha, coeffs
