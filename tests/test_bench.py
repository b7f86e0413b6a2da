"""`sketchfill bench` runs end to end (real engine process, real sessions) and reports every
figure the README quotes; the figures themselves are not judged here."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from train_helpers import tiny_model

pytestmark = pytest.mark.slow
SKETCHFILL = str(Path(sys.executable).with_name("sketchfill"))


def test_bench_quick_reports_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [SKETCHFILL, "bench", "--model", str(tiny_model()), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ONNX Runtime vs torch eager" in proc.stdout and "overhead" in proc.stdout
    report = json.loads(out.read_text())
    for res in ("256", "512"):
        row = report["generator"][res]
        assert row["onnxruntime_fp32"]["median_s"] > 0 and row["torch_eager_fp32"]["median_s"] > 0
    assert set(report["edit"]) == {"1MP", "12MP"}
    assert all(math.isfinite(r["overhead"]) for r in report["edit"].values())
    assert set(report["throughput"]) == {"1", "2", "4"}
    assert report["first_progress_ms"]["median_ms"] > 0
    # the first result as a plug-in gets it: an auto-started engine, then a running one
    first = report["first_result"]
    assert first["cold_s"] > first["engine_ready_s"] > 0 and first["warm_s"] > 0
    assert "first result, as a plug-in gets it: cold" in proc.stdout
    assert report["engine_peak_rss_mb"] > 50
    # auto tone with the shipped tone model (found on the model search path)
    assert set(report["tone"]) == {"1MP", "12MP"}
    assert all(r["megapixels_per_s"] > 0 for r in report["tone"].values())
    assert "auto tone, whole photo" in proc.stdout
    # composite with the shipped composite model, beside its three baselines
    assert set(report["composite"]) == {"1MP", "12MP"}
    for row in report["composite"].values():
        assert row["face_megapixels"] > 0
        assert all(row[k]["median_s"] > 0 for k in ("network", "engine", "poisson", "reinhard"))
    assert "composite, face of" in proc.stdout
    # restore with the shipped restore model, beside the face mesh alone and the baselines
    assert set(report["restore"]) == {"1MP", "12MP"}
    for row in report["restore"].values():
        assert all(row[k]["median_s"] > 0 for k in ("network", "engine", "face mesh", "telea"))
    assert "restore, portrait at" in proc.stdout
