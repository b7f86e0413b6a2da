"""The shared client's table of layer roles, result names and sentences (engine/roles.py):
both plug-ins read it, so GIMP and Krita pick the same layers and say the same things."""

from __future__ import annotations

import pytest
from sketchfill.wire import roles


def test_one_list_of_names_per_role_case_and_spaces_ignored():
    assert roles.is_role_name("sketch", " Lines ")
    assert roles.is_role_name("color", "COLOUR")
    assert not roles.is_role_name("sketch", "color")
    # the first name is the role's own: what Create SketchFill layers makes
    assert [roles.ROLE_NAMES[r][0] for r in roles.NEW_GUIDES] == ["sketch", "color", "mask"]


def test_result_names_put_the_seed_first():
    assert roles.result_name("edit", 1234) == "SF 1234 fill"
    assert roles.result_name("restore", 7) == "SF 7 restore"
    assert roles.result_name("tone") == "SF tone"
    for name in ("SF 1234 fill", "SF tone", "SF composite #2", "SketchFill seed 9"):
        assert roles.is_result_name(name), name
    for name in ("SF", "SFX 1 fill", "photo", "SF 12 photo"):
        assert not roles.is_result_name(name), name
    assert roles.seed_of("SF 1234 fill") == 1234 and roles.seed_of("SF tone") is None


@pytest.mark.parametrize(
    ("box", "canvas", "feather"),
    [
        ((67, 37), (512, 512), 1.0),
        ((600, 400), (6000, 4000), 16.0),
        ((2000, 2000), (9000, 9000), 27.0),
        ((1, 1), (64, 48), 1.0),
    ],
)
def test_the_default_feather_scales_with_the_mask_and_the_photo(box, canvas, feather):
    assert roles.auto_feather(*box, *canvas) == feather


def test_sentences():
    assert roles.missing_guide("sketch", "Lines 2") == (
        "No sketch layer: this image has no layer named 'Lines 2'. Pick the sketch layer, or "
        "set the sketch layer to None to generate without one."
    )
    assert "'color', 'colour', 'colors' or 'colours'" in roles.missing_guide("color")
    assert roles.added_above(["SF 1 fill"], "X") == (
        "Added the layer 'SF 1 fill' on top of the guides. Before/after (X) hides and shows it."
    )
    assert roles.added_above(["SF tone"], "X", guides=False).startswith(
        "Added the layer 'SF tone'."
    )
    assert roles.toggled("SF 1 fill", False) == "Before: 'SF 1 fill' hidden."


def test_progress_stages_in_words_for_both_hosts():
    assert roles.stage_words("generate") == "generating"
    assert roles.stage_words("apply") == "applying the tone curves"
    assert roles.stage_words("apply", "composite") == "blending the face in"
    assert roles.stage_words("something new") == "something new"
