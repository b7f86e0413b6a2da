"""The shipped models in models/: they load as the engine loads them (hash and shapes
checked against their cards), their cards' evaluations hold the claims the README makes,
the edit model edits the demo portrait as asked (the lips take the dabbed colour, the rest
is untouched), the tone model repairs the README's faulty portrait, the composite model
blends the README's relit face back into the portrait and the restore model takes the
README's hand off the portrait's face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sketchfill.commands.demo import demo_inputs, face_layer, hand_over_face, tone_fault
from sketchfill.pipeline.modelcard import ModelCard
from sketchfill.pipeline.result import apply_patch
from sketchfill.pipeline.runtime import DEFAULT_MODEL, load_generator, load_model
from sketchfill.tools.composite.infer import DEFAULT_COMPOSITE_MODEL, run_composite
from sketchfill.tools.edit.infer import run_edit
from sketchfill.tools.restore.infer import DEFAULT_RESTORE_MODEL, run_restore
from sketchfill.tools.tone.infer import DEFAULT_TONE_MODEL, run_tone

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


def test_tone_model_loads_and_its_card_beats_leaving_the_photo_alone():
    """The shipped tone network: its held-out evaluation (synthetic tone faults) shows it
    nearer the untouched photos than the faulty input on every measure."""
    model = load_model(MODELS / DEFAULT_TONE_MODEL, task="tone")
    metrics = model.card.metrics
    assert metrics["data"] == "faces_eval" and metrics["images"] >= 40
    ours, faulty = metrics["methods"]["sketchfill"], metrics["methods"]["input"]
    assert ours["ntd"] < faulty["ntd"] and ours["delta_e"] < faulty["delta_e"]
    assert ours["psnr"] > faulty["psnr"]


def test_tone_demo_repairs_the_faulty_portrait():
    """The README's picture: auto tone brings the dimmed, cast portrait back towards the
    untouched one, and keeps its alpha."""
    original = demo_inputs().image
    faulty = original.copy()
    faulty[..., :3] = tone_fault(original[..., :3])
    toned = run_tone(load_model(MODELS / DEFAULT_TONE_MODEL, task="tone"), faulty).patch

    def error(a: np.ndarray) -> float:
        return float(np.abs(a[..., :3].astype(int) - original[..., :3]).mean())

    assert error(toned) < 0.6 * error(faulty), (error(toned), error(faulty))
    assert np.array_equal(toned[..., 3], original[..., 3])


def test_composite_card_beats_all_three_baselines_on_held_out_faces():
    """The shipped composite network: on the held-out faces' synthetic composites it beats
    alpha paste, Poisson blending and Reinhard colour transfer on every measure."""
    model = load_model(MODELS / DEFAULT_COMPOSITE_MODEL, task="composite")
    metrics = model.card.metrics
    assert metrics["data"] == "faces_eval" and metrics["images"] >= 40
    ours = metrics["methods"]["sketchfill"]
    for baseline in ("alpha paste", "poisson", "reinhard"):
        theirs = metrics["methods"][baseline]
        assert ours["psnr"] > theirs["psnr"], baseline
        assert ours["st_lpips"] < theirs["st_lpips"], baseline
        assert ours["seam"] < theirs["seam"], baseline


def test_composite_demo_blends_the_relit_face_back():
    """The README's picture: the relit face, pasted, is far from the untouched portrait;
    composited, it is much nearer, and nothing away from the face changes."""
    photo = demo_inputs().image
    face = face_layer(photo)
    result = run_composite(
        load_model(MODELS / DEFAULT_COMPOSITE_MODEL, task="composite"), photo, face
    )
    after = apply_patch(photo, result)
    pasted = apply_patch(photo, run_composite(None, photo, face, method="alpha paste"))
    inside = face[..., 3] > 128

    def error(a: np.ndarray) -> float:
        return float(np.abs(a[inside][:, :3].astype(int) - photo[inside][:, :3]).mean())

    assert error(after) < 0.5 * error(pasted), (error(after), error(pasted))
    b = result.box
    outside = np.ones(inside.shape, bool)
    outside[b.y : b.y1, b.x : b.x1] = False
    assert np.array_equal(after[outside], photo[outside])


def test_restore_card_shows_the_prior_helping_on_one_side_masks():
    """The shipped restore model on the held-out faces: on masks over one side of the face
    it beats the same network trained without the prior, the plain edit generator and
    Telea / Navier-Stokes inpainting."""
    model = load_model(MODELS / DEFAULT_RESTORE_MODEL, task="restore")
    metrics = model.card.metrics
    assert metrics["data"] == "faces_eval" and metrics["images"] >= 40
    side = metrics["groups"]["side"]
    ours = side["sketchfill restore"]
    for other in ("no prior", "plain generator", "telea", "ns"):
        assert ours["psnr"] > side[other]["psnr"], other
        assert ours["st_lpips"] < side[other]["st_lpips"], other
        assert ours["l1"] < side[other]["l1"], other
    overall = metrics["methods"]
    assert all(
        overall["sketchfill restore"]["psnr"] > row["psnr"]
        for row in overall.values()
        if row is not overall["sketchfill restore"]
    )


def test_restore_demo_takes_the_hand_off_and_keeps_the_rest():
    """The README's picture: restored, the hand's area is much nearer the untouched
    portrait than the hand was, and nothing outside the hand's mask changes."""
    photo = demo_inputs().image
    occluded, mask = hand_over_face(photo)
    model = load_model(MODELS / DEFAULT_RESTORE_MODEL, task="restore")
    after = apply_patch(occluded, run_restore(model, occluded, mask, seed=7))
    inside = mask >= 128

    def error(a: np.ndarray) -> float:
        return float(np.abs(a[inside][:, :3].astype(int) - photo[inside][:, :3]).mean())

    assert error(after) < 0.6 * error(occluded), (error(after), error(occluded))
    assert np.array_equal(after[~inside], occluded[~inside])
