"""`sketchfill export`: ONNX graph, parity with torch, model card, int8 variant."""

from __future__ import annotations

import json

import numpy as np
import onnx
from sketchfill.pipeline.modelcard import ModelCard, sha256_file
from sketchfill.pipeline.runtime import load_generator
from sketchfill.tools.edit import export
from train_helpers import export_args, tiny_model, tiny_run, workdir


def test_export_writes_a_model_the_engine_loads():
    folder = tiny_model()
    card = ModelCard.load(folder)
    assert card.resolution == 64 and card.sha256 == sha256_file(folder / "model.onnx")
    assert card.training["steps"] == 2 and card.training["images"] == 4
    assert "non-commercial" in card.training["licence"] and "HED" in card.training["vgg16"]
    assert any("perceptual" in loss for loss in card.training["losses"])
    assert card.extra["parity_max_abs_diff"] <= 1e-3 and card.extra["latency_ms"] > 0
    graph = onnx.load(str(folder / "model.onnx"))
    assert graph.opset_import[0].version >= 17
    for node in graph.graph.node:
        for attr in node.attribute:
            assert attr.name != "auto_pad" or attr.s in (b"", b"NOTSET")
    dilated = [
        n
        for n in graph.graph.node
        if n.op_type == "Conv"
        and any(a.name == "dilations" and max(a.ints) > 1 for a in n.attribute)
    ]
    assert len(dilated) >= 3
    assert all(any(a.name == "pads" and max(a.ints) > 1 for a in n.attribute) for n in dilated)
    model = load_generator(folder)
    x = np.zeros((1, 9, 64, 64), np.float32)
    (y,) = model.run({"input": x})
    assert y.shape == (1, 3, 64, 64) and np.abs(y).max() <= 1


def test_int8_export_and_metrics_in_the_card(tmp_path):
    metrics = tmp_path / "eval.json"
    metrics.write_text(
        json.dumps(
            {"methods": {"sketchfill": {"psnr": 30.0}}, "images": 2, "per_image": [{"file": "x"}]}
        )
    )
    args = export_args(
        tiny_run(),
        tmp_path,
        "--name",
        "m",
        "--int8",
        "--calib-count",
        "4",
        "--metrics",
        str(metrics),
    )
    assert export.run(args) == 0
    card = ModelCard.load(tmp_path / "m")
    assert card.metrics["methods"]["sketchfill"]["psnr"] == 30.0
    assert "per_image" not in card.metrics and card.metrics["images"] == 2
    assert (tmp_path / "m").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "m" / "model.json").stat().st_mode & 0o777 == 0o644
    q = ModelCard.load(tmp_path / "m-int8")
    assert q.name == "m-int8" and q.sha256 == sha256_file(tmp_path / "m-int8" / "model.onnx")
    quant = q.extra["quantization"]
    assert quant["psnr_vs_fp32_in_mask_db"] > 20 and quant["speedup_vs_fp32"] > 0
    graph = onnx.load(str(tmp_path / "m-int8" / "model.onnx")).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    weights = {i.name: i for i in graph.initializer}
    scales = [
        weights[n.input[1]]
        for n in graph.node
        if n.op_type == "DequantizeLinear"
        and n.input[0] in weights
        and weights[n.input[0]].data_type == onnx.TensorProto.INT8
    ]
    assert scales and all(len(s.dims) == 1 and s.dims[0] > 1 for s in scales)  # per channel
    load_generator(tmp_path / "m-int8")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_export_refuses_a_graph_outside_tolerance(capsys):
    out = workdir() / "refused"
    args = export_args(tiny_run() / "last.pt", out, "--name", "bad", "--tolerance", "-1")
    assert export.run(args) == 1
    assert "parity" in capsys.readouterr().out
    assert not (out / "bad").exists() and not list(out.iterdir())


def test_export_without_images_uses_synthetic_inputs(tmp_path):
    args = export_args(tiny_run(), tmp_path, "--name", "s")
    args.calib_data = tmp_path / "nowhere"
    assert export.run(args) == 0
    assert ModelCard.load(tmp_path / "s").extra["parity_inputs"] == "synthetic"
    args.int8 = True  # calibration needs real images
    assert export.run(args) == 1
