"""The training data pipeline: HED, guides, masks, sketches, colour maps, samples."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from PIL import Image
from sketchfill.tools.edit.data import EditDataset, StepSampler, encode
from sketchfill.training import masks
from sketchfill.training.colors import make_color
from sketchfill.training.guides import load_guides, prepare
from sketchfill.training.hed import edge_map, load_hed
from sketchfill.training.images import list_images, load_square
from sketchfill.training.sketches import make_sketch, widen
from train_helpers import SIZE, cache_dir, faces_dir, guide_files, workdir

# CelebAMask-HQ class ids of the parts the template places; "_l" is image-left, which is
# the person's right (CelebAMask-HQ's r_*).
LABEL_PARTS = {"eye_l": 5, "eye_r": 4, "nose": 2, "mouth": (11, 12), "ear_l": 9, "ear_r": 8}


def test_hed_finds_the_edges_of_a_square():
    img = np.zeros((96, 96, 3), np.uint8)
    img[28:68, 28:68] = 220
    edges = edge_map(load_hed(), img)
    assert edges.shape == (96, 96) and edges.dtype == np.float32
    assert edges.min() >= 0.0 and edges.max() <= 1.0
    assert edges[28, 30:66].mean() > 0.5  # top side
    assert edges[40:56, 40:56].max() < 0.2  # flat inside
    assert edges[4:14, 4:14].max() < 0.2  # flat outside


def test_part_template_matches_the_label_maps():
    labels = faces_dir() / "labels"
    checked = 0
    for name in ("0186", "0187", "0188", "0189"):
        lab = np.asarray(Image.open(labels / f"{name}.png"))
        size = lab.shape[0]
        for part, ids in LABEL_PARTS.items():
            ys, xs = np.nonzero(np.isin(lab, ids))
            if len(xs) < 50:  # ear hidden by hair
                continue
            cx, cy, rx, ry = masks.PART_TEMPLATE[part][0]
            dist = np.hypot((xs.mean() / size - cx) / rx, (ys.mean() / size - cy) / ry)
            # Inside the template ellipse; ears move more with head pose and part masks are
            # drawn 1-2.3x the template, so within 1.5x for them.
            assert dist < (1.5 if part.startswith("ear") else 1.0), (name, part, dist)
            checked += 1
    assert checked >= 20


@pytest.mark.parametrize("size", [64, 128, 256])
def test_masks_shapes_ranges_and_determinism(size):
    areas = []
    for seed in range(40):
        m = masks.random_mask(np.random.default_rng(seed), size)
        assert m.shape == (size, size) and m.dtype == np.uint8
        assert set(np.unique(m)) <= {0, 1}
        assert masks.MIN_AREA * 0.5 <= m.mean() <= masks.MAX_AREA
        areas.append(m.mean())
    again = masks.random_mask(np.random.default_rng(7), size)
    assert np.array_equal(again, masks.random_mask(np.random.default_rng(7), size))
    assert not np.array_equal(again, masks.random_mask(np.random.default_rng(8), size))
    assert max(areas) > 0.08 and min(areas) < 0.03  # small to large


@pytest.mark.parametrize("part", masks.PARTS)
def test_every_part_mask_lands_on_its_part(part):
    m = masks.part_mask(np.random.default_rng(0), 128, part)
    assert m.any()
    ys, xs = np.nonzero(m)
    if part == "hair":
        assert ys.mean() / 128 < 0.6
    else:
        cx, cy = np.mean([e[:2] for e in masks.PART_TEMPLATE[part]], axis=0)
        assert abs(xs.mean() / 128 - cx) < 0.1 and abs(ys.mean() / 128 - cy) < 0.1


def test_guides_are_cached_by_content():
    images, files = guide_files()
    assert len(files) == len(images) and all(f.is_file() for f in files)
    g = load_guides(files[0])
    assert g.ridges.shape == g.coarse.shape == g.fine.shape == (SIZE, SIZE)
    assert g.ridges.dtype == np.uint8 and g.ridges.max() > 100
    assert g.coarse.max() >= 2 and g.fine.max() >= 10
    stamp = os.stat(files[0]).st_mtime_ns
    copy = workdir() / "renamed"
    copy.mkdir(exist_ok=True)
    (copy / "other-name.png").write_bytes(images[0].read_bytes())
    assert prepare([copy / "other-name.png"], cache_dir(), SIZE, quiet=True) == [files[0]]
    assert os.stat(files[0]).st_mtime_ns == stamp


def _guides(i: int = 0):
    images, files = guide_files()
    rgb = cv2.imread(str(images[i]))[..., ::-1].copy()
    return rgb, load_guides(files[i])


def test_sketches_are_thin_lines_inside_the_mask_and_reproducible():
    _, g = _guides()
    ridges = widen(g.ridges).astype(np.float32) / 255
    drawn = 0
    for seed in range(20):
        mask = masks.random_mask(np.random.default_rng(seed), SIZE)
        sketch = make_sketch(ridges, mask, np.random.default_rng(100 + seed))
        assert sketch.dtype == np.float32 and set(np.unique(sketch)) <= {0.0, 1.0}
        assert not (sketch * (1 - mask)).any(), "sketch outside the mask"
        again = make_sketch(ridges, mask, np.random.default_rng(100 + seed))
        assert np.array_equal(sketch, again)
        if sketch.any():
            drawn += 1
            # Pen lines, not filled areas: most of the mask stays blank.
            assert sketch.sum() < 0.5 * mask.sum()
    assert drawn >= 10
    full = np.ones((SIZE, SIZE), np.uint8)
    assert make_sketch(ridges, full, np.random.default_rng(0), allow_empty=False).any()


def test_color_maps_hold_region_colours_inside_the_mask():
    rgb, g = _guides()
    painted_any = 0
    for seed in range(20):
        mask = masks.random_mask(np.random.default_rng(seed), SIZE)
        color, painted = make_color(rgb, g.coarse, g.fine, mask, np.random.default_rng(seed))
        assert color.shape == (SIZE, SIZE, 3) and painted.shape == (SIZE, SIZE)
        assert not (painted * (1 - mask)).any(), "paint outside the mask"
        assert not color[painted == 0].any()
        again = make_color(rgb, g.coarse, g.fine, mask, np.random.default_rng(seed))
        assert np.array_equal(color, again[0]) and np.array_equal(painted, again[1])
        if painted.any():
            painted_any += 1
            on = painted > 0
            assert color[on].min() >= 0 and color[on].max() <= 255
            # Region medians: close to the picture there, much closer than a flat grey.
            err = np.abs(color[on] - rgb[on]).mean()
            assert err < 0.6 * np.abs(128.0 - rgb[on]).mean() + 5
    assert painted_any >= 10


def test_samples_follow_the_generator_contract():
    images, files = guide_files()
    ds = EditDataset(images, files, 64, SIZE, seed=3)
    for sid in range(12):
        x = encode(ds.sample(sid))
        assert x.shape == (9, 64, 64) and x.dtype == np.float32
        image, mask, sketch, color, noise = x[:3], x[3], x[4], x[5:8], x[8]
        assert set(np.unique(mask)) <= {0.0, 1.0} and mask.any()
        assert np.abs(image).max() <= 1.0 and not image[:, mask > 0].any()
        assert sketch.min() >= 0 and sketch.max() <= 1 and not sketch[mask == 0].any()
        assert np.abs(color).max() <= 1.0 + 1e-6 and not color[:, mask == 0].any()
        assert not noise[mask == 0].any()
    big = np.concatenate([encode(ds.sample(s))[8][encode(ds.sample(s))[3] > 0] for s in range(8)])
    assert abs(big.mean()) < 0.1 and 0.9 < big.std() < 1.1
    other = EditDataset(images, files, 64, SIZE, seed=3)
    assert np.array_equal(ds[5]["input"].numpy(), other[5]["input"].numpy())
    assert not np.array_equal(ds[5]["input"].numpy(), ds[6]["input"].numpy())
    # One epoch shows every image once.
    assert sorted(ds.image_index(i) for i in range(len(images))) == list(range(len(images)))


def test_step_sampler_splits_ranks_and_resumes_exactly():
    full = list(StepSampler(0, 6, 3, rank=0, world=2))
    other = list(StepSampler(0, 6, 3, rank=1, world=2))
    assert not set(full) & set(other) and len(full) == len(other) == 18
    resumed = list(StepSampler(0, 2, 3, 0, 2)) + list(StepSampler(2, 6, 3, 0, 2))
    assert resumed == full


def test_any_image_folder_works(tmp_path):
    # A studio's folder: other sizes and aspect ratios are centre-cropped and resized.
    wide = np.random.default_rng(0).integers(0, 255, (90, 160, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "wide.png"), wide)
    (tmp_path / "notes.txt").write_text("not an image")
    images = list_images(tmp_path)
    assert [p.name for p in images] == ["wide.png"]
    square = load_square(images[0], 64)
    assert square.shape == (64, 64, 3)
    # The centre crop: the middle 90x90 of the 160-wide picture.
    expected = cv2.resize(wide[:, 35:125], (64, 64), interpolation=cv2.INTER_AREA)[..., ::-1]
    assert np.array_equal(square, expected)
