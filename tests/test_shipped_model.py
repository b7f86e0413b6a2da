"""The default model in models/: it loads as the engine loads it (hash and shapes checked
against its card), its card's evaluation holds the claims the README makes, and it edits
the demo portrait as asked (the lips take the dabbed colour, the rest is untouched)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sketchfill.demo import demo_inputs
from sketchfill.edit import apply_patch, run_edit
from sketchfill.modelcard import ModelCard
from sketchfill.runtime import DEFAULT_MODEL, load_generator

MODELS = Path(__file__).resolve().parents[1] / "models"
METRICS_HIGHER_BETTER = {"psnr", "ssim", "sketch_f1"}


def test_default_and_int8_models_load_with_their_cards():
    for name in (DEFAULT_MODEL, f"{DEFAULT_MODEL}-int8"):
        model = load_generator(MODELS / name)
        assert model.card.name == name and model.resolution == 512


def test_card_shows_the_model_beating_both_baselines_on_held_out_faces():
    metrics = ModelCard.load(MODELS / DEFAULT_MODEL).metrics
    assert metrics["data"] == "faces_eval" and metrics["images"] >= 40
    ours = metrics["methods"]["sketchfill"]
    for baseline in ("telea", "ns"):
        theirs = metrics["methods"][baseline]
        for name, value in ours.items():
            if name in METRICS_HIGHER_BETTER:
                assert value > theirs[name], (name, baseline)
            else:
                assert value < theirs[name], (name, baseline)


def test_demo_edit_follows_the_colour_and_keeps_everything_else():
    inputs = demo_inputs()
    result = run_edit(load_generator(MODELS / DEFAULT_MODEL), inputs, seed=7, feather=0.0)
    after = apply_patch(inputs.image, result)
    mask = inputs.regenerate
    assert np.array_equal(after[~mask], inputs.image[~mask])
    assert np.abs(after[mask].astype(int) - inputs.image[mask]).mean() > 5  # it did edit
    # Where the lips are dabbed (away from the dab's edge), the output is close to the dab.
    painted = inputs.color[..., 3] == 255
    inner = painted & np.roll(painted, 3, 0) & np.roll(painted, -3, 0)
    inner &= np.roll(painted, 4, 1) & np.roll(painted, -4, 1)
    assert inner.sum() > 50
    distance = np.abs(after[inner][:, :3].astype(int) - inputs.color[inner][:, :3]).mean()
    assert distance < 30, distance
