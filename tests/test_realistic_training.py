"""The realistic-edit recipe's parts: DiffAugment, rectangle masks, the sharpness figure, the
mask-only and upscaled evaluation protocols, the card's licence and NOTICE."""

from __future__ import annotations

import json
from collections import Counter

import cv2
import numpy as np
import pytest
import torch
from sketchfill.tools.edit.model import Discriminator
from sketchfill.training.diffaugment import diff_augment, parse_policy
from sketchfill.training.losses import LossWeights, discriminator_losses
from sketchfill.training.masks import BOX_SIDE, box_mask
from sketchfill.training.metrics import sharpness
from sketchfill.training.notice import (
    COMMERCIAL,
    NON_COMMERCIAL,
    NOTICE_FILE,
    card_licence,
    licence_counts,
    notice_text,
    write_notice,
)
from train_helpers import run_eval, tiny_model

ALL = ("color", "translation", "cutout")


def test_policy_names_are_checked():
    assert parse_policy("none") == () == parse_policy("")
    assert parse_policy("color, cutout") == ("color", "cutout")
    with pytest.raises(ValueError, match="zoom"):
        parse_policy("color,zoom")


def test_translation_and_cutout_move_image_and_conditions_together():
    torch.manual_seed(0)
    ramp = torch.arange(32 * 32.0).view(1, 1, 32, 32).repeat(6, 1, 1, 1) + 1
    image, cond = diff_augment(ramp.repeat(1, 3, 1, 1), ramp.repeat(1, 5, 1, 1), ALL[1:])
    assert torch.equal(image[:, :1], cond[:, :1])  # same shift, same hidden square
    assert not torch.equal(image[:, :1], ramp)
    hidden = (cond[:, 0] == 0).float().mean((1, 2))
    assert (hidden >= 0.2).all()  # a cutout of half the side hides a quarter or more


def test_colour_changes_only_the_image_and_gradients_flow():
    torch.manual_seed(0)
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    cond = torch.rand(4, 5, 16, 16)
    image, same = diff_augment(x, cond, ("color",))
    assert torch.equal(same, cond) and not torch.allclose(image, x)
    image.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert diff_augment(x, cond, ())[0] is x


def test_discriminator_losses_with_augmentation_are_finite():
    torch.manual_seed(0)
    disc = Discriminator(8)
    real = torch.rand(2, 3, 64, 64) * 2 - 1
    mask = torch.zeros(2, 1, 64, 64)
    mask[..., 16:48, 16:48] = 1
    cond = torch.cat([mask, torch.zeros(2, 4, 64, 64)], 1)
    terms = discriminator_losses(disc, real, real * (1 - mask), cond, mask, LossWeights(), ALL)
    assert all(torch.isfinite(v) for v in terms.values())
    terms["total"].backward()


def test_box_masks_are_rectangles_on_the_face():
    for seed in range(20):
        mask = box_mask(np.random.default_rng(seed), 256)
        ys, xs = np.nonzero(mask)
        h, w = np.ptp(ys) + 1, np.ptp(xs) + 1
        assert mask.sum() == h * w
        assert BOX_SIDE[0] * 256 - 1 <= min(h, w) and max(h, w) <= BOX_SIDE[1] * 256


def test_sharpness_is_one_for_a_photo_low_for_blur_high_for_lines():
    rng = np.random.default_rng(0)
    truth = cv2.GaussianBlur(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8), (3, 3), 0)
    mask = np.zeros((96, 96), bool)
    mask[24:72, 24:72] = True
    assert sharpness(truth, truth, mask) == pytest.approx(1.0)
    blurred = cv2.GaussianBlur(truth, (0, 0), 4)
    assert sharpness(blurred, truth, mask) < 0.3
    lined = truth.copy()
    lined[30:66:4] = 0  # pen lines painted into the fill
    assert sharpness(lined, truth, mask) > 1.5
    tiny = np.zeros((96, 96), bool)
    tiny[40:45, 40:45] = True  # nothing left after the erosion
    assert np.isnan(sharpness(truth, truth, tiny))


def _eval(out, *extra: str) -> dict:
    assert run_eval(out, "--model", str(tiny_model()), *extra) == 0
    return json.loads(out.read_text())


def test_centre_protocol_has_a_square_hole_and_no_guides(tmp_path):
    result = _eval(tmp_path / "c.json", "--protocol", "centre")
    assert result["protocol"] == "centre"
    for row in result["per_image"]:
        assert row["mask_area"] == pytest.approx(0.25, abs=0.01)
        for method in ("sketchfill", "telea", "ns"):
            assert row[method]["sketch_f1"] is None and row[method]["color_de"] is None
            assert row[method]["sharpness"] is not None


def test_upscaled_run_is_measured_at_the_plain_size(tmp_path):
    plain = _eval(tmp_path / "a.json", "--protocol", "centre")
    big = _eval(tmp_path / "b.json", "--protocol", "centre", "--upscale", "3")
    assert big["upscale"] == 3 and big["size"] == plain["size"]
    # The baselines never see the upscaled photo: identical; the model's figures exist.
    assert big["methods"]["telea"] == plain["methods"]["telea"]
    assert big["methods"]["sketchfill"]["psnr"] is not None


def test_card_licence_follows_the_data_note():
    assert card_licence("face photos ... non-commercial research use only") == NON_COMMERCIAL
    assert card_licence("public-licence face photos (CC BY 4.0, CC0)") == COMMERCIAL


def test_notice_lists_the_licences_of_the_training_photos(tmp_path):
    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text(
        "file\tsource\tlicence\n"
        "a.png\tx/a.jpg\tCC BY 4.0: Someone (2017). A set.\n"
        "b.png\tx/b.jpg\tCC BY 4.0: Someone (2017). A set.\n"
        "c.png\tx/c.jpg\tCC0 1.0\n"
        "d.png\tx/d.jpg\tpublic domain\n",
        encoding="utf-8",
    )
    data = tmp_path / "train"
    data.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):  # bundled as JPEG; d held out
        (data / name).write_bytes(b"")
    counts = write_notice(tmp_path, "m", manifest, data)
    assert counts == Counter({"CC BY 4.0: Someone (2017). A set.": 2, "CC0 1.0": 1})
    text = (tmp_path / NOTICE_FILE).read_text(encoding="utf-8")
    assert "| 2 | CC BY 4.0: Someone (2017). A set. |" in text and "public domain" not in text
    assert licence_counts(manifest)["public domain"] == 1
    assert notice_text("m", counts).startswith("# m:")
    with pytest.raises(ValueError, match="none of the training photos"):
        write_notice(tmp_path, "m", manifest, tmp_path / "train" / "..")
