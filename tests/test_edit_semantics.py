"""Edit semantics of docs/ARCHITECTURE.md, in process, with the echo generator (output =
erased image + colour - sketch, so the expected pixels are known exactly)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import face_like
from sketchfill.pipeline import preprocess
from sketchfill.pipeline.modelcard import INPUT_CHANNELS
from sketchfill.pipeline.pasteback import feather_weights
from sketchfill.pipeline.preprocess import EditInputs
from sketchfill.pipeline.result import EditError, apply_patch
from sketchfill.pipeline.runtime import load_generator
from sketchfill.tools.edit.infer import run_edit
from sketchfill.wire.protocol import Box, context_box


@pytest.fixture(scope="module")
def echo(echo_model):
    return load_generator(echo_model, warmup=0)


def disc_mask(h: int, w: int, cx: int, cy: int, r: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return (((x - cx) ** 2 + (y - cy) ** 2) <= r * r).astype(np.uint8) * 255


def painted(h: int, w: int, rgb: tuple[int, int, int]) -> np.ndarray:
    color = np.zeros((h, w, 4), np.uint8)
    color[..., :3] = rgb
    color[..., 3] = 255
    return color


def test_outside_mask_is_bit_identical_and_offset_is_mask_bbox(echo):
    image = face_like(300, 420)
    mask = disc_mask(300, 420, 250, 120, 30)
    result = run_edit(echo, EditInputs(image, mask, color=painted(300, 420, (200, 30, 40))), 1)
    rows, cols = np.nonzero(mask >= 128)
    assert (result.x, result.y) == (cols.min(), rows.min())
    assert result.patch.shape == (np.ptp(rows) + 1, np.ptp(cols) + 1, 4)
    out = apply_patch(image, result)
    outside = mask < 128
    assert np.array_equal(out[outside], image[outside])
    inside = out[mask >= 128]
    # Away from the mask edge the echo returns the painted colour exactly (up to resampling).
    core = disc_mask(300, 420, 250, 120, 22) >= 128
    assert np.abs(out[core][:, :3].astype(int) - [200, 30, 40]).max() <= 3
    assert (inside[:, 3] == 255).all()


def test_unpainted_mask_comes_back_grey_and_strokes_darken(echo):
    image = face_like(128, 128)
    mask = np.zeros((128, 128), np.uint8)
    mask[30:90, 30:90] = 255
    sketch = np.zeros((128, 128), np.uint8)
    sketch[58:62, 20:100] = 255  # a horizontal stroke, partly outside the mask
    out = apply_patch(image, run_edit(echo, EditInputs(image, mask, sketch=sketch), 3))
    grey = out[40:50, 40:80, :3].astype(int)
    assert np.abs(grey - 128).max() <= 2
    assert out[59:61, 40:80, :3].max() < 20  # the stroke inside the mask is drawn
    assert np.array_equal(out[59:61, 20:29], image[59:61, 20:29])  # outside: untouched


def test_feather_blends_only_inside_the_mask(echo):
    image = face_like(200, 200)
    mask = disc_mask(200, 200, 100, 100, 40)
    color = painted(200, 200, (0, 255, 0))
    hard = apply_patch(image, run_edit(echo, EditInputs(image, mask, color=color), 5))
    soft = apply_patch(image, run_edit(echo, EditInputs(image, mask, color=color), 5, feather=8))
    outside = mask < 128
    assert np.array_equal(soft[outside], image[outside])
    edge = (100, 61)  # on the mask's rim: mostly the original photo
    centre = (100, 100)
    assert np.array_equal(soft[centre], hard[centre])
    assert abs(int(soft[edge][1]) - int(image[edge][1])) < abs(
        int(hard[edge][1]) - int(image[edge][1])
    )


def test_feather_weights_ramp_from_the_edge():
    mask = np.zeros((21, 21), bool)
    mask[1:20, 1:20] = True
    w = feather_weights(mask, 4)
    assert w[0, 0] == 0 and w[1, 10] == pytest.approx(0.25) and w[2, 10] == pytest.approx(0.5)
    assert w[10, 10] == 1.0
    assert np.array_equal(feather_weights(mask, 0), mask.astype(np.float32))


def test_mask_at_canvas_border_gives_non_square_crop_and_right_pixels(echo):
    image = face_like(80, 500)  # shorter than the model side: the crop is padded
    mask = np.zeros((80, 500), np.uint8)
    mask[0:20, 480:500] = 255  # in the corner
    color = painted(80, 500, (10, 20, 250))
    result = run_edit(echo, EditInputs(image, mask, color=color), 9)
    assert (result.x, result.y) == (480, 0)
    out = apply_patch(image, result)
    assert np.array_equal(out[mask < 128], image[mask < 128])
    assert np.abs(out[5:15, 485:495, :3].astype(int) - [10, 20, 250]).max() <= 3


def test_empty_mask_is_refused(echo):
    image = face_like(64, 64)
    with pytest.raises(EditError) as err:
        run_edit(echo, EditInputs(image, np.full((64, 64), 127, np.uint8)), 0)
    assert err.value.code == "empty_mask"


def test_layers_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="sketch is 10x10"):
        EditInputs(face_like(20, 20), np.zeros((20, 20), np.uint8), sketch=np.zeros((10, 10)))


def test_model_input_channels_follow_the_contract():
    image = face_like(64, 64)
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255
    sketch = np.zeros((64, 64), np.uint8)
    sketch[:, 30:34] = 255
    color = painted(64, 64, (255, 0, 0))
    color[:32, :, 3] = 0  # only the lower half painted
    inputs = EditInputs(image, mask, sketch, color)
    crop = preprocess.plan_crop(Box(16, 16, 32, 32), 64, 64, 64, 0.5)
    t = preprocess.model_input(inputs, inputs.regenerate, crop, 64, seed=4)
    assert t.shape == (1, len(INPUT_CHANNELS), 64, 64) and t.dtype == np.float32
    m = t[0, 3]
    assert set(np.unique(m)) == {0.0, 1.0} and m[16:48, 16:48].all() and m.sum() == 32 * 32
    assert (t[0, :3][:, m == 1] == 0).all()  # erased where masked
    assert np.allclose(t[0, :3][:, m == 0], image[..., :3][m == 0].T / 127.5 - 1, atol=1e-6)
    assert (t[0, 4][m == 0] == 0).all() and t[0, 4][20:40, 31].min() == 1.0  # sketch in mask
    assert np.allclose(t[0, 5:8][:, 40, 20], [1, -1, -1]) and (t[0, 5:8][:, 20, 20] == 0).all()
    assert (t[0, 8][m == 0] == 0).all() and t[0, 8][m == 1].std() > 0.5  # noise in mask
    again = preprocess.model_input(inputs, inputs.regenerate, crop, 64, seed=4)
    assert np.array_equal(t, again)


def test_thin_strokes_survive_downscaling():
    image = face_like(1024, 1024)
    mask = np.full((1024, 1024), 255, np.uint8)
    sketch = np.zeros((1024, 1024), np.uint8)
    sketch[500, 100:900] = 255  # one pixel wide at 4x the model side
    inputs = EditInputs(image, mask, sketch)
    crop = preprocess.plan_crop(Box(0, 0, 1024, 1024), 1024, 1024, 256, 0.5)
    t = preprocess.model_input(inputs, inputs.regenerate, crop, 256, seed=0)
    assert t[0, 4, 125, 40:210].min() > 0.3


@pytest.mark.parametrize("w,h", [(4000, 3000), (300, 300), (256, 90)])
def test_context_box_contains_mask_and_fits_canvas(w, h):
    for bbox in (Box(0, 0, 10, 10), Box(w - 50, h - 40, 50, 40), Box(w // 3, h // 4, 60, 30)):
        box = context_box(bbox, w, h, 0.5, 256)
        assert box.x >= 0 and box.y >= 0 and box.x1 <= w and box.y1 <= h
        assert box.x <= bbox.x and box.y <= bbox.y and bbox.x1 <= box.x1 and bbox.y1 <= box.y1
        assert box.width == min(w, max(256, 120)) or box.width == min(w, max(256, 2 * 60))
