"""What every tool's export shares: ONNX export of small networks checked against torch,
ONNX Runtime timing as the engine runs it, reading checkpoints, and publishing a model
folder so that readers never see half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from ..pipeline.modelcard import INPUT_NAME, OUTPUT_NAME

# What the measured facts in docs/ARCHITECTURE.md assume; the card's latency is measured so.
ORT_THREADS = 2


class ExportError(RuntimeError):
    pass


def export_onnx(gen: torch.nn.Module, res: int, path: Path, opset: int) -> None:
    """A gated generator (the edit tool's, or restore's, which is the same network): one
    9-channel input, one RGB output, every dilation with explicit pads."""
    import onnx

    x = torch.zeros(1, 9, res, res)
    # The TorchScript exporter: ~10x faster than the dynamo one here, and its graph is the
    # same after ORT's optimiser; the dynamo exporter of torch 2.13 writes opset-18 Split
    # attributes into opset-17 graphs, which ORT rejects. Pads are explicit either way (ORT
    # rejects dilation with auto_pad SAME; checked below).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            gen,
            (x,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamo=False,
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name == "auto_pad" and attr.s not in (b"", b"NOTSET"):
                raise ExportError(f"{node.name} uses auto_pad {attr.s!r}")


def ort_session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = ORT_THREADS
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_run(session, x: np.ndarray) -> np.ndarray:
    return np.concatenate([session.run(None, {INPUT_NAME: xi[None]})[0] for xi in x])


def latency_ms(session, x: np.ndarray | dict[str, np.ndarray], runs: int = 7) -> float:
    """Median per-run latency after two warm-up runs (the first runs cost 1.5-3x); x is a
    batch for the single input, or one run's feeds by input name."""
    feed = x if isinstance(x, dict) else {INPUT_NAME: x[:1]}
    for _ in range(2):
        session.run(None, feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - t)
    return round(float(np.median(times)) * 1000, 1)


@contextmanager
def staged_model(out_root: Path, name: str) -> Iterator[Path]:
    """A private folder beside out_root/name to write a model into; published over
    out_root/name (renames only) when the block ends without an error, else removed."""
    out_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_root))
    try:
        yield staging
        publish(staging, out_root / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def export_checked(
    net: torch.nn.Module,
    samples: list[dict[str, np.ndarray]],
    output_names: list[str],
    path: Path,
    opset: int,
    tolerance: float,
) -> tuple[float, float]:
    """A small network (inputs named as in `samples`) to ONNX at `path`, checked by onnx,
    then against torch on `samples` (ExportError above `tolerance`) and timed with ONNX
    Runtime. Returns (max |torch - onnxruntime|, median latency in ms)."""
    import onnx

    names = list(samples[0])
    example = tuple(torch.zeros(samples[0][n].shape) for n in names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            example,
            str(path),
            input_names=names,
            output_names=output_names,
            opset_version=opset,
            dynamo=False,
        )
    onnx.checker.check_model(onnx.load(str(path)))
    session = ort_session(path)
    diff = 0.0
    with torch.no_grad():
        for feed in samples:
            ref = [t.numpy() for t in net(*(torch.from_numpy(feed[n]) for n in names))]
            got = session.run(None, feed)
            diff = max(diff, *(float(np.abs(r - g).max()) for r, g in zip(ref, got)))
    print(f"parity: max |torch - onnxruntime| = {diff:.2e} (tolerance {tolerance:g})")
    if not diff <= tolerance:
        raise ExportError(f"ONNX output differs from torch by {diff:.2e}")
    return diff, latency_ms(session, samples[0])


def read_checkpoint(path: Path, load) -> dict:
    """`load(path)` of a small network's checkpoint, its failures as ExportError."""
    if not path.is_file():
        raise ExportError(f"no checkpoint at {path}")
    try:
        return load(path)
    except ValueError as exc:
        raise ExportError(str(exc)) from None


def publish(staging: Path, target: Path) -> None:
    """Replace `target` by `staging` with renames only, so readers never see half a model.
    Temporary folders and files are created private (0700/0600); a model is not."""
    staging.chmod(0o755)
    for f in staging.iterdir():
        f.chmod(0o644)
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)
