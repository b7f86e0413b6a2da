"""Convert MediaPipe's face detector and face-mesh .tflite models to ONNX.

The restore tool needs 468 face-mesh landmarks at run time, and the engine runs ONNX only.
MediaPipe's wheels carry the two small models (Apache-2.0); the generic converters here
either fail on their float16 weights or need TensorFlow, and both graphs use only a
handful of operators, so this reads the flatbuffer and writes the same graph in NCHW.
Build-time only (needs the `tflite` and `onnx` packages of the train extra): the converted
files ship in engine/assets/facemesh; `sketchfill convert-facemesh` makes them again.
Checked against the TFLite interpreter when they were made (max |difference| 5e-5 for the
detector's outputs, 1.2e-4 for the mesh's, on values up to ~150).
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

import numpy as np

HELP = "convert MediaPipe's face detector and face mesh (.tflite, from its wheel) to ONNX"
WHEEL = "mediapipe==0.10.14"

WHEEL_MEMBERS = {
    "face_detection.onnx": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "face_landmark.onnx": "mediapipe/modules/face_landmark/face_landmark.tflite",
}
_DTYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}
_ACTIVATIONS = {0: None, 1: "Relu", 3: "Clip6"}


class _Graph:
    """The ONNX nodes being written; 4-D tensors are NCHW, the rest keep TFLite's shape."""

    def __init__(self, model, subgraph) -> None:
        import onnx.helper  # noqa: F401  (fail early with the import error)

        self.model, self.g = model, subgraph
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}
        self.consts: dict[int, np.ndarray] = {}

    def name(self, index: int) -> str:
        return f"t{index}"

    def tensor(self, index: int):
        return self.g.Tensors(index)

    def constant(self, index: int) -> np.ndarray | None:
        if index in self.consts:
            return self.consts[index]
        t = self.tensor(index)
        data = self.model.Buffers(t.Buffer()).DataAsNumpy()
        if isinstance(data, int) or data.size == 0:
            return None
        shape = tuple(int(s) for s in t.ShapeAsNumpy())
        return np.frombuffer(data.tobytes(), dtype=_DTYPES[t.Type()]).reshape(shape)

    def add_init(self, name: str, value: np.ndarray) -> str:
        self.inits[name] = value
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], **attrs))

    def activation(self, kind: int, tmp: str, out: str) -> None:
        act = _ACTIVATIONS[kind]
        if act is None:
            self.node("Identity", [tmp], out)
        elif act == "Relu":
            self.node("Relu", [tmp], out)
        else:
            lo = self.add_init(out + "_lo", np.array(0, np.float32))
            hi = self.add_init(out + "_hi", np.array(6, np.float32))
            self.node("Clip", [tmp, lo, hi], out)


def _same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _spatial(graph: _Graph, index: int) -> tuple[int, int]:
    shape = graph.tensor(index).ShapeAsNumpy()
    return int(shape[1]), int(shape[2])


def _conv(graph: _Graph, op, depthwise: bool) -> None:
    import tflite

    opts_cls = tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions
    opts = opts_cls()
    table = op.BuiltinOptions()
    opts.Init(table.Bytes, table.Pos)
    x, w, b = op.Inputs(0), op.Inputs(1), op.Inputs(2)
    weight = graph.constant(w).astype(np.float32)
    if depthwise:  # [1, kh, kw, c*m] -> [c*m, 1, kh, kw]
        weight = weight.transpose(3, 0, 1, 2)
        group = int(graph.tensor(x).ShapeAsNumpy()[3])
    else:  # [o, kh, kw, i] -> [o, i, kh, kw]
        weight = weight.transpose(0, 3, 1, 2)
        group = 1
    kh, kw = weight.shape[2], weight.shape[3]
    sh, sw = opts.StrideH(), opts.StrideW()
    dh, dw = opts.DilationHFactor(), opts.DilationWFactor()
    h, wd = _spatial(graph, x)
    if opts.Padding() == tflite.Padding.SAME:
        (t, bt), (lft, r) = _same_pads(h, kh, sh, dh), _same_pads(wd, kw, sw, dw)
    else:
        t = bt = lft = r = 0
    out = graph.name(op.Outputs(0))
    inputs = [graph.name(x), graph.add_init(f"w{w}", weight)]
    if b >= 0:
        inputs.append(graph.add_init(f"b{b}", graph.constant(b).astype(np.float32)))
    graph.node(
        "Conv",
        inputs,
        out + "_pre",
        kernel_shape=[kh, kw],
        strides=[sh, sw],
        dilations=[dh, dw],
        pads=[t, lft, bt, r],
        group=group,
    )
    graph.activation(opts.FusedActivationFunction(), out + "_pre", out)


def _max_pool(graph: _Graph, op) -> None:
    import tflite

    opts = tflite.Pool2DOptions()
    table = op.BuiltinOptions()
    opts.Init(table.Bytes, table.Pos)
    x = op.Inputs(0)
    kh, kw, sh, sw = opts.FilterHeight(), opts.FilterWidth(), opts.StrideH(), opts.StrideW()
    h, w = _spatial(graph, x)
    if opts.Padding() == tflite.Padding.SAME:
        (t, bt), (lft, r) = _same_pads(h, kh, sh), _same_pads(w, kw, sw)
    else:
        t = bt = lft = r = 0
    graph.node(
        "MaxPool",
        [graph.name(x)],
        graph.name(op.Outputs(0)),
        kernel_shape=[kh, kw],
        strides=[sh, sw],
        pads=[t, lft, bt, r],
    )


def _pad(graph: _Graph, op) -> None:
    pads = graph.constant(op.Inputs(1)).astype(np.int64)  # NHWC rows of (before, after)
    nchw = pads[[0, 3, 1, 2]]
    onnx_pads = np.concatenate([nchw[:, 0], nchw[:, 1]])
    p = graph.add_init(f"pads{op.Outputs(0)}", onnx_pads)
    graph.node("Pad", [graph.name(op.Inputs(0)), p], graph.name(op.Outputs(0)))


def _prelu(graph: _Graph, op) -> None:
    alpha = graph.constant(op.Inputs(1)).astype(np.float32)
    slope = alpha.reshape(-1, alpha.shape[-1]).mean(axis=0)
    if not np.allclose(alpha.reshape(-1, alpha.shape[-1]), slope):
        raise ValueError("PRELU with a per-position slope is not supported")
    s = graph.add_init(f"slope{op.Inputs(1)}", slope.reshape(-1, 1, 1))
    graph.node("PRelu", [graph.name(op.Inputs(0)), s], graph.name(op.Outputs(0)))


def _add(graph: _Graph, op) -> None:
    import tflite

    opts = tflite.AddOptions()
    table = op.BuiltinOptions()
    opts.Init(table.Bytes, table.Pos)
    out = graph.name(op.Outputs(0))
    graph.node("Add", [graph.name(op.Inputs(0)), graph.name(op.Inputs(1))], out + "_pre")
    graph.activation(opts.FusedActivationFunction(), out + "_pre", out)


def _reshape(graph: _Graph, op) -> None:
    src = op.Inputs(0)
    name = graph.name(src)
    if len(graph.tensor(src).ShapeAsNumpy()) == 4:  # back to TFLite's element order
        graph.node("Transpose", [name], name + "_nhwc", perm=[0, 2, 3, 1])
        name += "_nhwc"
    shape = graph.tensor(op.Outputs(0)).ShapeAsNumpy().astype(np.int64)
    s = graph.add_init(f"shape{op.Outputs(0)}", shape)
    graph.node("Reshape", [name, s], graph.name(op.Outputs(0)))


def _concat(graph: _Graph, op) -> None:
    import tflite

    opts = tflite.ConcatenationOptions()
    table = op.BuiltinOptions()
    opts.Init(table.Bytes, table.Pos)
    if len(graph.tensor(op.Outputs(0)).ShapeAsNumpy()) == 4:
        raise ValueError("4-D CONCATENATION is not supported")
    inputs = [graph.name(op.Inputs(i)) for i in range(op.InputsLength())]
    graph.node("Concat", inputs, graph.name(op.Outputs(0)), axis=opts.Axis())


def tflite_to_onnx(data: bytes, producer: str):
    """The ONNX model (NCHW float input) equivalent to a MediaPipe .tflite graph."""
    import tflite
    from onnx import TensorProto, checker, helper, numpy_helper

    model = tflite.Model.GetRootAsModel(data, 0)
    g = model.Subgraphs(0)
    graph = _Graph(model, g)
    ops = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    handlers = {
        "CONV_2D": lambda op: _conv(graph, op, depthwise=False),
        "DEPTHWISE_CONV_2D": lambda op: _conv(graph, op, depthwise=True),
        "MAX_POOL_2D": lambda op: _max_pool(graph, op),
        "PAD": lambda op: _pad(graph, op),
        "PRELU": lambda op: _prelu(graph, op),
        "ADD": lambda op: _add(graph, op),
        "RESHAPE": lambda op: _reshape(graph, op),
        "CONCATENATION": lambda op: _concat(graph, op),
        "RELU": lambda op: graph.node(
            "Relu", [graph.name(op.Inputs(0))], graph.name(op.Outputs(0))
        ),
    }
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        kind = ops[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
        if kind == "DEQUANTIZE":  # float16 weights: keep them as float32 constants
            graph.consts[op.Outputs(0)] = graph.constant(op.Inputs(0)).astype(np.float32)
            continue
        if kind not in handlers:
            raise ValueError(f"unsupported TFLite operator {kind}")
        handlers[kind](op)

    inp = g.Tensors(g.Inputs(0))
    n, h, w, c = (int(s) for s in inp.ShapeAsNumpy())
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [n, c, h, w])]
    graph.nodes.insert(0, helper.make_node("Identity", ["input"], [graph.name(g.Inputs(0))]))
    outputs = []
    for i in range(g.OutputsLength()):
        idx = g.Outputs(i)
        label = g.Tensors(idx).Name().decode()
        graph.node("Identity", [graph.name(idx)], label)
        shape = [int(v) for v in g.Tensors(idx).ShapeAsNumpy()]
        if len(shape) == 4:
            shape = [shape[0], shape[3], shape[1], shape[2]]
        outputs.append(helper.make_tensor_value_info(label, TensorProto.FLOAT, shape))
    inits = [numpy_helper.from_array(v, k) for k, v in graph.inits.items()]
    onnx_graph = helper.make_graph(graph.nodes, "mediapipe", inputs, outputs, inits)
    result = helper.make_model(
        onnx_graph, producer_name=producer, opset_imports=[helper.make_opsetid("", 13)]
    )
    result.ir_version = 8
    checker.check_model(result)
    return result


def convert_wheel(wheel: Path, out_dir: Path) -> list[Path]:
    """Write the face detector and face-mesh ONNX models from a mediapipe wheel."""
    import onnx

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with zipfile.ZipFile(wheel) as zf:
        for target, member in WHEEL_MEMBERS.items():
            model = tflite_to_onnx(zf.read(member), producer=f"sketchfill from {member}")
            path = out_dir / target
            tmp = path.with_suffix(".onnx.part")
            onnx.save(model, tmp)
            tmp.replace(path)
            written.append(path)
    return written


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wheel", type=Path, help=f"a mediapipe wheel (default: {WHEEL}, fetched with pip)"
    )
    p.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "assets" / "facemesh",
        help="where to write the .onnx files (default: the engine's assets)",
    )


def run(args: argparse.Namespace) -> int:
    from .weights import WeightsError, wheel

    try:
        source = args.wheel or wheel(WHEEL)
        written = convert_wheel(source, args.out)
    except (WeightsError, ValueError, OSError, KeyError) as exc:
        print(f"sketchfill convert-facemesh: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0
