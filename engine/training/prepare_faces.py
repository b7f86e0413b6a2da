"""`sketchfill prepare-faces`: any folder of photos in, an FFHQ-like aligned training set out.

Each photo is read, its faces found with the engine's MediaPipe detector and face mesh, and
the one face kept is cut out as a square crop aligned like ../shared/data/faces/ (align.py).
Photos are rejected, and counted by reason, when they show no face, several faces of similar
size, a face turned too far, a face too small for the output size, or a (near) duplicate of a
photo already kept. DST/MANIFEST.tsv has one row per crop (provenance and licence carried
over from the source folder's own MANIFEST.tsv), DST/rejected.tsv one per rejected photo,
DST/report.json the counts.

A run can be killed at any moment and re-run with the same command: images are written to a
temporary name and renamed into place, and each manifest row is one append of one whole line
written after its image, so a row always names a complete image; finished photos (kept or
rejected) are skipped on the next run.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..pipeline.modelcard import write_atomic
from .journal import STALE_GLOB, Journal, PrepareError, Progress

HELP = "align and filter a folder of face photos into a training set (FFHQ-like crops)"

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
MANIFEST = "MANIFEST.tsv"
REJECTED = "rejected.tsv"
REPORT = "report.json"
REASONS = ("unreadable", "no_face", "several_faces", "too_small", "turned", "duplicate")
COLUMNS = (
    "file",
    "source",
    "source_size",
    "face_px",
    "crop_px",
    "upscale",
    "yaw",
    "pitch",
    "roll",
    "padded",
    "flags",
    "transform",
    "phash",
    "licence",
    "source_row",
)
REJECTED_COLUMNS = ("source", "reason", "detail")
# Which columns of a source folder's own MANIFEST.tsv hold the licence.
LICENCE_COLUMNS = ("licence", "license", "licence_note", "license_note")


@dataclass(frozen=True)
class Settings:
    """Everything that changes what a photo becomes; a folder is only resumed under the same."""

    size: int = 512
    min_face: float = 64.0
    max_upscale: float = 2.0
    max_yaw: float = 45.0
    max_pitch: float = 35.0
    dominance: float = 1.5
    duplicate_bits: int = 6
    format: str = "png"


def add_arguments(p: argparse.ArgumentParser) -> None:
    d = Settings()
    p.add_argument("sources", nargs="+", metavar="SRC", help="photo folders (recursive) or files")
    p.add_argument("-o", "--output", required=True, metavar="DST", help="folder for the crops")
    p.add_argument("--size", type=int, default=d.size, help="side of the square crops in px")
    p.add_argument(
        "--min-face",
        type=float,
        default=d.min_face,
        metavar="PX",
        help=f"reject faces narrower than this in the photo, cheek to cheek (default "
        f"{d.min_face:g}; the mesh is unreliable below it)",
    )
    p.add_argument(
        "--max-upscale",
        type=float,
        default=d.max_upscale,
        help=f"reject a face whose crop would be enlarged more than this (default "
        f"{d.max_upscale:g}: a 512 crop needs a face about 170 px wide)",
    )
    p.add_argument("--max-yaw", type=float, default=d.max_yaw, help="degrees (default %(default)s)")
    p.add_argument(
        "--max-pitch", type=float, default=d.max_pitch, help="degrees (default %(default)s)"
    )
    p.add_argument(
        "--dominance",
        type=float,
        default=d.dominance,
        help="with several faces, keep the largest only if it is this many times as wide as "
        "the next (default %(default)s); otherwise reject the photo",
    )
    p.add_argument(
        "--duplicate-bits",
        type=int,
        default=d.duplicate_bits,
        help="crops whose 143-bit perceptual hashes differ in at most this many bits are "
        "duplicates; the first in sorted order is kept (default %(default)s; -1: keep all)",
    )
    p.add_argument("--format", choices=("png", "jpg"), default=d.format, help="jpg: quality 95")
    p.add_argument("--workers", type=int, default=1, help="processes (default %(default)s)")


def run(args: argparse.Namespace) -> int:
    settings = Settings(
        size=args.size,
        min_face=args.min_face,
        max_upscale=args.max_upscale,
        max_yaw=args.max_yaw,
        max_pitch=args.max_pitch,
        dominance=args.dominance,
        duplicate_bits=args.duplicate_bits,
        format=args.format,
    )
    if settings.size < 16 or args.workers < 1:
        print("prepare-faces: --size must be at least 16 and --workers at least 1", file=sys.stderr)
        return 2
    try:
        report = prepare(args.sources, args.output, settings, workers=args.workers)
    except PrepareError as exc:
        print(f"prepare-faces: {exc}", file=sys.stderr)
        return 2
    print(summary(report))
    return 0


# ---------------------------------------------------------------- sources


def find_sources(sources: list[str], dst: Path) -> list[Path]:
    """Image files of the given folders (recursively) and files, sorted, the output folder
    left out (it may sit inside a source folder)."""
    found: set[Path] = set()
    dst = dst.resolve()
    for s in sources:
        p = Path(s).resolve()
        if p == dst or dst in p.parents:  # crops would mix with (or replace) the photos
            raise PrepareError(f"{s} is inside the output folder {dst}: choose another -o")
        if p.is_dir():
            for f in p.rglob("*"):
                if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file() and dst not in f.parents:
                    found.add(f)
        elif p.is_file():
            found.add(p)
        else:
            raise PrepareError(f"{s}: no such file or folder")
    return sorted(found)


def read_source_manifest(folder: Path) -> dict[str, dict[str, str]]:
    """A source folder's own MANIFEST.tsv (first column the file name), if it has one."""
    path = folder / MANIFEST
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows:
        return {}
    head = rows[0]
    return {r[0]: dict(zip(head[1:], r[1:])) for r in rows[1:] if r}


def set_name(source: Path) -> str:
    """The set a photo belongs to, for the counts: its name's prefix before the first '-'
    (the public folder's sets are named so), else its folder's name."""
    stem = source.stem
    return stem.split("-", 1)[0] if "-" in stem else source.parent.name


# ---------------------------------------------------------------- one photo (in a worker)

_FM = None


def _init_worker() -> None:
    global _FM
    import cv2

    from .align import FACEMESH_DIR, FaceMesh

    cv2.setNumThreads(1)  # the parallelism is the worker processes
    _FM = FaceMesh(FACEMESH_DIR, threads=1)


def load_photo(path: Path) -> np.ndarray:
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)  # phone photos stand upright only through EXIF
        if im.mode in ("I;16", "I;16B", "I", "F"):
            im = im.point(lambda v: v / 256).convert("L")  # 16-bit greys
        return np.asarray(im.convert("RGB"))


def process(path: Path, settings: Settings) -> dict:
    """Align one photo: {"status": "kept", ...row fields, "image": bytes} or
    {"status": "rejected", "reason", "detail"}."""
    from . import align

    if _FM is None:
        _init_worker()
    try:
        rgb = load_photo(path)
    except Exception as exc:  # any decoder error: the photo is skipped, the run goes on
        return _rejected("unreadable", f"{type(exc).__name__}: {exc}")
    h, w = rgb.shape[:2]
    faces = align.find_faces(_FM, rgb)
    if not faces:
        return _rejected("no_face", "the detector finds no face")
    if len(faces) > 1 and faces[1].width * settings.dominance > faces[0].width:
        return _rejected(
            "several_faces",
            f"{len(faces)} faces; the two largest are {faces[0].width:.0f} and "
            f"{faces[1].width:.0f} px wide",
        )
    mesh, presence = align.fit_mesh(_FM, rgb, faces[0])
    if presence < align.MIN_PRESENCE:
        return _rejected("no_face", f"the face mesh does not fit (score {presence:.2f})")
    affine = align.alignment(align.key_points(mesh), settings.size)
    crop_px = settings.size / align.scale_of(affine)
    face_px = align.face_width(mesh)
    upscale = settings.size / crop_px
    if face_px < settings.min_face or upscale > settings.max_upscale:
        return _rejected(
            "too_small",
            f"face {face_px:.0f} px, crop {crop_px:.0f} px: x{upscale:.2f} to {settings.size}",
        )
    yaw, pitch, roll = align.head_pose(mesh)
    if abs(yaw) > settings.max_yaw or abs(pitch) > settings.max_pitch:
        return _rejected("turned", f"yaw {yaw:.0f}, pitch {pitch:.0f} degrees")
    crop, padded = align.warp_face(rgb, affine, settings.size)
    flags = []
    if align.is_grey(crop):
        flags.append("grey")
    if padded > 0:
        flags.append("padded")
    if upscale > 1.0:
        flags.append("upscaled")
    return {
        "status": "kept",
        "source_size": f"{w}x{h}",
        "face_px": f"{face_px:.1f}",
        "crop_px": f"{crop_px:.1f}",
        "upscale": f"{upscale:.3f}",
        "yaw": f"{yaw:.1f}",
        "pitch": f"{pitch:.1f}",
        "roll": f"{roll:.1f}",
        "padded": f"{padded:.4f}",
        "flags": ",".join(flags),
        "transform": ",".join(f"{v:.6g}" for v in affine.ravel()),
        "phash": f"{align.phash(crop):036x}",
        "image": encode(crop, settings.format),
    }


def _rejected(reason: str, detail: str) -> dict:
    return {"status": "rejected", "reason": reason, "detail": detail}


def encode(crop: np.ndarray, fmt: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    if fmt == "jpg":  # 4:4:4: chroma subsampling would smear the lips and eyes
        Image.fromarray(crop).save(buf, "JPEG", quality=95, subsampling=0)
    else:
        Image.fromarray(crop).save(buf, "PNG", compress_level=3)
    return buf.getvalue()


def _work(item: tuple[Path, Settings]) -> dict:
    path, settings = item
    t = time.perf_counter()
    out = process(path, settings)
    out["seconds"] = time.perf_counter() - t
    return out


# ---------------------------------------------------------------- the output folder


def output_names(sources: list[Path], fmt: str) -> dict[Path, str]:
    """One output file name per source: its stem, or with a short hash of its full path
    where two sources share a stem (photos from several folders)."""
    import hashlib

    names: dict[Path, str] = {}
    taken: set[str] = set()
    for s in sources:
        name = f"{s.stem}.{fmt}"
        if name in taken:
            digest = hashlib.sha1(str(s).encode()).hexdigest()[:8]
            name = f"{s.stem}-{digest}.{fmt}"
        taken.add(name)
        names[s] = name
    return names


# ---------------------------------------------------------------- the run


def prepare(
    sources: list[str],
    output: str | os.PathLike[str],
    settings: Settings,
    workers: int = 1,
    stream=None,
) -> dict:
    """Prepare every photo of `sources` into `output`, resuming what an earlier run there
    left; returns the report (also written to output/report.json)."""
    stream = stream if stream is not None else sys.stderr
    dst = Path(output)
    files = find_sources(sources, dst)
    _check_settings(dst, settings)
    dst.mkdir(parents=True, exist_ok=True)
    for stale in dst.glob(STALE_GLOB):  # left by a killed run
        stale.unlink()
    names = output_names(files, settings.format)
    manifests: dict[Path, dict[str, dict[str, str]]] = {}

    kept = Journal(dst / MANIFEST, COLUMNS)
    # A row whose image went missing (deleted by hand) is dropped and its photo redone.
    alive = [r for r in kept.rows if (dst / r["file"]).is_file()]
    if len(alive) != len(kept.rows):
        kept.rewrite(alive)
    rejected = Journal(dst / REJECTED, REJECTED_COLUMNS)
    done = {r["source"] for r in kept.rows} | {r["source"] for r in rejected.rows}
    hashes = [int(r["phash"], 16) for r in kept.rows]
    todo = [f for f in files if str(f) not in done]
    skipped = len(files) - len(todo)

    started = time.time()
    busy = 0.0  # seconds inside `process`, summed over workers
    counts: Counter[str] = Counter()
    progress = Progress(len(todo), stream)
    report = _report(dst, settings, files, kept.rows, rejected.rows, 0, skipped, 0.0, 0.0, workers)
    _write_report(dst, report)
    pool = None
    try:
        items = [(f, settings) for f in todo]
        if workers > 1 and len(todo) > 1:
            import multiprocessing as mp

            # spawn, not fork: ONNX Runtime's thread pools do not survive a fork
            pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker)
            results = pool.imap(_work, items)  # in order: duplicates resolve the same way
        else:
            results = map(_work, items)
        for n, (src, out) in enumerate(zip(todo, results), 1):
            busy += out.pop("seconds")
            if out["status"] == "kept":
                h = int(out["phash"], 16)
                twin = _twin(h, hashes, kept.rows, settings.duplicate_bits)
                if twin is not None:
                    out = _rejected("duplicate", twin)
            if out["status"] == "kept":
                name = names[src]
                write_atomic(dst / name, out.pop("image"))
                if src.parent not in manifests:
                    manifests[src.parent] = read_source_manifest(src.parent)
                row = manifests[src.parent].get(src.name, {})
                out.update(
                    file=name,
                    source=str(src),
                    licence=next((row[c] for c in LICENCE_COLUMNS if row.get(c)), ""),
                    source_row=json.dumps(row, ensure_ascii=False) if row else "",
                )
                kept.append(out)
                hashes.append(h)
                counts["kept"] += 1
            else:
                rejected.append({"source": str(src), **out})
                counts[out["reason"]] += 1
            progress.update(n, counts)
            if n % 50 == 0:
                report = _report(
                    dst,
                    settings,
                    files,
                    kept.rows,
                    rejected.rows,
                    n,
                    skipped,
                    started,
                    busy,
                    workers,
                )
                _write_report(dst, report)
    finally:
        if pool is not None:
            pool.terminate()
        progress.close()
        kept.close()
        rejected.close()
    report = _report(
        dst, settings, files, kept.rows, rejected.rows, len(todo), skipped, started, busy, workers
    )
    _write_report(dst, report)
    return report


def _twin(h: int, hashes: list[int], rows: list[dict[str, str]], bits: int) -> str | None:
    """The kept crop this hash duplicates, as a sentence, or None."""
    if bits < 0 or not hashes:
        return None
    dist = [(h ^ k).bit_count() for k in hashes]
    i = int(np.argmin(dist))
    if dist[i] > bits:
        return None
    return f"{dist[i]} bits from {rows[i]['file']} ({rows[i]['source']})"


def _check_settings(dst: Path, settings: Settings) -> None:
    path = dst / REPORT
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())["settings"]
    except (ValueError, KeyError):
        return
    if old != dataclasses.asdict(settings):
        diff = {k: (old.get(k), v) for k, v in dataclasses.asdict(settings).items()}
        diff = {k: v for k, v in diff.items() if v[0] != v[1]}
        raise PrepareError(
            f"{dst} was prepared with other settings ({diff}: was, now); "
            "use another output folder or the same options"
        )


def _report(
    dst: Path,
    settings: Settings,
    files: list[Path],
    kept: list[dict[str, str]],
    rejected: list[dict[str, str]],
    processed: int,
    skipped: int,
    started: float,
    busy: float,
    workers: int,
) -> dict:
    by_reason = Counter(r["reason"] for r in rejected)
    by_set: dict[str, Counter[str]] = {}
    for r in kept:
        by_set.setdefault(set_name(Path(r["source"])), Counter())["kept"] += 1
    for r in rejected:
        by_set.setdefault(set_name(Path(r["source"])), Counter())[r["reason"]] += 1
    flags = Counter(f for r in kept for f in r["flags"].split(",") if f)
    wall = time.time() - started if started else 0.0
    padded = [float(r["padded"]) for r in kept]
    return {
        "settings": dataclasses.asdict(settings),
        "photos": len(files),
        "kept": len(kept),
        "rejected": {k: by_reason.get(k, 0) for k in REASONS},
        "flags": dict(sorted(flags.items())),
        "mean_padded_fraction": round(float(np.mean(padded)), 4) if padded else 0.0,
        "by_set": {
            k: {"photos": sum(v.values()), **dict(sorted(v.items()))}
            for k, v in sorted(by_set.items())
        },
        "this_run": {
            "processed": processed,
            "skipped_as_finished": skipped,
            "workers": workers,
            "wall_seconds": round(wall, 1),
            "seconds_per_photo_wall": round(wall / processed, 4) if processed else None,
            "seconds_per_photo_worker": round(busy / processed, 4) if processed else None,
        },
        "output": str(dst.resolve()),
    }


def _write_report(dst: Path, report: dict) -> None:
    write_atomic(dst / REPORT, (json.dumps(report, indent=2) + "\n").encode())


def summary(report: dict) -> str:
    rej = ", ".join(f"{k} {v}" for k, v in report["rejected"].items() if v)
    return (
        f"{report['kept']} of {report['photos']} photos kept"
        + (f"; rejected: {rej}" if rej else "")
        + f" -> {report['output']}"
    )
