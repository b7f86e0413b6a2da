"""The composite tool: scenes, the network's full-size application, the baselines,
training, export, the engine operation and the CLI, with a real (briefly trained) network
and real sockets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import face_like, running_engine
from PIL import Image
from sketchfill.pipeline.modelcard import ModelCard, ModelCardError
from sketchfill.pipeline.preprocess import mask_bbox
from sketchfill.pipeline.result import EditError, apply_patch
from sketchfill.pipeline.runtime import ModelError, load_model
from sketchfill.tools.composite import infer as harmonize
from sketchfill.tools.composite.data import make_scene
from sketchfill.tools.composite.model import CompositeNet, compose
from sketchfill.wire import protocol
from sketchfill.wire.client import Client
from sketchfill.wire.protocol import Box
from sketchfill.wire.requests import CompositeRequest, EditRequest, edit_region

CLI = [sys.executable, "-m", "sketchfill.cli"]


def photo_and_face(h: int = 120, w: int = 160, seed: int = 3):
    """A photo (RGBA) and a face layer: a recoloured oval of it on transparency."""
    photo = face_like(h, w, seed=seed)
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((yy - h / 2) / (h / 4)) ** 2 + ((xx - w / 2) / (w / 6)) ** 2 < 1
    face = photo.copy()
    face[..., :3] = (photo[..., :3] * np.array([0.7, 0.9, 1.1])).clip(0, 255).astype(np.uint8)
    face[..., 3] = np.where(inside, 255, 0).astype(np.uint8)
    return photo, face


@pytest.fixture(scope="module")
def composite_models(tmp_path_factory) -> Path:
    """A composite network trained for a few steps on a handful of photos, exported."""
    root = tmp_path_factory.mktemp("composite")
    photos = root / "photos"
    photos.mkdir()
    for i in range(4):
        Image.fromarray(face_like(96, 96, seed=i)[..., :3]).save(photos / f"p{i}.png")
    run = root / "run"
    train = [*CLI, "train-composite", "--data", str(photos), "--out", str(run), "--steps", "3"]
    subprocess.run([*train, "--res", "64", "--batch", "2", "--log-every", "1"], check=True)
    models = root / "models"
    export = [*CLI, "export-composite", str(run / "composite.pt"), "-o", str(models)]
    subprocess.run(export, check=True)
    return models


def test_scenes_are_seeded_and_only_the_face_is_wrong():
    rng = np.random.default_rng
    a, b = face_like(128, 128, seed=1)[..., :3], face_like(128, 128, seed=2)[..., :3]
    one, two = make_scene(a, b, rng(5)), make_scene(a, b, rng(5))
    assert np.array_equal(one.source, two.source) and np.array_equal(one.mask, two.mask)
    assert np.array_equal(one.truth, a)
    far = slice(0, 8)  # above the face: neither the layer nor the other face reach there
    assert np.array_equal(one.source[far], a[far]) and np.array_equal(one.target[far], a[far])
    assert np.abs(one.target.astype(int) - a)[one.mask > 0].mean() > 1  # another face there


def test_untrained_network_matches_the_face_statistics_inside_the_mask_only():
    net = CompositeNet(8)
    target, source = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64) * 0.5
    mask = torch.zeros(2, 1, 64, 64)
    mask[:, :, 16:48, 20:44] = 1
    with torch.no_grad():
        alpha, coeffs = net(target, source, mask)
        out = compose(target, source, alpha, coeffs)
    assert alpha.min() >= 0 and abs(alpha.max().item() - 1) < 1e-4
    assert torch.equal(out[:, :, :12], target[:, :, :12])  # outside the mask: the photo
    assert coeffs.shape == (2, 12, 16, 16)


def test_exported_network_matches_torch_at_full_size(composite_models):
    """The engine's full-size application of the ONNX outputs equals torch's training-time
    composite on the same pixels (to rounding)."""
    model = load_model(composite_models / "sketchfill-composite", task="composite", warmup=0)
    assert model.card.task == "composite" and model.card.training["steps"] == 3
    photo, face = photo_and_face(64, 64)
    got = apply_patch(photo, harmonize.run_composite(model, photo, face))[..., :3]
    ckpt = torch.load(composite_models.parent / "run/composite.pt", weights_only=True)
    net = CompositeNet(ckpt["config"]["width"])
    net.load_state_dict(ckpt["net"])

    def t(a: np.ndarray) -> torch.Tensor:
        a = a if a.ndim == 3 else a[..., None]
        return torch.from_numpy(a.transpose(2, 0, 1)[None].astype(np.float32) / 255)

    target, source = t(photo[..., :3]), t(harmonize.pasted(photo, face))
    with torch.no_grad():
        want = compose(target, source, *net(target, source, t(face[..., 3])))
    want = want[0].numpy().transpose(1, 2, 0) * 255
    assert np.abs(got - want).max() <= 1.5


def test_composite_models_are_checked(composite_models):
    with pytest.raises(ModelError) as err:
        load_model(composite_models / "sketchfill-composite", task="edit", warmup=0)
    assert "'composite' model" in err.value.message
    data = json.loads((composite_models / "sketchfill-composite/model.json").read_text())
    data["outputs"][1]["shape"] = [1, 12, 8, 8]
    with pytest.raises(ModelCardError, match="coeffs shape"):
        ModelCard.from_dict(data)


def test_baselines_change_only_the_region():
    photo, face = photo_and_face()
    mask = face[..., 3]
    pasted = harmonize.pasted(photo, face)
    assert np.array_equal(harmonize.alpha_paste(photo[..., :3], pasted, mask), pasted)
    outside = mask_bbox(mask > 0)
    for name in harmonize.BASELINES:
        result = harmonize.run_composite(None, photo, face, method=name)
        assert result.box == outside
        assert np.all(result.patch[..., 3] == 255)
    # Reinhard: the face takes the photo's colour statistics under the mask.
    fixed = harmonize.reinhard_paste(photo[..., :3], pasted, mask)
    inside = mask >= 128
    err_before = np.abs(pasted[inside].mean(0) - photo[..., :3][inside].mean(0)).max()
    err_after = np.abs(fixed[inside].mean(0) - photo[..., :3][inside].mean(0)).max()
    assert err_after < err_before / 3


def test_network_patch_covers_the_face_keeps_alpha_and_the_rest(composite_models):
    model = load_model(composite_models / "sketchfill-composite", task="composite", warmup=0)
    photo, face = photo_and_face()
    photo[..., 3] = 200  # a half-transparent photo layer keeps its alpha
    result = harmonize.run_composite(model, photo, face)
    face_box = mask_bbox(face[..., 3] > 0)
    b = result.box
    assert b.x <= face_box.x and b.y <= face_box.y
    assert b.x1 >= face_box.x1 and b.y1 >= face_box.y1
    assert np.all(result.patch[..., 3] == 200)
    out = apply_patch(photo, result)
    assert np.array_equal(out[:5], photo[:5])  # far from the face: the photo, bit for bit
    selection = np.zeros(face.shape[:2], np.uint8)
    selection[50:70, 70:90] = 255
    limited = harmonize.run_composite(model, photo, face, selection)
    assert limited.box.width < b.width
    with pytest.raises(EditError) as err:
        harmonize.run_composite(model, photo, face * 0)
    assert err.value.code == protocol.EMPTY_MASK and "face layer is empty" in err.value.message


def test_engine_serves_composite_beside_edit(composite_models, echo_model, monkeypatch):
    """Over real sockets: the composite op answers with the patch the in-process run makes
    from only the region the client sends, and edits still work on the same engine."""
    monkeypatch.setenv("SKETCHFILL_MODELS", str(composite_models))
    photo, face = photo_and_face()
    with running_engine(echo_model) as engine, Client(engine.bound_endpoint) as client:
        hello = client.hello(5)
        assert hello["tools"]["composite"]["model"]["task"] == "composite"
        assert hello["tools"]["composite"]["buffers"]["face"]["required"]
        r = edit_region(mask_bbox(face[..., 3] > 0), 160, 120, hello, tool="composite")
        cut = lambda a: np.ascontiguousarray(a[r.y : r.y1, r.x : r.x1])  # noqa: E731
        got = client.edit(CompositeRequest(160, 120, r, cut(photo), cut(face)), timeout=30)
        edit = EditRequest(160, 120, Box(0, 0, 160, 120), photo, face[..., 3].copy())
        edited = client.edit(edit, timeout=30)
    assert edited.width > 0
    model = load_model(composite_models / "sketchfill-composite", task="composite", warmup=0)
    want = harmonize.run_composite(model, photo, face)
    assert (got.x, got.y, got.width, got.height) == (want.x, want.y, *want.patch.shape[1::-1])
    assert np.frombuffer(got.data, np.uint8).tobytes() == want.patch.tobytes()


def test_cli_composite_in_process_placed_and_baseline(composite_models, tmp_path):
    photo, face = photo_and_face()
    Image.fromarray(photo[..., :3]).save(tmp_path / "photo.jpg")
    box = mask_bbox(face[..., 3] > 0)
    small = face[box.y : box.y1, box.x : box.x1]
    Image.fromarray(small).save(tmp_path / "face.png")
    model = str(composite_models / "sketchfill-composite")
    base = [*CLI, "composite", str(tmp_path / "photo.jpg"), str(tmp_path / "face.png")]
    placed = subprocess.run(
        [*base, "--at", f"{box.x},{box.y}", "-o", str(tmp_path / "net.png"), "--model", model],
        capture_output=True,
        text=True,
    )
    assert placed.returncode == 0, placed.stderr
    report = json.loads(placed.stdout)
    assert report["engine"] == "in-process" and report["patch"]["width"] >= box.width
    poisson = subprocess.run(
        [*base, "--at", f"{box.x},{box.y}", "--method", "poisson", "-o", str(tmp_path / "p.png")],
        capture_output=True,
        text=True,
    )
    assert poisson.returncode == 0, poisson.stderr
    assert json.loads(poisson.stdout)["engine"] == "poisson"
    unplaced = subprocess.run(
        [*base, "-o", str(tmp_path / "x.png")], capture_output=True, text=True
    )
    assert unplaced.returncode == 1 and "pass --at X,Y" in unplaced.stderr
    outside = subprocess.run(
        [*base, "--at", "500,500", "-o", str(tmp_path / "x.png")], capture_output=True, text=True
    )
    assert outside.returncode == 1 and "lies outside" in outside.stderr
    assert not (tmp_path / "x.png").exists()


def test_train_composite_resumes_where_it_stopped(composite_models, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(composite_models.parent / "run", run)
    photos = composite_models.parent / "photos"
    more = [*CLI, "train-composite", "--data", str(photos), "--out", str(run), "--steps", "5"]
    done = subprocess.run([*more, "--resume", "--batch", "2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stdout and "at step 3" in done.stdout
    assert torch.load(run / "composite.pt", weights_only=True)["step"] == 5
    assert (run / "samples/step_0000005.png").is_file()
    wrong = subprocess.run(
        [*CLI, "export-composite", str(tmp_path / "none.pt"), "-o", str(tmp_path / "m")],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 1 and "no checkpoint" in wrong.stderr


def test_eval_composite_reports_every_method(composite_models, tmp_path):
    held_out = tmp_path / "held-out"
    held_out.mkdir()
    for i in range(2):
        Image.fromarray(face_like(96, 96, seed=10 + i)[..., :3]).save(held_out / f"h{i}.png")
    out = tmp_path / "eval.json"
    cmd = [*CLI, "eval-composite", "--data", str(held_out), "--json", str(out), "--size", "96"]
    cmd += ["--model", str(composite_models / "sketchfill-composite")]
    done = subprocess.run(
        [*cmd, "--grid", str(tmp_path / "grid.png")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert set(report["methods"]) == {"alpha paste", "poisson", "reinhard", "sketchfill"}
    assert report["images"] == 2 and len(report["per_image"]) == 4
    for row in report["methods"].values():
        assert row["psnr"] > 0 and row["st_lpips"] >= 0 and row["seam"] >= 0
    assert Image.open(tmp_path / "grid.png").size == (5 * 256, 4 * 256)


def test_the_engine_serves_without_opencv():
    """OpenCV comes with the train extra only: the engine and the network path must not
    need it (the installed engine has numpy, Pillow, onnxruntime and pyzmq)."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('cv2', 'torch', 'skimage'):\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import sketchfill.serve.server, sketchfill.commands.serve\n"
        "import sketchfill.tools.composite.commands\n"
        "from sketchfill.tools.composite import infer as harmonize\n"
        "try:\n"
        "    harmonize.poisson_blend(None, None, None)\n"
        "except harmonize.EditError as exc:\n"
        "    print(exc.message)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "need OpenCV" in done.stdout
