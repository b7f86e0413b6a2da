"""Evaluation metrics inside the edited region (used by `sketchfill eval`).

l1, psnr, ssim: fidelity to the held-out truth. perceptual: ST-LPIPS (Ghildyal & Liu, ECCV
2022; AlexNet, shift-tolerant variant) with the weights of the `stlpips-pytorch` wheel; its
package imports torchvision, which does not load beside our CPU torch, so the network is
rebuilt here and the wheel's state dict loaded into it (strictly: every key must match).
sketch_f1: do the output's HED edges follow the input sketch (F-score with a small distance
tolerance)? color_de: mean CIEDE2000 between the output and the painted colour hint.
All images are RGB uint8 (H, W, 3); masks are boolean (H, W).
"""

from __future__ import annotations

from collections import OrderedDict

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity
from skimage.morphology import thin
from torch import nn

from .sketches import pen_lines
from .weights import stlpips_state

OUTPUT_EDGE_THRESHOLD = 0.4  # middle of the training sketches' threshold range


def masked_l1(out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    return float(np.abs(out.astype(np.float32) - truth)[mask].mean() / 255.0)


def masked_psnr(out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    mse = float(((out.astype(np.float32) - truth) / 255.0)[mask].__pow__(2).mean())
    return 10.0 * np.log10(1.0 / max(mse, 1e-10))


def masked_ssim(out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    _, smap = structural_similarity(truth, out, channel_axis=2, data_range=255, full=True)
    return float(smap.mean(axis=2)[mask].mean())


def sketch_f1(out_edges: np.ndarray, sketch: np.ndarray, mask: np.ndarray, tol: float) -> float:
    """F-score of the output's pen lines (HED edges in [0, 1], thinned) against the thinned
    input sketch, both inside the mask; a pixel counts as matched within `tol` pixels."""
    size = mask.shape[0]
    got = pen_lines(out_edges, OUTPUT_EDGE_THRESHOLD, max(3, size // 64)) & mask
    want = thin(sketch > 0) & mask
    if not want.any():
        return float("nan")
    if not got.any():
        return 0.0

    def near(lines: np.ndarray) -> np.ndarray:
        dist = cv2.distanceTransform((~lines).astype(np.uint8), cv2.DIST_L2, 3)
        return dist <= tol

    precision = (got & near(want)).sum() / got.sum()
    recall = (want & near(got)).sum() / want.sum()
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


SHARPNESS_ERODE = 4


def sharpness(out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    """Mean |Laplacian| of the fill over the truth's, inside the mask eroded by
    SHARPNESS_ERODE px (the seam and the kept pixels left out): 1.0 reads as a photo, a blur
    is far below, streaks and painted lines far above. NaN where the eroded mask is empty."""
    import cv2

    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=SHARPNESS_ERODE)
    inner = inner > 0
    if not inner.any():
        return float("nan")

    def energy(rgb: np.ndarray) -> float:
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(np.abs(cv2.Laplacian(grey, cv2.CV_32F))[inner].mean())

    ref = energy(truth)
    return energy(out) / ref if ref > 0 else float("nan")


def color_de(out: np.ndarray, color: np.ndarray, painted: np.ndarray) -> float:
    """Mean CIEDE2000 between output and hint over painted pixels (NaN if none)."""
    if not painted.any():
        return float("nan")
    hint = np.clip(color, 0, 255).astype(np.float32) / 255.0
    de = deltaE_ciede2000(rgb2lab(hint[painted]), rgb2lab(out[painted].astype(np.float32) / 255))
    return float(de.mean())


class _Blur(nn.Module):
    """Anti-aliasing [1 2 1]^2 blur + stride 2 with reflect padding 2 (ST-LPIPS 'pad_more')."""

    def __init__(self, channels: int):
        super().__init__()
        a = torch.tensor([1.0, 2.0, 1.0])
        filt = (a[:, None] * a[None, :]) / 16.0
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            F.pad(x, [2, 2, 2, 2], mode="reflect"), self.filt, stride=2, groups=x.shape[1]
        )


def _slice(layers: dict[int, nn.Module]) -> nn.Sequential:
    # Indices as in the original model, so that the wheel's state-dict keys match.
    return nn.Sequential(OrderedDict((str(i), m) for i, m in layers.items()))


class STLPIPS(nn.Module):
    """Shift-tolerant LPIPS, AlexNet variant; forward gives the per-pixel distance map."""

    CHANNELS = (64, 192, 384, 256, 256)

    def __init__(self):
        super().__init__()
        self.scaling_layer = nn.Module()
        self.scaling_layer.register_buffer("shift", torch.zeros(1, 3, 1, 1))
        self.scaling_layer.register_buffer("scale", torch.ones(1, 3, 1, 1))
        relu = nn.ReLU
        self.net = nn.Module()
        self.net.slice1 = _slice({0: nn.Conv2d(3, 64, 11, 1, 2), 1: _Blur(64), 2: relu()})
        self.net.slice2 = _slice(
            {3: nn.MaxPool2d(3, 1), 4: _Blur(64), 5: nn.Conv2d(64, 192, 5, padding=2), 6: relu()}
        )
        self.net.slice3 = _slice(
            {7: nn.MaxPool2d(3, 1), 8: _Blur(192), 9: nn.Conv2d(192, 384, 3, padding=1), 10: relu()}
        )
        self.net.slice4 = _slice({11: nn.Conv2d(384, 256, 3, padding=1), 12: relu()})
        self.net.slice5 = _slice({13: nn.Conv2d(256, 256, 3, padding=1), 14: relu()})
        for i, c in enumerate(self.CHANNELS):
            self.add_module(f"lin{i}", nn.Module())
            getattr(self, f"lin{i}").model = _slice({1: nn.Conv2d(c, 1, 1, bias=False)})

    @classmethod
    def pretrained(cls) -> STLPIPS:
        model = cls()
        model.load_state_dict(stlpips_state("alex"), strict=True)
        return model.eval().requires_grad_(False)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.scaling_layer.shift) / self.scaling_layer.scale
        feats = []
        for name in ("slice1", "slice2", "slice3", "slice4", "slice5"):
            x = getattr(self.net, name)(x)
            feats.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
        return feats

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """RGB in [-1, 1] (N, 3, H, W) twice -> distance map (N, 1, H, W)."""
        size = a.shape[-2:]
        total = torch.zeros(a.shape[0], 1, *size)
        for i, (fa, fb) in enumerate(zip(self._features(a), self._features(b), strict=True)):
            d = getattr(self, f"lin{i}").model((fa - fb) ** 2)
            total = total + F.interpolate(d, size=size, mode="bilinear", align_corners=False)
        return total

    @torch.no_grad()
    def masked(self, out: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
        def t(img: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1.0

        return float(self(t(out), t(truth))[0, 0].numpy()[mask].mean())
