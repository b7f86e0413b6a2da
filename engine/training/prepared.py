"""What the trainers need from a folder made by `sketchfill prepare-faces`: the licences of
its photos for the run's config, and `train --prepare`'s cache of aligned crops. No torch
here: the CLI imports the trainers' command modules to build its parser."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from pathlib import Path

from .prepare_faces import COLUMNS, MANIFEST, REPORT, Settings, prepare
from .prepare_faces import summary as report_summary


def summary(folder: str | os.PathLike[str]) -> dict | None:
    """The prepared folder's crops, licences (with counts) and settings, or None when the
    folder was not made by prepare-faces."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or tuple(lines[0].split("\t")) != COLUMNS:
        return None
    at = COLUMNS.index("licence")
    rows = [ln.split("\t") for ln in lines[1:] if ln]
    licences = Counter(r[at] if len(r) > at and r[at] else "unknown" for r in rows)
    out = {
        "prepared_by": "sketchfill prepare-faces",
        "crops": len(rows),
        "licences": dict(licences.most_common()),
    }
    try:
        report = json.loads((folder / REPORT).read_text(encoding="utf-8"))
        out["settings"] = report["settings"]
        out["rejected"] = report["rejected"]
    except (OSError, ValueError, KeyError):
        pass
    return out


def summaries(folders: list[Path]) -> dict[str, dict]:
    """summary() of each prepared folder among `folders`, by its absolute path."""
    found = {str(Path(f).absolute()): summary(f) for f in folders}
    return {k: v for k, v in found.items() if v is not None}


def cached(raw: Path, size: int, cache: Path, workers: int = 1) -> Path:
    """prepare-faces of the raw photo folder `raw` at `size`, kept under `cache` by the
    folder's absolute path and size, so the next run only aligns photos added since (a
    prepared folder resumes). Default settings otherwise."""
    raw = Path(raw).absolute()
    key = hashlib.sha1(f"{raw}|{size}".encode()).hexdigest()[:10]
    dst = Path(cache) / f"{raw.name}-{size}-{key}"
    print(f"prepare-faces: {raw} -> {dst}", file=sys.stderr)
    report = prepare([str(raw)], dst, Settings(size=size), workers=workers)
    print(f"prepare-faces: {report_summary(report)}", file=sys.stderr)
    if not report["kept"]:
        raise ValueError(f"prepare-faces kept no photo of {raw} (see {dst / 'rejected.tsv'})")
    return dst
