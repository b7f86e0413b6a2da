"""Model loading: a model is used only when its file, hash and shapes agree with its card."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from onnx_fixtures import build_model
from sketchfill.pipeline.modelcard import ModelCard, sha256_file
from sketchfill.pipeline.runtime import (
    Cancelled,
    CancelToken,
    ModelError,
    load_generator,
    session_options,
)


@pytest.fixture
def model_copy(tmp_path, echo_model):
    folder = tmp_path / "m"
    shutil.copytree(echo_model, folder)
    return folder


def edit_card(folder, **changes):
    path = folder / "model.json"
    card = json.loads(path.read_text())
    card.update(changes)
    path.write_text(json.dumps(card))


def test_loads_a_valid_model_and_runs_it(model_copy):
    model = load_generator(model_copy)
    (out,) = model.run({"input": np.zeros((1, 9, 64, 64), np.float32)})
    assert out.shape == (1, 3, 64, 64)
    assert model.describe()["sha256"] == sha256_file(model_copy / "model.onnx")


def test_missing_folder_or_name_is_model_missing(tmp_path):
    for ref in (tmp_path / "nothing", "no-such-model-name"):
        with pytest.raises(ModelError) as err:
            load_generator(ref)
        assert err.value.code == "model_missing"


def test_missing_onnx_file_is_model_missing(model_copy):
    (model_copy / "model.onnx").unlink()
    with pytest.raises(ModelError) as err:
        load_generator(model_copy)
    assert err.value.code == "model_missing" and "model.onnx" in err.value.message


def test_changed_file_is_model_invalid(model_copy):
    with open(model_copy / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError) as err:
        load_generator(model_copy)
    assert err.value.code == "model_invalid" and "does not match its card" in err.value.message


def test_unloadable_onnx_is_model_invalid(model_copy):
    (model_copy / "model.onnx").write_bytes(b"not an onnx file")
    edit_card(model_copy, sha256=sha256_file(model_copy / "model.onnx"))
    with pytest.raises(ModelError) as err:
        load_generator(model_copy)
    assert err.value.code == "model_invalid" and "cannot load" in err.value.message


def test_card_shapes_must_match_the_graph(tmp_path):
    folder = build_model(tmp_path / "m", resolution=32)
    card = ModelCard.load(folder)
    lying = ModelCard.for_generator(card.name, card.version, 48, card.sha256)
    lying.save(folder)
    with pytest.raises(ModelError) as err:
        load_generator(folder)
    assert err.value.code == "model_invalid" and "card declares" in err.value.message


@pytest.mark.parametrize(
    "change,words",
    [
        ({"resolution": 3}, "resolution"),
        ({"sha256": "abc"}, "sha256"),
        ({"task": "upscale"}, "not 'edit'"),  # a model of another task
        ({"task": "restore"}, "differ from the contract"),  # restore checks its channels
        ({"task": "tone"}, "a tone network takes"),  # a known task checks its own shapes
        (
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 9, 64, 64],
                        "channels": ["r", "g", "b", "mask", "sketch", "cr", "cg", "cb", "noise"],
                    }
                ]
            },
            "differ from the contract",
        ),
    ],
)
def test_cards_that_break_the_contract_are_model_invalid(model_copy, change, words):
    edit_card(model_copy, **change)
    with pytest.raises(ModelError) as err:
        load_generator(model_copy)
    assert err.value.code == "model_invalid" and words in err.value.message


def test_unreadable_card_is_model_invalid(model_copy):
    (model_copy / "model.json").write_text("{")
    with pytest.raises(ModelError) as err:
        load_generator(model_copy)
    assert err.value.code == "model_invalid"


def test_session_options_are_deliberate():
    import onnxruntime as ort

    opts = session_options(3)
    assert opts.intra_op_num_threads == 3 and opts.inter_op_num_threads == 1
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_cancel_token_stops_a_run_before_it_starts(model_copy):
    model = load_generator(model_copy, warmup=0)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        model.run({"input": np.zeros((1, 9, 64, 64), np.float32)}, cancel=token)
