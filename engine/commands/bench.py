"""`sketchfill bench`: the figures behind the README's performance claims, in one run.

Everything is measured on this machine in the same run, so the ratios hold even where the
absolute times drift:
- generator latency at 256 and 512 with ONNX Runtime (as the engine runs it) and with
  PyTorch eager on the same weights (when torch is installed), fp32 and int8 if exported;
- one edit of a 512-px masked region on canvases of 1-50 megapixels, through a real engine
  process over ZeroMQ against the same edit in process (the protocol's overhead), the two
  interleaved run by run;
- throughput with 1, 2 and 4 concurrent clients, time to the first progress event, and
  the engine process's peak memory;
- auto tone of whole 1-50 megapixel photos, in process and through the engine, beside the
  fixed algorithm (same full-size application, no network) as the baseline;
- composite of a face a quarter of the photo's width on 1-50 megapixel photos, in process
  and through the engine, beside the three classic steps (alpha paste, Poisson, Reinhard);
- restore of a hand over the demo portrait's face, the portrait scaled to 1-50 megapixels,
  in process and through the engine, beside its parts (face mesh, prior) and OpenCV's
  Telea and Navier-Stokes inpainting;
- the first result as a plug-in gets it: cold (no engine runs, the client auto-starts one
  with client.json's settings, as GIMP and Krita do) and warm (the engine runs, the client
  connects afresh, as each plug-in request does), from pressing Generate to the pixels.
  `--first-result-only` measures just this.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..pipeline.modelcard import write_atomic
from ..pipeline.preprocess import EditInputs, mask_bbox
from ..pipeline.runtime import Model, ModelError, available_threads, load_model, resolve_model_dir
from ..tools.composite.infer import BASELINES, DEFAULT_COMPOSITE_MODEL, run_composite
from ..tools.edit.infer import run_edit
from ..tools.restore.infer import BASELINES as RESTORE_BASELINES
from ..tools.restore.infer import DEFAULT_RESTORE_MODEL, face_finder, run_restore
from ..tools.tone.infer import DEFAULT_TONE_MODEL, run_tone
from ..wire.client import Client
from ..wire.config import ClientConfig
from ..wire.errors import EngineError
from ..wire.launch import connect
from ..wire.protocol import Box
from ..wire.requests import CompositeRequest, EditRequest, RestoreRequest, ToneRequest, edit_region
from . import bench_hardening as hardening

HELP = "measure generator latency, protocol overhead, throughput and engine memory"
CANVAS_MEGAPIXELS = (1, 12, 24, 50)
REGION = 512


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model folder or name (default: sketchfill-face)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    p.add_argument("--repeat", type=int, default=15, help="timed runs per figure (%(default)s)")
    p.add_argument("--threads", type=int, help="ONNX Runtime threads (default: all cores)")
    p.add_argument(
        "--quick", action="store_true", help="fewer runs and canvases (a smoke test, not figures)"
    )
    p.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="another edit model folder timed beside the served one (e.g. the previous release)",
    )
    p.add_argument(
        "--first-result-only",
        action="store_true",
        help="measure only the cold and warm first result through an auto-started engine",
    )
    p.add_argument(
        "--cold-runs", type=int, default=3, help="engine starts for the cold figure (%(default)s)"
    )
    p.add_argument(
        "--hardening",
        action="store_true",
        help="instead: hostile clients, fairness, memory, cancel, shutdown (bench_hardening.py)",
    )
    hardening.add_arguments(p)


def run(args: argparse.Namespace) -> int:
    if args.hardening:
        return hardening.run(args)
    repeat = 3 if args.quick else args.repeat
    threads = args.threads or available_threads()
    folder = resolve_model_dir(args.model)
    cold_runs = 1 if args.quick else args.cold_runs
    if args.first_result_only:
        report = {"first_result": first_result(args.model, cold_runs, max(3, repeat // 3))}
        print_first_result(report["first_result"])
        if args.json:
            write_atomic(args.json, (json.dumps(report, indent=2) + "\n").encode())
        return 0
    model = load_model(folder, threads=threads)
    report: dict[str, Any] = {
        "model": model.describe(),
        "threads": threads,
        "repeat": repeat,
        "generator": generator_latency(folder, threads, repeat, args.baseline),
        # first, while nothing else of this run is loaded or warm
        "first_result": first_result(args.model, cold_runs, max(3, repeat // 3)),
    }
    canvases = CANVAS_MEGAPIXELS[:2] if args.quick else CANVAS_MEGAPIXELS
    with engine_process(folder, threads) as (endpoint, pid):
        report["edit"] = edit_overhead(model, endpoint, canvases, repeat)
        report["throughput"] = throughput(endpoint, (1, 2, 4), 2 if args.quick else 6)
        report["first_progress_ms"] = first_progress(endpoint, repeat)
        report["engine_peak_rss_mb"] = peak_rss_mb(pid)
        try:
            tone_model = load_model(DEFAULT_TONE_MODEL, task="tone", threads=threads)
        except ModelError as exc:
            print(f"(auto tone not measured: {exc.message})")
        else:
            report["tone"] = tone_speed(tone_model, endpoint, canvases, max(3, repeat // 3))
        try:
            composite_model = load_model(DEFAULT_COMPOSITE_MODEL, task="composite", threads=threads)
        except ModelError as exc:
            print(f"(composite not measured: {exc.message})")
        else:
            report["composite"] = composite_speed(
                composite_model, endpoint, canvases, max(3, repeat // 3)
            )
        try:
            restore_model = load_model(DEFAULT_RESTORE_MODEL, task="restore", threads=threads)
        except ModelError as exc:
            print(f"(restore not measured: {exc.message})")
        else:
            report["restore"] = restore_speed(
                restore_model, endpoint, canvases, max(3, repeat // 3)
            )
    print_report(report)
    if args.json:
        write_atomic(args.json, (json.dumps(report, indent=2) + "\n").encode())
    return 0


# -- measurements --------------------------------------------------------------------------


def timed_pair(
    fns: dict[str, Callable[[], object]], repeat: int, warmup: int = 2
) -> dict[str, dict[str, float]]:
    """Median and p95 of each function, the runs interleaved (a, b, a, b, ...) so that
    drift in the machine's speed (clock, other load) falls on all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
    out = {}
    for name, runs in samples.items():
        runs.sort()
        p95 = runs[min(len(runs) - 1, round(0.95 * (len(runs) - 1)))]
        out[name] = {"median_s": statistics.median(runs), "p95_s": p95}
    return out


# SC-FEGAN's own generator widths (64-channel base); ours serves at half that.
PAPER_WIDTH = 64


def generator_latency(
    folder: Path, threads: int, repeat: int, baseline: Path | None = None
) -> dict[str, Any]:
    """The generator alone at 256 and 512 px: ONNX Runtime vs PyTorch eager, fp32 vs int8,
    beside a paper-width generator (random weights, exported by the same code) and an
    optional baseline model, timed in the same run so that ratios hold across machines."""
    import tempfile

    from ..pipeline.runtime import session_options

    out: dict[str, Any] = {}
    sources = {"fp32": folder / "model.onnx"}
    int8 = folder.parent / f"{folder.name}-int8" / "model.onnx"
    if int8.is_file():
        sources["int8"] = int8
    if baseline is not None:
        sources["baseline"] = Path(baseline) / "model.onnx"
    scratch = tempfile.TemporaryDirectory(prefix="sketchfill-bench-")
    paper = _paper_width_graph(Path(scratch.name))
    if paper is not None:
        sources["paper_width"] = paper
    eager = _torch_eager(folder / "model.onnx", threads)
    for res in (256, 512):
        x = np.random.default_rng(0).standard_normal((1, 9, res, res)).astype(np.float32)
        feed = {"input": x}
        runs: dict[str, Callable[[], object]] = {}
        for kind, path in sources.items():
            session = _session_at(path, res, session_options(threads))
            runs[f"onnxruntime_{kind}"] = lambda s=session, f=feed: s.run(None, f)
        if eager is not None:
            runs["torch_eager_fp32"] = lambda x=x: eager(x)
        # One after another, not interleaved: PyTorch's OpenMP threads spin on after a run
        # and would slow whatever runs next.
        row: dict[str, Any] = {}
        for name, fn in runs.items():
            row.update(timed_pair({name: fn}, repeat))
        if eager is not None:
            row["ort_speedup_vs_torch"] = (
                row["torch_eager_fp32"]["median_s"] / row["onnxruntime_fp32"]["median_s"]
            )
        fp32 = row["onnxruntime_fp32"]["median_s"]
        if "onnxruntime_int8" in row:
            row["int8_speedup"] = fp32 / row["onnxruntime_int8"]["median_s"]
        # How many times faster the served fp32 model is than each reference.
        for kind in ("paper_width", "baseline"):
            if f"onnxruntime_{kind}" in row:
                row[f"speedup_vs_{kind}"] = row[f"onnxruntime_{kind}"]["median_s"] / fp32
        out[str(res)] = row
    scratch.cleanup()
    return out


def _paper_width_graph(folder: Path) -> Path | None:
    """A generator of SC-FEGAN's widths with random weights as ONNX, or None without torch."""
    try:
        import torch

        from ..tools.edit.model import Generator
        from ..training.exporting import export_onnx
    except ImportError:
        return None
    torch.manual_seed(0)
    path = folder / "paper-width.onnx"
    export_onnx(Generator(PAPER_WIDTH).eval(), 512, path, 17)
    return path


def _session_at(path: Path, res: int, options):
    """A session of a fully convolutional model at another square size: the graph's input
    and output dims are rewritten, weights untouched."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(path))
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        dims[2].dim_value, dims[3].dim_value = res, res
    del model.graph.value_info[:]
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _torch_eager(path: Path, threads: int):
    """The same weights in PyTorch eager mode, or None without torch or a known graph."""
    try:
        import torch

        from ..tools.edit.model import generator_from_onnx
    except ImportError:
        return None
    gen = generator_from_onnx(path)
    if gen is None:
        return None
    torch.set_num_threads(threads)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return gen(torch.from_numpy(x)).numpy()

    return run


def canvas_inputs(megapixels: float, seed: int = 0) -> EditInputs:
    """A 4:3 canvas of that size with a REGION-px round mask in the middle."""
    height = int((megapixels * 1e6 * 3 / 4) ** 0.5)
    width = int(megapixels * 1e6 / height)
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 4), np.uint8)
    image[..., 3] = 255
    mask = np.zeros((height, width), np.uint8)
    cy, cx, r = height // 2, width // 2, REGION // 2
    yy, xx = np.ogrid[cy - r : cy + r, cx - r : cx + r]
    mask[cy - r : cy + r, cx - r : cx + r] = (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r) * 255
    return EditInputs(image, mask)


def request_for(inputs: EditInputs, hello: dict[str, Any], seed: int) -> EditRequest:
    """What a plug-in sends: the pixels of the rectangle the engine reads, nothing more."""
    height, width = inputs.mask.shape
    bbox = mask_bbox(inputs.regenerate)
    assert bbox is not None
    r = edit_region(bbox, width, height, hello)
    return EditRequest(
        width,
        height,
        r,
        np.ascontiguousarray(inputs.image[r.y : r.y1, r.x : r.x1]),
        np.ascontiguousarray(inputs.mask[r.y : r.y1, r.x : r.x1]),
        seed=seed,
    )


def edit_overhead(model: Model, endpoint: str, canvases, repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with Client(endpoint) as client:
        hello = client.hello(5)
        for mp in canvases:
            inputs = canvas_inputs(mp)
            t = timed_pair(
                {
                    "in_process": lambda i=inputs: run_edit(model, i, seed=1),
                    "engine": lambda i=inputs: client.edit(request_for(i, hello, 1)),
                },
                repeat,
            )
            overhead = t["engine"]["median_s"] / t["in_process"]["median_s"] - 1.0
            out[f"{mp}MP"] = {**t, "overhead": overhead}
    return out


def throughput(endpoint: str, concurrency: tuple[int, ...], per_client: int) -> dict[str, Any]:
    inputs = canvas_inputs(1)
    out: dict[str, Any] = {}
    with Client(endpoint) as probe:
        hello = probe.hello(5)
    request = request_for(inputs, hello, 1)
    errors: list[BaseException] = []

    def client_loop() -> None:
        try:
            with Client(endpoint) as c:
                for _ in range(per_client):
                    c.edit(request, timeout=120)
        except (EngineError, OSError) as exc:
            errors.append(exc)

    for n in concurrency:
        workers = [threading.Thread(target=client_loop) for _ in range(n)]
        t0 = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        elapsed = time.perf_counter() - t0
        if errors:
            raise RuntimeError(f"clients failed during the throughput run: {errors[0]}")
        out[str(n)] = {"edits_per_s": n * per_client / elapsed, "seconds": elapsed}
    return out


def tone_speed(model: Model, endpoint: str, canvases, repeat: int) -> dict[str, Any]:
    """Whole-photo auto tone: network in process, network via the engine (the full photo
    travels both ways), and the fixed algorithm in process."""
    out = {}
    with Client(endpoint) as client:
        for mp in canvases:
            image = canvas_inputs(mp).image
            h, w = image.shape[:2]
            request = ToneRequest(w, h, Box(0, 0, w, h), image)
            times = timed_pair(
                {
                    "network": lambda image=image: run_tone(model, image),
                    "engine": lambda request=request: client.edit(request, timeout=300),
                    "fixed": lambda image=image: run_tone(None, image),
                },
                repeat,
                warmup=1,
            )
            times["megapixels_per_s"] = w * h / 1e6 / times["network"]["median_s"]
            out[f"{mp}MP"] = times
    return out


def oval_face(image: np.ndarray) -> np.ndarray:
    """A face layer for timing: an oval a quarter of the photo's width, recoloured."""
    h, w = image.shape[:2]
    face = image.copy()
    face[..., :3] = image[..., :3] // 2 + 40
    yy, xx = np.ogrid[0:h, 0:w]
    inside = ((yy - h / 2) / (w / 6)) ** 2 + ((xx - w / 2) / (w / 8)) ** 2 < 1
    face[..., 3] = np.where(inside, 255, 0).astype(np.uint8)
    return face


def composite_speed(model: Model, endpoint: str, canvases, repeat: int) -> dict[str, Any]:
    """A face composite: network in process, via the engine (the region travels), and the
    three classic steps in process."""
    out = {}
    with Client(endpoint) as client:
        hello = client.hello(5)
        for mp in canvases:
            image = canvas_inputs(mp).image
            face = oval_face(image)
            h, w = image.shape[:2]
            r = edit_region(mask_bbox(face[..., 3] > 0), w, h, hello, tool="composite")
            cut = [np.ascontiguousarray(a[r.y : r.y1, r.x : r.x1]) for a in (image, face)]
            request = CompositeRequest(w, h, r, *cut)
            fns: dict[str, Callable[[], object]] = {
                "network": lambda image=image, face=face: run_composite(model, image, face),
                "engine": lambda request=request: client.edit(request, timeout=300),
            }
            for name in BASELINES:
                fns[name] = lambda i=image, f=face, m=name: run_composite(None, i, f, method=m)
            times = timed_pair(fns, repeat, warmup=1)
            box = mask_bbox(face[..., 3] > 0)
            times["face_megapixels"] = box.width * box.height / 1e6
            out[f"{mp}MP"] = times
    return out


def restore_speed(model: Model, endpoint: str, canvases, repeat: int) -> dict[str, Any]:
    """Restore of the demo's hand over the portrait, the portrait scaled to each canvas:
    the network in process and via the engine (the tool's context travels), the face mesh
    alone, and OpenCV's two inpainting methods."""
    from PIL import Image

    from .demo import demo_inputs, hand_over_face

    occluded, mask = hand_over_face(demo_inputs().image)
    out = {}
    with Client(endpoint) as client:
        hello = client.hello(5)
        for mp in canvases:
            side = round((mp * 1e6) ** 0.5)
            image = np.asarray(Image.fromarray(occluded).resize((side, side), Image.BICUBIC))
            hidden = np.asarray(Image.fromarray(mask).resize((side, side), Image.NEAREST))
            r = edit_region(mask_bbox(hidden >= 128), side, side, hello, tool="restore")
            cut = [np.ascontiguousarray(a[r.y : r.y1, r.x : r.x1]) for a in (image, hidden)]
            request = RestoreRequest(side, side, r, *cut, seed=1)
            fns: dict[str, Callable[[], object]] = {
                "network": lambda i=image, m=hidden: run_restore(model, i, m, 1),
                "engine": lambda request=request: client.edit(request, timeout=300),
                "face mesh": lambda i=image: face_finder().landmarks(i),
            }
            for name in RESTORE_BASELINES:
                fns[name] = lambda i=image, m=hidden, n=name: run_restore(None, i, m, method=n)
            out[f"{mp}MP"] = timed_pair(fns, repeat, warmup=1)
    return out


def first_progress(endpoint: str, repeat: int) -> dict[str, float]:
    inputs = canvas_inputs(1)
    samples = []
    with Client(endpoint) as client:
        request = request_for(inputs, client.hello(5), 1)
        for _ in range(repeat):
            t0 = time.perf_counter()
            rid = client.submit(request)
            first = None
            while True:
                for event in client.poll(1.0):
                    if event.id != rid:
                        continue
                    if first is None:
                        first = time.perf_counter() - t0
                    if event.kind in ("result", "error"):
                        break
                else:
                    continue
                break
            samples.append(first * 1000)
    return {"median_ms": statistics.median(samples), "max_ms": max(samples)}


def first_result(model: str | None, cold_runs: int, warm_runs: int) -> dict[str, Any]:
    """Seconds from "Generate" to the result as a plug-in sees it, through the client's own
    connect(): cold, with no engine running (the client starts one from its config, as the
    plug-ins' auto-start does: waiting for a hello, starting the engine, waiting for it to
    answer, then the edit), and warm, a fresh connection to the running engine per edit.
    Each cold run starts its own engine on a free port and stops it afterwards; the edit is
    the demo-sized one (a 512-px round mask on a 1-megapixel canvas)."""
    inputs = canvas_inputs(1)
    cold, ready, warm = [], [], []
    for i in range(cold_runs):
        config = _autostart_config(model)
        t0 = time.perf_counter()
        client, hello = connect(config)
        ready.append(time.perf_counter() - t0)
        try:
            with client:
                client.edit(request_for(inputs, hello, i), timeout=120)
            cold.append(time.perf_counter() - t0)
            if i == cold_runs - 1:
                _wait_warm(config.endpoint)  # warm: the background start-up is done
                for j in range(warm_runs):
                    t0 = time.perf_counter()
                    c, h = connect(config)
                    with c:
                        c.edit(request_for(inputs, h, j), timeout=120)
                    warm.append(time.perf_counter() - t0)
        finally:
            _stop(hello)
    return {
        "cold_s": statistics.median(cold),
        "cold_max_s": max(cold),
        "engine_ready_s": statistics.median(ready),
        "warm_s": statistics.median(warm),
        "warm_max_s": max(warm),
        "cold_runs": cold_runs,
        "warm_runs": warm_runs,
    }


def _wait_warm(endpoint: str, timeout: float = 120) -> None:
    """Until the engine reports its background start-up done (every model loaded and
    warmed up): what a user who painted for a few seconds before Generate meets."""
    deadline = time.monotonic() + timeout
    with Client(endpoint) as client:
        while client.hello(5).get("warming_up") and time.monotonic() < deadline:
            time.sleep(0.2)


def _autostart_config(model: str | None) -> ClientConfig:
    """client.json as the installer writes it (auto-start on, default timeouts), pointing
    at a free port where nothing answers yet; the engine is this Python's sketchfill, with
    --model when the bench was given one."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "sketchfill.cli"]
    if model:  # start_engine appends "serve --endpoint E", so --model goes in this way
        command = [sys.executable, "-c", _WITH_MODEL, str(model)]
    return ClientConfig(endpoint=f"tcp://127.0.0.1:{port}", engine_command=command)


# `python -c _WITH_MODEL MODEL serve --endpoint E`: the serve command with --model MODEL.
_WITH_MODEL = (
    "import sys; from sketchfill.cli import main; "
    "sys.exit(main(sys.argv[2:] + ['--model', sys.argv[1]]))"
)


def _stop(hello: dict[str, Any]) -> None:
    """End the engine a cold run started (its pid is in its hello), and wait for it."""
    import os
    import signal

    pid = (hello.get("engine") or {}).get("pid")
    if not pid:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            # The engine is this process's child (connect() started it): reap it, or it
            # stays a zombie that kill(pid, 0) still finds.
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:  # not ours: poll until it is gone
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.05)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM for the engine process")


class engine_process:
    """A real `sketchfill serve` process on a free loopback port."""

    def __init__(self, folder: Path, threads: int):
        self.folder, self.threads = folder, threads

    def __enter__(self) -> tuple[str, int]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sketchfill.cli",
                "serve",
                "--endpoint",
                self.endpoint,
                "--model",
                str(self.folder),
                "--threads",
                str(self.threads),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with Client(self.endpoint) as c:
                try:
                    c.hello(0.5)
                    return self.endpoint, self.proc.pid
                except EngineError:
                    if self.proc.poll() is not None:
                        break
        self.log.seek(0)
        raise RuntimeError(f"the engine did not start: {self.log.read().decode()[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


# -- printing ------------------------------------------------------------------------------


def print_first_result(f: dict[str, Any]) -> None:
    print(
        f"first result, as a plug-in gets it: cold {f['cold_s']:.2f} s (engine auto-started, "
        f"answering after {f['engine_ready_s']:.2f} s; max {f['cold_max_s']:.2f} s of "
        f"{f['cold_runs']}), warm {f['warm_s']:.2f} s (max {f['warm_max_s']:.2f} s of "
        f"{f['warm_runs']})"
    )


def print_report(r: dict[str, Any]) -> None:
    m = r["model"]
    print(
        f"model {m['name']} {m['version']} ({m['resolution']} px), {r['threads']} threads, "
        f"{r['repeat']} runs per figure\n"
    )
    print("generator alone            median    p95")
    for res, row in r["generator"].items():
        for kind in (
            "onnxruntime_fp32",
            "onnxruntime_int8",
            "onnxruntime_baseline",
            "onnxruntime_paper_width",
            "torch_eager_fp32",
        ):
            if kind in row:
                t = row[kind]
                print(
                    f"  {res:>3} {kind:<20} {t['median_s'] * 1000:7.0f} ms {t['p95_s'] * 1000:5.0f}"
                )
        if "ort_speedup_vs_torch" in row:
            print(f"  {res:>3} ONNX Runtime vs torch eager: {row['ort_speedup_vs_torch']:.2f}x")
        if "int8_speedup" in row:
            print(f"  {res:>3} int8 vs fp32: {row['int8_speedup']:.2f}x")
        if "speedup_vs_paper_width" in row:
            ratio = row["speedup_vs_paper_width"]
            print(f"  {res:>3} served fp32 vs paper-width generator: {ratio:.2f}x faster")
        if "speedup_vs_baseline" in row:
            ratio = row["speedup_vs_baseline"]
            print(f"  {res:>3} served fp32 vs --baseline: {ratio:.2f}x faster")
    print("\nedit of a 512-px region     in process   via engine   overhead")
    for canvas, row in r["edit"].items():
        print(
            f"  {canvas:>5} canvas           {row['in_process']['median_s'] * 1000:7.0f} ms "
            f"{row['engine']['median_s'] * 1000:9.0f} ms {row['overhead'] * 100:8.1f} %"
        )
    print("\nthroughput (1 MP canvas)")
    for n, row in r["throughput"].items():
        print(f"  {n} client(s): {row['edits_per_s']:.2f} edits/s")
    fp = r["first_progress_ms"]
    print(f"\nfirst progress event: median {fp['median_ms']:.1f} ms, max {fp['max_ms']:.1f} ms")
    print_first_result(r["first_result"])
    print(f"engine peak memory: {r['engine_peak_rss_mb']:.0f} MB")
    if "tone" in r:
        print("\nauto tone, whole photo   network     via engine   fixed algorithm   MP/s")
        for canvas, row in r["tone"].items():
            net, eng, fix = (row[k]["median_s"] * 1000 for k in ("network", "engine", "fixed"))
            print(
                f"  {canvas:>5}              {net:7.0f} ms {eng:9.0f} ms {fix:11.0f} ms "
                f"{row['megapixels_per_s']:9.1f}"
            )
    if "composite" in r:
        print("\ncomposite, face of     network   via engine  alpha paste    poisson   reinhard")
        for canvas, row in r["composite"].items():
            cells = "".join(
                f"{row[k]['median_s'] * 1000:9.0f} ms"
                for k in ("network", "engine", "alpha paste", "poisson", "reinhard")
            )
            print(f"  {row['face_megapixels']:4.1f} MP ({canvas:>4}) {cells}")
    if "restore" in r:
        print("\nrestore, portrait at   network   via engine   face mesh      telea         ns")
        for canvas, row in r["restore"].items():
            cells = "".join(
                f"{row[k]['median_s'] * 1000:9.0f} ms"
                for k in ("network", "engine", "face mesh", "telea", "ns")
            )
            print(f"  {canvas:>5}            {cells}")
