"""`sketchfill eval`: fixed inputs per image, the model through the engine's edit pipeline,
OpenCV baselines side by side, metrics inside the mask."""

from __future__ import annotations

import json
import math

import numpy as np
from PIL import Image
from sketchfill.tools.edit import evaluate
from sketchfill.training.metrics import color_de, masked_psnr, sketch_f1
from train_helpers import run_eval, tiny_model


def test_eval_compares_the_model_with_opencv(tmp_path, capsys):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert run_eval(first, "--model", str(tiny_model())) == 0
    table = capsys.readouterr().out
    assert "sketchfill" in table and "telea" in table and "psnr" in table
    result = json.loads(first.read_text())
    assert set(result["methods"]) == {"sketchfill", "telea", "ns"}
    for metrics in result["methods"].values():
        assert set(metrics) == set(evaluate.METRICS)
        assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())
        assert 0 <= metrics["ssim"] <= 1 and 0 <= metrics["sketch_f1"] <= 1
    assert result["images"] == 2 and len(result["per_image"]) == 2
    assert result["model"]["name"] == "tiny"
    # Same masks, sketches and colours every run: the deterministic baselines repeat exactly.
    grid = tmp_path / "grid.png"
    assert run_eval(second, "--grid", str(grid), "--grid-rows", "1") == 0
    sheet = np.asarray(Image.open(grid))
    assert sheet.shape == (256, 6 * 256, 3)  # input, sketch, colour, telea, ns, truth
    truth = sheet[:, 5 * 256 :].astype(int)
    assert np.abs(sheet[:, 3 * 256 : 4 * 256].astype(int) - truth).mean() < 20  # telea
    assert np.abs(sheet[:, :256].astype(int) - truth).mean() > 1  # erased where masked
    again = json.loads(second.read_text())
    assert set(again["methods"]) == {"telea", "ns"}
    assert again["methods"]["telea"] == result["methods"]["telea"]
    assert [r["mask_area"] for r in again["per_image"]] == [
        r["mask_area"] for r in result["per_image"]
    ]


def test_metrics_reward_the_truth():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[16:48, 16:48] = True
    assert masked_psnr(truth, truth, mask) >= 99
    assert masked_psnr(255 - truth, truth, mask) < 10
    assert color_de(truth, truth.astype(np.float32), mask) < 1e-3
    assert color_de(255 - truth, truth.astype(np.float32), mask) > 20
    lines = np.zeros((64, 64), np.float32)
    lines[32, 16:48] = 1
    edges = np.zeros((64, 64), np.float32)
    edges[31:34, 10:54] = 0.9  # a thick soft edge along the same line
    assert sketch_f1(edges, lines, mask, tol=2) > 0.9
    elsewhere = np.zeros_like(edges)
    elsewhere[18:21, 10:54] = 0.9
    assert sketch_f1(elsewhere, lines, mask, tol=2) == 0.0
    assert math.isnan(sketch_f1(edges, np.zeros_like(lines), mask, tol=2))
