"""Differentiable augmentation of the discriminator's inputs (DiffAugment, Zhao et al. 2020).

On a few hundred photos a discriminator memorises the training set within a few thousand
steps; its feedback to the generator then stops meaning "looks like a photo". DiffAugment
shows the discriminator only randomly augmented images, real and generated alike, through
differentiable operations, so that the generator's gradient passes through the same
augmentation. Colour changes only the RGB; translation and cutout move or hide the
conditioning planes (mask, sketch, colour) together with the image, so that the
discriminator still sees which pixels were regenerated. Each sample draws its own
parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

POLICIES = ("color", "translation", "cutout")
TRANSLATION = 0.125  # largest shift, as a fraction of the side
CUTOUT = 0.5  # side of the hidden square, as a fraction of the image side


def parse_policy(text: str) -> tuple[str, ...]:
    """'color,translation,cutout' -> the policy tuple; '' or 'none' -> no augmentation."""
    names = tuple(s.strip() for s in text.split(",") if s.strip() and s.strip() != "none")
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown[0]!r}; known: {', '.join(POLICIES)}")
    return names


def _color(rgb: torch.Tensor) -> torch.Tensor:
    n = rgb.shape[0]

    def rand() -> torch.Tensor:
        return torch.rand(n, 1, 1, 1, device=rgb.device, dtype=rgb.dtype)

    # Brightness, saturation, contrast with DiffAugment's ranges, for images in [-1, 1].
    rgb = rgb + (rand() - 0.5)
    mean = rgb.mean(1, keepdim=True)
    rgb = (rgb - mean) * (rand() * 2) + mean
    mean = rgb.mean((1, 2, 3), keepdim=True)
    return (rgb - mean) * (rand() + 0.5) + mean


def _translate(x: torch.Tensor) -> torch.Tensor:
    """Shift every sample by up to TRANSLATION of its side, zeros shifted in."""
    n, _, h, w = x.shape
    sy, sx = int(h * TRANSLATION + 0.5), int(w * TRANSLATION + 0.5)
    dy = torch.randint(-sy, sy + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (n, 1, 1), device=x.device)
    yy, xx = torch.meshgrid(
        torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij"
    )
    gy = (yy[None] + dy).clamp(-1, h)  # -1 and h index the zero padding below
    gx = (xx[None] + dx).clamp(-1, w)
    padded = F.pad(x, (1, 1, 1, 1))
    idx = (gy + 1) * (w + 2) + (gx + 1)  # (n, h, w) into the flattened padded plane
    flat = padded.flatten(2)
    return flat.gather(2, idx.flatten(1)[:, None].expand(-1, x.shape[1], -1)).view_as(x)


def _cutout(x: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * CUTOUT + 0.5), int(w * CUTOUT + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    yy = torch.arange(h, device=x.device)[None, :, None]
    xx = torch.arange(w, device=x.device)[None, None, :]
    hide = ((yy - cy).abs() <= ch // 2) & ((xx - cx).abs() <= cw // 2)
    return x * (~hide)[:, None].to(x.dtype)


def diff_augment(
    image: torch.Tensor, cond: torch.Tensor, policy: tuple[str, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Augmented (image, cond), differentiable in both."""
    if not policy:
        return image, cond
    if "color" in policy:
        image = _color(image)
    k = image.shape[1]
    both = torch.cat([image, cond.to(image.dtype)], 1)
    if "translation" in policy:
        both = _translate(both)
    if "cutout" in policy:
        both = _cutout(both)
    return both[:, :k], both[:, k:]
