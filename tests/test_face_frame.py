"""Face-framed edits: the engine gives the generator the face framed as the training photos
are framed, so the model's input does not depend on the size of the user's photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from sketchfill.pipeline import preprocess
from sketchfill.pipeline.faceframe import FaceFrame, ffhq_frame, frame_for_mask, frames
from sketchfill.pipeline.facemesh import face_finder
from sketchfill.pipeline.preprocess import EditInputs
from sketchfill.tools.edit.infer import plan_edit_crop
from sketchfill.wire.protocol import Box

DEMO = Path(__file__).resolve().parents[1] / "engine" / "assets" / "demo"
RES = 512


def demo(scale: int = 1) -> EditInputs:
    def load(name: str, mode: str, resample) -> np.ndarray:
        img = Image.open(DEMO / f"{name}.png").convert(mode)
        if scale != 1:
            img = img.resize((img.width * scale, img.height * scale), resample)
        return np.asarray(img)

    return EditInputs(
        load("astronaut", "RGBA", Image.Resampling.BICUBIC),
        load("mask", "L", Image.Resampling.NEAREST),
        load("sketch", "RGBA", Image.Resampling.NEAREST)[..., 3],
        load("color", "RGBA", Image.Resampling.NEAREST),
    )


def model_input(inputs: EditInputs, frame_faces: bool = True) -> np.ndarray:
    bbox = preprocess.mask_bbox(inputs.regenerate)
    crop = plan_edit_crop(inputs.image, bbox, RES, preprocess.DEFAULT_MARGIN, frame_faces)
    return preprocess.model_input(inputs, inputs.regenerate, crop, RES, seed=1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    return 10 * np.log10(4.0 / max(mse, 1e-12))  # values in [-1, 1]


def test_ffhq_frame_of_level_eyes():
    frame = ffhq_frame((100, 100), (160, 100), (130, 160))
    # Eye distance 60 -> half side 120; eye-to-mouth 60 -> 108: the eyes decide.
    assert frame.side == 240
    assert (frame.cx, frame.cy) == (130, 106)
    assert frame.box() == Box(10, -14, 240, 240)


def test_demo_face_is_framed_around_its_mask():
    inputs = demo()
    bbox = preprocess.mask_bbox(inputs.regenerate)
    frame = frame_for_mask(face_finder(), inputs.image, bbox)
    assert frame is not None
    # The astronaut's face is ~90 px wide: its frame about 1.8 times that.
    assert 140 < frame.side < 220
    assert frame.contains(bbox.x + bbox.width / 2, bbox.y + bbox.height / 2)


def test_no_face_falls_back_to_the_context_crop():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (400, 400, 4), dtype=np.uint8)
    assert frames(face_finder(), noise[..., :3]) == []
    bbox = Box(150, 150, 60, 60)
    crop = plan_edit_crop(noise, bbox, RES, 0.5, True)
    assert crop == preprocess.plan_crop(bbox, 400, 400, RES, 0.5)


def test_model_input_does_not_depend_on_the_photo_size():
    small = model_input(demo(1))
    for scale in (2, 4):
        big = model_input(demo(scale))
        assert big.shape == small.shape
        mask_a, mask_b = small[0, 3] > 0, big[0, 3] > 0
        # A masked canvas pixel marks its model pixel: upscaled masks come out ~1 px wider.
        assert (mask_a & mask_b).sum() / (mask_a | mask_b).sum() > 0.93
        keep = ~(mask_a | mask_b)
        assert psnr(small[0, :3][:, keep], big[0, :3][:, keep]) > 30
    # The old rule (at least the model's resolution in canvas pixels) zooms with the size.
    old_small, old_big = model_input(demo(1), False), model_input(demo(4), False)
    assert abs((old_small[0, 3] > 0).mean() - (old_big[0, 3] > 0).mean()) > 0.05


def test_face_crop_keeps_the_frame_and_pads_outside_the_canvas():
    face = FaceFrame(50, 60, 200).box()  # reaches 50 px past the left, 40 past the top
    crop = preprocess.plan_face_crop(Box(40, 50, 20, 20), face, 300, 300)
    assert crop.side == 200
    assert (crop.pad_left, crop.pad_top) == (50, 40)
    assert crop.box == Box(0, 0, 150, 160)
    image = np.arange(300 * 300, dtype=np.uint32).reshape(300, 300)
    square = preprocess.square_crop(image, crop, "edge")
    assert square.shape == (200, 200)
    assert square[40, 50] == image[0, 0]


def test_a_mask_larger_than_the_face_grows_the_square():
    face = Box(100, 100, 100, 100)
    crop = preprocess.plan_face_crop(Box(60, 60, 180, 180), face, 1000, 1000)
    assert crop.side == 180 + 2 * 18
    assert crop.box == Box(42, 42, 216, 216)
