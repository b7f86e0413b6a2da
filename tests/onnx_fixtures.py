"""Tiny ONNX generators of the contract's shape, built with onnx.helper (no torch).

They stand in for the trained model where a test checks plumbing, not quality:
- echo: output = clip(erased image + colour - sketch), so masked pixels take the painted
  colour (grey where unpainted) darkened by strokes, and unmasked ones echo the image;
- slow: the same answer after a long chain of convolutions, for cancel and queue tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sketchfill.pipeline.modelcard import ONNX_FILE, ModelCard, sha256_file


def build_model(folder: Path, resolution: int = 64, slow_convs: int = 0, name: str = "echo"):
    folder.mkdir(parents=True, exist_ok=True)
    r = resolution
    inits = [numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    nodes: list[onnx.NodeProto] = []
    for part, (a, b) in {"image": (0, 3), "sketch": (4, 5), "color": (5, 8)}.items():
        inits += [
            numpy_helper.from_array(np.array([a], np.int64), f"{part}_s"),
            numpy_helper.from_array(np.array([b], np.int64), f"{part}_e"),
        ]
        nodes.append(
            helper.make_node("Slice", ["input", f"{part}_s", f"{part}_e", "axis1"], [part])
        )
    nodes += [
        helper.make_node("Add", ["image", "color"], ["sum"]),
        helper.make_node("Sub", ["sum", "sketch"], ["raw"]),
    ]
    inits += [
        numpy_helper.from_array(np.array(-1.0, np.float32), "lo"),
        numpy_helper.from_array(np.array(1.0, np.float32), "hi"),
    ]
    last = "raw"
    if slow_convs:
        # A chain of wide convolutions whose result is scaled by zero: the answer stays the
        # echo, the run takes long enough to cancel.
        rng = np.random.default_rng(0)
        width = 48
        w0 = rng.standard_normal((width, 9, 3, 3)).astype(np.float32) * 0.05
        inits.append(numpy_helper.from_array(w0, "w0"))
        nodes.append(helper.make_node("Conv", ["input", "w0"], ["c0"], pads=[1, 1, 1, 1]))
        for i in range(1, slow_convs):
            w = rng.standard_normal((width, width, 3, 3)).astype(np.float32) * 0.05
            inits.append(numpy_helper.from_array(w, f"w{i}"))
            nodes.append(
                helper.make_node("Conv", [f"c{i - 1}", f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1])
            )
        wl = np.zeros((3, width, 1, 1), np.float32)
        inits.append(numpy_helper.from_array(wl, "wl"))
        nodes += [
            helper.make_node("Conv", [f"c{slow_convs - 1}", "wl"], ["zero"]),
            helper.make_node("Add", ["raw", "zero"], ["slow"]),
        ]
        last = "slow"
    nodes.append(helper.make_node("Clip", [last, "lo", "hi"], ["output"]))
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 9, r, r])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, r, r])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = folder / ONNX_FILE
    onnx.save(model, path)
    card = ModelCard.for_generator(
        name=name,
        version="0.0.0-test",
        resolution=r,
        sha256=sha256_file(path),
        description="test fixture",
    )
    card.save(folder)
    return folder
