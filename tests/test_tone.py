"""The tone tool: the full-size transform, the fixed algorithm, training, export, the
engine operation and the CLI, with a real (briefly trained) network and real sockets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import face_like, running_engine
from PIL import Image
from sketchfill.pipeline.modelcard import ModelCard, ModelCardError
from sketchfill.pipeline.result import EditError
from sketchfill.pipeline.runtime import ModelError, load_model
from sketchfill.tools.tone import infer as tone
from sketchfill.tools.tone.data import degrade
from sketchfill.tools.tone.model import ToneNet, apply_tone
from sketchfill.training.images import list_photos
from sketchfill.wire import protocol
from sketchfill.wire.client import Client
from sketchfill.wire.errors import EngineError
from sketchfill.wire.protocol import Box
from sketchfill.wire.requests import EditRequest, ToneRequest

CLI = [sys.executable, "-m", "sketchfill.cli"]


def rgba(rgb: np.ndarray) -> np.ndarray:
    return np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])


def dark_photo(h: int = 300, w: int = 400) -> np.ndarray:
    photo = face_like(h, w, seed=3)[..., :3]
    return degrade(photo, np.random.default_rng(5), keep=0.0)


@pytest.fixture(scope="module")
def tone_models(tmp_path_factory) -> Path:
    """A tone network trained for a few steps on a handful of photos, then exported."""
    root = tmp_path_factory.mktemp("tone")
    photos = root / "photos"
    photos.mkdir()
    for i in range(4):
        Image.fromarray(face_like(96, 128, seed=i)[..., :3]).save(photos / f"p{i}.png")
    run = root / "run"
    train = [*CLI, "train-tone", "--data", str(photos), "--out", str(run), "--steps", "3"]
    subprocess.run([*train, "--res", "64", "--batch", "2", "--log-every", "1"], check=True)
    models = root / "models"
    subprocess.run([*CLI, "export-tone", str(run / "tone.pt"), "-o", str(models)], check=True)
    return models


def test_identity_transform_changes_nothing():
    photo = dark_photo()
    lut = np.tile(np.arange(256, dtype=np.float32) / 255, (3, 1))
    assert np.array_equal(tone.apply_transform(photo, lut, np.zeros((16, 16))), photo)


def test_full_size_gain_matches_training_interpolation():
    grid = np.random.default_rng(0).normal(0, 0.4, (16, 16)).astype(np.float32)
    want = F.interpolate(torch.from_numpy(grid)[None, None], size=(300, 437), mode="bilinear")
    got = tone.spread_grid(grid, np.arange(300), np.arange(437), 300, 437)
    assert np.abs(got - want[0, 0].numpy()).max() < 1e-5


def test_a_part_is_toned_exactly_as_in_the_whole():
    photo = dark_photo()
    grid = np.random.default_rng(1).normal(0, 0.4, (16, 16)).astype(np.float32)
    lut = tone.fixed_lut(photo)
    whole = tone.apply_transform(photo, lut, grid)
    box = Box(37, 211, 300, 80)
    part = tone.apply_transform(
        photo[box.y : box.y1, box.x : box.x1], lut, grid, frame=(box, 400, 300)
    )
    assert np.array_equal(part, whole[box.y : box.y1, box.x : box.x1])


def test_fixed_algorithm_repairs_exposure_and_cast():
    photo = face_like(256, 256, seed=2)[..., :3]
    dark = np.clip(photo * np.array([0.35, 0.45, 0.6]), 0, 255).astype(np.uint8)  # dim, blue
    fixed = tone.fixed_tone(dark).astype(np.float32)
    means = fixed.reshape(-1, 3).mean(axis=0)
    assert abs(fixed.mean() / 255 - tone.TARGET_MEAN) < 0.08
    before = dark.reshape(-1, 3).mean(axis=0)
    assert np.ptp(means) < np.ptp(before) / 3  # the blue cast is mostly gone


def test_selection_tones_softly_and_keeps_alpha():
    image = rgba(dark_photo())
    image[..., 3] = 200
    mask = np.zeros(image.shape[:2], np.uint8)
    mask[50:150, 60:260] = 255
    mask[100:150, 60:260] = 128  # half-selected rows
    result = tone.run_tone(None, image, mask)
    assert result.box == Box(60, 50, 200, 100)
    full = tone.run_tone(None, image).patch
    inside = full[50:100, 60:260]
    assert np.array_equal(result.patch[:50], inside)
    half = (image[100:150, 60:260, :3].astype(float) + full[100:150, 60:260, :3]) / 2
    assert np.abs(result.patch[50:, :, :3] - half).max() <= 1
    assert (result.patch[..., 3] == 200).all()


def test_empty_selection_is_refused():
    with pytest.raises(EditError) as err:
        tone.run_tone(None, rgba(dark_photo()), np.zeros((300, 400), np.uint8))
    assert err.value.code == protocol.EMPTY_MASK


def test_untrained_network_is_the_identity():
    net = ToneNet(8)
    x = torch.rand(2, 3, 64, 64)
    points, gain = net.transform(x)
    assert torch.allclose(apply_tone(x, points, gain), x, atol=2e-3)
    lut, _ = net(x)
    assert torch.allclose(lut, torch.linspace(0, 1, 256).expand(2, 3, 256), atol=2e-3)


def test_exported_network_matches_torch_at_full_size(tone_models):
    """The engine's full-size application of the ONNX transform equals torch's training-
    time application on the same pixels (to rounding)."""
    model = load_model(tone_models / "sketchfill-tone", task="tone", warmup=0)
    assert model.card.task == "tone" and model.card.training["steps"] == 3
    photo = dark_photo(64, 64)
    lut, gain = tone.predict_transform(model, photo)
    engine = tone.apply_transform(photo, lut, gain).astype(np.float32) / 255
    ckpt = torch.load(tone_models.parent / "run/tone.pt", weights_only=True)
    net = ToneNet(ckpt["config"]["width"])
    net.load_state_dict(ckpt["tone"])
    x = torch.from_numpy(photo.transpose(2, 0, 1)[None].astype(np.float32) / 255)
    with torch.no_grad():
        want = apply_tone(x, *net.transform(x))[0].numpy().transpose(1, 2, 0)
    assert np.abs(engine - want).max() <= 1.5 / 255


def test_a_tone_model_is_refused_as_an_edit_model(tone_models):
    with pytest.raises(ModelError) as err:
        load_model(tone_models / "sketchfill-tone", task="edit", warmup=0)
    assert "'tone' model" in err.value.message


def test_tone_card_shapes_are_checked(tone_models):
    data = json.loads((tone_models / "sketchfill-tone/model.json").read_text())
    data["outputs"][0]["shape"] = [1, 3, 255]
    with pytest.raises(ModelCardError, match="lut shape"):
        ModelCard.from_dict(data)


def test_engine_serves_tone_beside_edit(tone_models, echo_model, monkeypatch):
    """Over real sockets: the tone op answers with the whole-canvas patch the in-process
    run makes, a selection limits it, and edits still work on the same engine."""
    monkeypatch.setenv("SKETCHFILL_MODELS", str(tone_models))
    image = rgba(dark_photo(120, 160))
    mask = np.zeros((120, 160), np.uint8)
    mask[10:40, 20:90] = 255
    with running_engine(echo_model) as engine, Client(engine.bound_endpoint) as client:
        hello = client.hello(5)
        assert hello["tools"]["tone"]["model"]["task"] == "tone"
        region = Box(0, 0, 160, 120)
        got = client.edit(ToneRequest(160, 120, region, image), timeout=30)
        selected = client.edit(ToneRequest(160, 120, region, image, mask=mask), timeout=30)
        edited = client.edit(EditRequest(160, 120, region, image, mask), timeout=30)
    assert (edited.x, edited.y, edited.width, edited.height) == (20, 10, 70, 30)
    model = load_model(tone_models / "sketchfill-tone", task="tone", warmup=0)
    want = tone.run_tone(model, image)
    assert (got.x, got.y, got.width, got.height) == (0, 0, 160, 120)
    assert np.frombuffer(got.data, np.uint8).tobytes() == want.patch.tobytes()
    assert (selected.x, selected.y, selected.width, selected.height) == (20, 10, 70, 30)


def test_tone_without_its_model_is_a_clear_error(echo_model, tmp_path, monkeypatch):
    monkeypatch.setenv("SKETCHFILL_MODELS", str(tmp_path))  # holds no tone model
    monkeypatch.setattr("sketchfill.pipeline.runtime._REPO_MODELS", tmp_path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    image = rgba(dark_photo(40, 50))
    request = ToneRequest(50, 40, Box(0, 0, 50, 40), image)
    with (
        running_engine(echo_model) as engine,
        Client(engine.bound_endpoint) as client,
        pytest.raises(EngineError) as err,
    ):
        client.edit(request, timeout=30)
    assert err.value.code == protocol.MODEL_MISSING
    assert "sketchfill-tone" in str(err.value)


def test_cli_tone_in_process_and_fixed(tone_models, tmp_path):
    src = tmp_path / "in.png"
    Image.fromarray(dark_photo(80, 100)).save(src)
    mask = np.zeros((80, 100), np.uint8)
    mask[20:60, 30:70] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    model = str(tone_models / "sketchfill-tone")
    net = subprocess.run(
        [*CLI, "tone", str(src), "-o", str(tmp_path / "net.png"), "--model", model],
        capture_output=True,
        text=True,
    )
    assert net.returncode == 0, net.stderr
    assert json.loads(net.stdout)["engine"] == "in-process"
    fixed = [*CLI, "tone", str(src), "-o", str(tmp_path / "fixed.jpg"), "--fixed"]
    done = subprocess.run([*fixed, "--mask", str(tmp_path / "mask.png")], capture_output=True)
    assert done.returncode == 0, done.stderr
    out = np.asarray(Image.open(tmp_path / "fixed.jpg"))
    assert out.shape == (80, 100, 3)
    wrong = Image.fromarray(np.zeros((10, 10), np.uint8))
    wrong.save(tmp_path / "small.png")
    refused = subprocess.run(
        [
            *CLI,
            "tone",
            str(src),
            "-o",
            str(tmp_path / "y.png"),
            "--mask",
            str(tmp_path / "small.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1 and "must cover the image" in refused.stderr
    assert not (tmp_path / "y.png").exists()


def test_train_tone_resumes_where_it_stopped(tone_models, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tone_models.parent / "run", run)
    photos = tone_models.parent / "photos"
    more = [*CLI, "train-tone", "--data", str(photos), "--out", str(run), "--steps", "5"]
    done = subprocess.run([*more, "--resume", "--batch", "2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stdout and "at step 3" in done.stdout
    assert torch.load(run / "tone.pt", weights_only=True)["step"] == 5
    assert (run / "samples/step_0000005.png").is_file()
    bad = subprocess.run(
        [*CLI, "train-tone", "--data", str(tmp_path / "nowhere"), "--out", str(run)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "no such folder" in bad.stderr


def test_eval_tone_reports_every_method(tone_models, tmp_path):
    held_out = tmp_path / "held-out"
    held_out.mkdir()
    for i in range(2):
        Image.fromarray(face_like(80, 80, seed=10 + i)[..., :3]).save(held_out / f"h{i}.png")
    out = tmp_path / "eval.json"
    photos = tone_models.parent / "photos"
    cmd = [*CLI, "eval-tone", "--data", str(held_out), "--reference", str(photos)]
    cmd += ["--model", str(tone_models / "sketchfill-tone"), "--json", str(out)]
    done = subprocess.run(
        [*cmd, "--size", "64", "--grid", str(tmp_path / "grid.png")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert set(report["methods"]) == {"input", "fixed", "sketchfill", "original"}
    assert report["images"] == 2 and len(report["per_image"]) == 4
    for name in ("input", "fixed", "sketchfill"):
        row = report["methods"][name]
        assert row["ntd"] > 0 and row["psnr"] > 0 and row["delta_e"] >= 0
    assert Image.open(tmp_path / "grid.png").size == (4 * 256, 4 * 256)
    overlap = subprocess.run(
        [*cmd[:6], "--reference", str(held_out), *cmd[8:]],
        capture_output=True,
        text=True,
    )
    assert overlap.returncode == 2 and "must not hold the evaluated photos" in overlap.stderr


def test_photo_folders_are_read_without_their_subfolders(tmp_path):
    """As for the generator: faces/labels/ holds parsing maps, which are not photos."""
    Image.fromarray(face_like(40, 40)[..., :3]).save(tmp_path / "a.png")
    (tmp_path / "labels").mkdir()
    Image.fromarray(np.zeros((40, 40), np.uint8)).save(tmp_path / "labels" / "a.png")
    assert list_photos([tmp_path]) == [tmp_path / "a.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no photos"):
        list_photos([tmp_path / "empty"])
    with pytest.raises(ValueError, match="does not exist"):
        list_photos([tmp_path / "missing"])
