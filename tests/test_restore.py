"""The restore tool: the converted face mesh, the UV prior, the restore pipeline and its
baselines, training, export, evaluation, the engine operation and the CLI, on the
public-domain demo portrait with real ONNX Runtime sessions and real sockets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import running_engine
from PIL import Image
from sketchfill.pipeline.facemesh import FaceMesh, FaceNotFound
from sketchfill.pipeline.modelcard import RESTORE_CHANNELS, ModelCard, ModelCardError
from sketchfill.pipeline.preprocess import mask_bbox
from sketchfill.pipeline.result import EditError, apply_patch
from sketchfill.pipeline.runtime import ModelError, load_model
from sketchfill.tools.restore import infer as restore
from sketchfill.tools.restore.uvprior import rasterize_mesh, render_prior
from sketchfill.wire import protocol
from sketchfill.wire.client import Client
from sketchfill.wire.requests import RestoreRequest, edit_region

CLI = [sys.executable, "-m", "sketchfill.cli"]
REPO = Path(__file__).resolve().parents[1]
PORTRAIT = REPO / "engine" / "assets" / "demo" / "astronaut.png"
FACE_BOX = (170, 60, 285, 185)  # x0, y0, x1, y1 of the astronaut's face, with some slack


def portrait() -> np.ndarray:
    return np.asarray(Image.open(PORTRAIT).convert("RGBA"))


def cheek_mask(size: int = 512) -> np.ndarray:
    """An occluder over the image-left cheek and eye (a one-side mask), 0/255."""
    yy, xx = np.mgrid[0:size, 0:size]
    k = size / 512
    inside = ((xx - 205 * k) / (22 * k)) ** 2 + ((yy - 125 * k) / (35 * k)) ** 2 < 1
    return np.where(inside, 255, 0).astype(np.uint8)


@pytest.fixture(scope="module")
def restore_models(tmp_path_factory) -> Path:
    """A restore generator trained for a few steps on variants of the portrait, exported
    (at 128 px, so the tests stay fast), and its no-prior ablation."""
    root = tmp_path_factory.mktemp("restore")
    photos = root / "photos"
    photos.mkdir()
    face = Image.open(PORTRAIT).convert("RGB").crop((100, 0, 356, 256))
    for i, gain in enumerate((1.0, 0.85, 1.1)):
        arr = np.clip(np.asarray(face, np.float32) * gain, 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(photos / f"p{i}.png")
    models = root / "models"
    for name, extra in (("run", []), ("run-noprior", ["--no-prior"])):
        train = [*CLI, "train-restore", "--data", str(photos), "--out", str(root / name)]
        train += ["--steps", "2", "--res", "64", "--batch", "2", "--log-every", "1", *extra]
        subprocess.run(train, check=True)
        out_name = "sketchfill-restore" if not extra else "restore-noprior"
        export = [*CLI, "export-restore", str(root / name / "restore.pt"), "-o", str(models)]
        subprocess.run([*export, "--res", "128", "--name", out_name], check=True)
    return models


def test_face_mesh_finds_the_portrait_face():
    found = FaceMesh(restore.FACEMESH_DIR).landmarks(portrait())
    rgb = FaceMesh(restore.FACEMESH_DIR).landmarks(np.ascontiguousarray(portrait()[..., :3]))
    assert np.array_equal(found.points, rgb.points)  # RGBA is read in place, same answer
    lo, hi = found.points[:, :2].min(0), found.points[:, :2].max(0)
    assert found.presence > 0.9
    assert (
        FACE_BOX[0] < lo[0] and hi[0] < FACE_BOX[2] and FACE_BOX[1] < lo[1] and hi[1] < FACE_BOX[3]
    )
    # The eyes are found where they are: outer corners level and left of right.
    left, right = found.points[33], found.points[263]
    assert left[0] < right[0] and abs(left[1] - right[1]) < 8


def test_face_mesh_looks_around_the_mask_for_a_small_face():
    """A face too small to be detected in the whole picture is found around the mask."""
    big = np.zeros((2400, 2400, 4), np.uint8)
    big[..., 3] = 255
    big[1500:2012, 300:812] = portrait()
    finder = FaceMesh(restore.FACEMESH_DIR)
    with pytest.raises(FaceNotFound):
        finder.landmarks(big)
    found = finder.landmarks(big, near=(480, 1560, 540, 1650))
    assert 1500 + FACE_BOX[1] < found.points[:, 1].mean() < 1500 + FACE_BOX[3]


def test_canonical_mesh_is_mediapipes_symmetric_layout():
    mesh = restore.load_canonical_mesh()
    assert mesh.uv.shape == (468, 2) and mesh.triangles.shape == (898, 3)
    assert mesh.uv.min() >= 0 and mesh.uv.max() <= 1
    # Mirrored texels are the other side of the face: the UV layout is symmetric in u.
    flipped = mesh.uv * [-1, 1] + [1, 0]
    nearest = np.abs(flipped[:, None] - mesh.uv[None]).sum(-1).min(1)
    assert nearest.max() < 0.003


def test_prior_fills_a_hidden_eye_from_the_mirrored_side():
    rgb = portrait()[..., :3].astype(np.float32)
    points = FaceMesh(restore.FACEMESH_DIR).landmarks(portrait()).points
    raster = rasterize_mesh(restore.load_canonical_mesh(), points, rgb.shape[:2], 256)
    hole = (cheek_mask() > 0).astype(np.float32)
    prior, known = render_prior(rgb, hole, raster)
    inside = (hole > 0) & (known > 0)
    assert inside.sum() > 0.7 * hole.sum()  # most of the hidden part has a mirrored texel
    error = np.abs(prior - rgb)[inside].mean()
    flat = np.abs(rgb[(hole == 0) & (known > 0)].mean(0) - rgb)[inside].mean()
    assert error < 0.75 * flat, (error, flat)
    # Where nothing is hidden the prior is the picture itself (resampled through the UVs).
    seen = (known > 0) & (hole == 0)
    assert np.abs(prior - rgb)[seen].mean() < 12
    assert not (known[hole == 0] == 0).all()


def test_restore_cards_are_checked(restore_models):
    card = ModelCard.load(restore_models / "sketchfill-restore")
    assert card.task == "restore" and tuple(card.inputs[0].channels) == RESTORE_CHANNELS
    assert (
        card.extra["prior"]
        and not ModelCard.load(restore_models / "restore-noprior").extra["prior"]
    )
    wrong = card.to_dict()
    wrong["inputs"][0]["channels"] = list(wrong["inputs"][0]["channels"][::-1])
    with pytest.raises(ModelCardError):
        ModelCard.from_dict(wrong)
    with pytest.raises(ModelError) as err:
        load_model(restore_models / "sketchfill-restore", task="edit")
    assert "restore" in str(err.value)


def test_restore_changes_only_the_masked_pixels(restore_models):
    model = load_model(restore_models / "sketchfill-restore", task="restore", warmup=0)
    image, mask = portrait(), cheek_mask()
    result = restore.run_restore(model, image, mask, seed=3)
    assert result.box == mask_bbox(mask >= 128)
    out = apply_patch(image, result)
    outside = mask < 128
    assert np.array_equal(out[outside], image[outside])
    assert np.abs(out[~outside].astype(int) - image[~outside]).mean() > 1
    again = restore.run_restore(model, image, mask, seed=3)
    assert np.array_equal(again.patch, result.patch)  # seeded


def test_baselines_and_plain_errors(restore_models):
    image, mask = portrait(), cheek_mask()
    for method in restore.BASELINES:
        result = restore.run_restore(None, image, mask, method=method)
        out = apply_patch(image, result)
        assert np.array_equal(out[mask < 128], image[mask < 128])
    model = load_model(restore_models / "sketchfill-restore", task="restore", warmup=0)
    with pytest.raises(EditError) as err:
        restore.run_restore(model, image, mask * 0)
    assert err.value.code == protocol.EMPTY_MASK
    grey = np.full((300, 300, 4), 128, np.uint8)
    with pytest.raises(EditError) as err:
        restore.run_restore(model, grey, cheek_mask(300))
    assert err.value.code == protocol.NO_FACE and "no face found" in err.value.message


def test_engine_serves_restore_like_in_process(restore_models, echo_model, monkeypatch):
    """Over real sockets: the restore op, sent the region its context asks for, answers
    with the patch the in-process run makes; a faceless picture gets a plain error and the
    engine keeps serving."""
    monkeypatch.setenv("SKETCHFILL_MODELS", str(restore_models))
    image, mask = portrait(), cheek_mask()
    with running_engine(echo_model) as engine, Client(engine.bound_endpoint) as client:
        hello = client.hello(5)
        tool = hello["tools"]["restore"]
        assert tool["model"]["task"] == "restore" and tool["context"]["min_side"] == 2048
        r = edit_region(mask_bbox(mask >= 128), 512, 512, hello, tool="restore")
        assert (r.width, r.height) == (512, 512)  # the whole portrait: the face is in it
        got = client.edit(RestoreRequest(512, 512, r, image, mask, seed=5), timeout=60)
        grey = np.full((300, 300, 4), 128, np.uint8)
        box = edit_region(mask_bbox(cheek_mask(300) >= 128), 300, 300, hello, tool="restore")
        with pytest.raises(Exception) as err:
            client.edit(RestoreRequest(300, 300, box, grey, cheek_mask(300)), timeout=60)
        assert getattr(err.value, "code", None) == protocol.NO_FACE
        assert client.edit(RestoreRequest(512, 512, r, image, mask, seed=5), timeout=60).seed == 5
    model = load_model(restore_models / "sketchfill-restore", task="restore", warmup=0)
    want = restore.run_restore(model, image, mask, seed=5)
    assert (got.x, got.y, got.width, got.height) == (want.x, want.y, *want.patch.shape[1::-1])
    assert np.frombuffer(got.data, np.uint8).tobytes() == want.patch.tobytes()


def test_cli_restore_in_process_baseline_and_errors(restore_models, tmp_path):
    Image.fromarray(cheek_mask()).save(tmp_path / "mask.png")
    base = [*CLI, "restore", str(PORTRAIT), "--mask", str(tmp_path / "mask.png")]
    model = str(restore_models / "sketchfill-restore")
    done = subprocess.run(
        [*base, "-o", str(tmp_path / "net.png"), "--model", model, "--seed", "1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["engine"] == "in-process" and report["seed"] == 1
    telea = subprocess.run(
        [*base, "-o", str(tmp_path / "t.png"), "--method", "telea"], capture_output=True, text=True
    )
    assert telea.returncode == 0 and json.loads(telea.stdout)["engine"] == "telea"
    Image.fromarray(np.zeros((512, 512), np.uint8)).save(tmp_path / "empty.png")
    cmd = [*CLI, "restore", str(PORTRAIT), "--mask", str(tmp_path / "empty.png")]
    empty = subprocess.run(
        [*cmd, "--model", model, "-o", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
    )
    assert empty.returncode == 1 and "selects nothing" in empty.stderr
    assert not (tmp_path / "x.png").exists()


def test_train_restore_resumes_and_export_refuses_junk(restore_models, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(restore_models.parent / "run", run)
    photos = restore_models.parent / "photos"
    more = [*CLI, "train-restore", "--data", str(photos), "--out", str(run), "--steps", "3"]
    done = subprocess.run([*more, "--resume", "--batch", "2"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resumed" in done.stdout and "at step 2" in done.stdout
    saved = torch.load(run / "restore.pt", weights_only=True)
    assert saved["step"] == 3 and saved["config"]["res"] == 64
    wrong = subprocess.run(
        [*CLI, "export-restore", str(tmp_path / "none.pt"), "-o", str(tmp_path / "m")],
        capture_output=True,
        text=True,
    )
    assert wrong.returncode == 1 and "no checkpoint" in wrong.stderr


def test_eval_restore_reports_every_method_per_group(restore_models, tmp_path):
    held_out = restore_models.parent / "photos"
    out = tmp_path / "eval.json"
    cmd = [*CLI, "eval-restore", "--data", str(held_out), "--json", str(out), "--size", "256"]
    cmd += ["--model", str(restore_models / "sketchfill-restore"), "--limit", "1"]
    cmd += ["--ablation", str(restore_models / "restore-noprior"), "--masks", "2"]
    done = subprocess.run([*cmd, "--grid", str(tmp_path / "g.png")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    names = {"telea", "ns", "plain generator", "no prior", "sketchfill restore"}
    assert set(report["methods"]) == names and set(report["groups"]) == {"side", "other"}
    assert [r["kind"] for r in report["per_image"]] == ["side", "hand"]
    for row in report["methods"].values():
        assert row["psnr"] > 0 and row["st_lpips"] >= 0 and 0 <= row["l1"] <= 1
    assert Image.open(tmp_path / "g.png").size == (7 * 256, 2 * 256)


def test_convert_facemesh_makes_the_shipped_onnx_files(tmp_path):
    """The shipped face models are what the converter makes from MediaPipe's wheel (fetched
    once into the weights cache outside the repo)."""
    done = subprocess.run(
        [*CLI, "convert-facemesh", "-o", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for name in ("face_detection.onnx", "face_landmark.onnx"):
        assert (tmp_path / name).read_bytes() == (restore.FACEMESH_DIR / name).read_bytes()


def test_restore_runs_without_opencv_or_torch(restore_models):
    """The installed engine has numpy, Pillow, onnxruntime and pyzmq only: face mesh, prior
    and generator run with those; the OpenCV baselines say what they need."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('cv2', 'torch', 'skimage', 'scipy'):\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np\n"
        "from PIL import Image\n"
        "import sketchfill.tools.restore.commands\n"
        "from sketchfill.tools.restore import infer as restore\n"
        "from sketchfill.pipeline.result import EditError\n"
        "from sketchfill.pipeline.runtime import load_model\n"
        f"image = np.asarray(Image.open({str(PORTRAIT)!r}).convert('RGBA'))\n"
        "mask = np.zeros(image.shape[:2], np.uint8)\n"
        "mask[100:150, 190:220] = 255\n"
        f"model = load_model({str(restore_models / 'sketchfill-restore')!r}, task='restore')\n"
        "print(restore.run_restore(model, image, mask, 1).box)\n"
        "try:\n"
        "    restore.run_restore(None, image, mask, method='telea')\n"
        "except EditError as exc:\n"
        "    print(exc.message)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "Box(x=190, y=100, width=30, height=50)" in done.stdout
    assert "need OpenCV" in done.stdout
