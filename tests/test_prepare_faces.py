"""`sketchfill prepare-faces` on real public photos (tests/data/faces, see tests/data/NOTICE.md)
with the shipped MediaPipe ONNX models: alignment is equivariant, rejections carry the right
reason, the manifest carries provenance, and a killed run resumes to the same result."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
from PIL import Image  # noqa: E402
from sketchfill.training import prepare_faces as pf  # noqa: E402

DATA = Path(__file__).parent / "data" / "faces"
SIZE = 256


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def _affine(row: dict[str, str]) -> np.ndarray:
    return np.array([float(v) for v in row["transform"].split(",")]).reshape(2, 3)


def _h(a: np.ndarray) -> np.ndarray:
    return np.vstack([a, [0, 0, 1]])


def _photo(name: str) -> np.ndarray:
    return np.asarray(Image.open(DATA / name).convert("RGB"))


def _save(folder: Path, name: str, rgb: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    Image.fromarray(rgb).save(path, quality=95)
    return path


def _prepare(src, dst: Path, **settings) -> dict:
    base = {"size": SIZE, "duplicate_bits": -1}
    return pf.prepare(
        [str(s) for s in src] if isinstance(src, list) else [str(src)],
        dst,
        pf.Settings(**{**base, **settings}),
        stream=open(os.devnull, "w"),
    )


def _warp(rgb: np.ndarray, m: np.ndarray, w: int, h: int) -> np.ndarray:
    """Warp by a pixel-centre (i + 0.5) affine, as the aligner's coordinates are."""
    shift = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1]])
    cv = (np.linalg.inv(shift) @ _h(m) @ shift)[:2]
    return cv2.warpAffine(rgb, cv, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def test_rotated_shifted_scaled_copy_aligns_back_to_the_same_crop(tmp_path):
    rgb = _photo("avatars-001.jpg")
    a, k = np.radians(25), 0.8
    m = k * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = np.hstack([m, [[150.0], [-30.0]]])  # turned 25 degrees, 0.8x, moved right and up
    src = tmp_path / "src"
    _save(src, "a.jpg", rgb)
    _save(src, "b.jpg", _warp(rgb, m, 560, 480))
    report = _prepare(src, tmp_path / "out", max_upscale=4.0)
    assert report["kept"] == 2, report
    by_name = {r["file"]: r for r in _rows(tmp_path / "out" / pf.MANIFEST)}
    a_orig, a_copy = _affine(by_name["a.png"]), _affine(by_name["b.png"])
    # Each crop pixel of the copy, taken back through the copy's warp into the original
    # photo and through the original's alignment: where it lands in the original's crop.
    back = _h(a_orig) @ np.linalg.inv(_h(m)) @ np.linalg.inv(_h(a_copy))
    grid = np.array([[x, y, 1.0] for x in (0, SIZE / 2, SIZE) for y in (0, SIZE / 2, SIZE)])
    err = np.hypot(*((grid @ back.T)[:, :2] - grid[:, :2]).T)
    assert err.max() < 3.0, err  # pixels at 256
    # and the pictures agree where the original photo covers both crops
    crop_a = np.asarray(Image.open(tmp_path / "out" / "a.png"), np.float32)
    crop_b = np.asarray(Image.open(tmp_path / "out" / "b.png"), np.float32)
    middle = slice(SIZE // 4, 3 * SIZE // 4)
    assert np.abs(crop_a[middle, middle] - crop_b[middle, middle]).mean() < 10


def test_photo_without_a_face_is_rejected_as_no_face(tmp_path):
    # the congress portrait's backdrop and suit, below the chin, enlarged
    below_chin = _photo("congress-A000014.jpg")[190:, :]
    big = cv2.resize(below_chin, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    _save(tmp_path / "src", "suit.jpg", big)
    report = _prepare(tmp_path / "src", tmp_path / "out")
    assert report["kept"] == 0
    assert report["rejected"]["no_face"] == 1
    (row,) = _rows(tmp_path / "out" / pf.REJECTED)
    assert row["reason"] == "no_face"


def test_two_faces_of_similar_size_are_rejected_and_a_dominant_one_is_kept(tmp_path):
    a, b = _photo("congress-A000014.jpg"), _photo("congress-B000287.jpg")
    src = tmp_path / "src"
    _save(src, "pair.jpg", np.concatenate([a, b], 1))  # two faces side by side
    big = _photo("congress-C000537.jpg")
    small = cv2.resize(b, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    canvas = np.full((275, 225 + 120, 3), 90, np.uint8)
    canvas[:, :225] = big
    canvas[60 : 60 + small.shape[0], 225 + 4 : 225 + 4 + small.shape[1]] = small
    _save(src, "with-small-face.jpg", canvas)
    report = _prepare(src, tmp_path / "out")
    (rejected,) = _rows(tmp_path / "out" / pf.REJECTED)
    assert Path(rejected["source"]).name == "pair.jpg"
    assert rejected["reason"] == "several_faces"
    assert report["rejected"]["several_faces"] == 1
    (kept,) = _rows(tmp_path / "out" / pf.MANIFEST)
    # the crop's centre comes from the large face on the left, not the small one
    centre = np.linalg.inv(_h(_affine(kept)))[:2] @ [SIZE / 2, SIZE / 2, 1]
    assert centre[0] < 225


def test_manifest_carries_the_source_rows_and_a_rerun_skips_finished_photos(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for f in DATA.iterdir():
        (src / f.name).write_bytes(f.read_bytes())
    copy = Image.open(DATA / "avatars-001.jpg").resize((320, 320), Image.LANCZOS)
    copy.save(src / "copy-of-avatars-001.jpg", quality=80)
    out = tmp_path / "out"
    report = _prepare(src, out, duplicate_bits=6)
    # a smaller, re-compressed copy is the first one's duplicate: same face, same crop
    assert report["kept"] == 4 and report["rejected"]["duplicate"] == 1, report
    rows = {r["file"]: r for r in _rows(out / pf.MANIFEST)}
    assert set(rows) == {f"{p.stem}.png" for p in DATA.glob("*.jpg")}
    row = rows["avatars-001.png"]
    assert row["licence"].startswith("CC0 1.0")
    assert json.loads(row["source_row"])["source_repository"] == "cjdowner/interfaces"
    assert rows["congress-A000014.png"]["licence"].startswith("Public domain")
    assert float(row["face_px"]) > 100 and float(row["crop_px"]) > float(row["face_px"])
    for name in rows:
        im = Image.open(out / name)
        assert im.size == (SIZE, SIZE) and im.mode == "RGB"
    saved = json.loads((out / pf.REPORT).read_text())
    assert saved["kept"] == 4 and saved["by_set"]["congress"]["kept"] == 3
    before = (out / pf.MANIFEST).read_bytes()
    again = _prepare(src, out, duplicate_bits=6)
    assert again["this_run"]["processed"] == 0
    assert again["this_run"]["skipped_as_finished"] == 5
    assert (out / pf.MANIFEST).read_bytes() == before
    with pytest.raises(pf.PrepareError, match="other settings"):
        _prepare(src, out, duplicate_bits=6, size=128)
    with pytest.raises(pf.PrepareError, match="inside the output folder"):
        _prepare(src, src.parent)


def test_grey_photo_is_kept_and_flagged(tmp_path):
    grey = np.asarray(Image.open(DATA / "congress-C000537.jpg").convert("L").convert("RGB"))
    _save(tmp_path / "src", "grey.jpg", grey)
    _prepare(tmp_path / "src", tmp_path / "out")
    (row,) = _rows(tmp_path / "out" / pf.MANIFEST)
    assert "grey" in row["flags"].split(",")


def test_torn_manifest_line_stale_temp_file_and_lost_image_are_repaired(tmp_path):
    out = tmp_path / "out"
    _prepare(DATA, out)
    manifest = out / pf.MANIFEST
    rows = _rows(manifest)
    assert len(rows) == 4
    # a crash as bad as it gets: half a row at the end, a temp file, a row without image
    with manifest.open("a") as f:
        f.write("congress-X.png\t/nowhere/congress-X.jpg\t22")
    (out / ".avatars-001.png.x1y2z3.tmp").write_bytes(b"\x89PNG half")
    (out / "congress-B000287.png").unlink()
    report = _prepare(DATA, out)
    assert report["this_run"]["processed"] == 1  # only the photo whose image was lost
    assert sorted(r["file"] for r in _rows(manifest)) == sorted(r["file"] for r in rows)
    assert manifest.read_bytes().endswith(b"\n")
    assert not list(out.glob(pf.STALE_GLOB))


def test_killed_run_resumes_to_the_same_result(tmp_path):
    src = tmp_path / "src"
    for f in sorted(DATA.glob("*.jpg")):
        rgb = _photo(f.name)
        for i, turn in enumerate((0, 1, 3)):  # distinct photos: the same face, turned
            _save(src, f"{f.stem}-{i}.jpg", np.ascontiguousarray(np.rot90(rgb, turn)))
    cmd = [sys.executable, "-m", "sketchfill.cli", "prepare-faces", str(src), "--size", "512"]
    cmd += ["--max-upscale", "8"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "-o", str(killed)], stderr=subprocess.DEVNULL)
    manifest = killed / pf.MANIFEST
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if manifest.exists() and manifest.read_bytes().count(b"\n") >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    partial = _rows(manifest)
    assert 0 < len(partial) < 12
    partial_rejected = len(_rows(killed / pf.REJECTED))
    for r in partial:  # every row names a whole image
        Image.open(killed / r["file"]).load()
    subprocess.run([*cmd, "-o", str(killed)], check=True, stderr=subprocess.DEVNULL)
    clean = tmp_path / "clean"
    _prepare(src, clean, size=512, max_upscale=8.0, duplicate_bits=pf.Settings().duplicate_bits)

    def outcome(d: Path):
        kept = {r["file"]: r["transform"] for r in _rows(d / pf.MANIFEST)}
        rejected = {Path(r["source"]).name: r["reason"] for r in _rows(d / pf.REJECTED)}
        return kept, rejected

    assert outcome(killed) == outcome(clean)
    report = json.loads((killed / pf.REPORT).read_text())
    assert report["this_run"]["skipped_as_finished"] == len(partial) + partial_rejected
    assert report["this_run"]["processed"] + report["this_run"]["skipped_as_finished"] == 12


def test_prepared_folder_summary_and_train_prepare_cache(tmp_path):
    from sketchfill.training import prepared

    assert prepared.summary(DATA) is None  # a raw folder, even with a MANIFEST.tsv
    out = prepared.cached(DATA, SIZE, tmp_path / "cache")
    assert out.parent == tmp_path / "cache"
    info = prepared.summary(out)
    assert info["crops"] == 4 and info["settings"]["size"] == SIZE
    licences = {k.split(" ")[0]: v for k, v in info["licences"].items()}
    assert licences == {"Public": 3, "CC0": 1}
    assert prepared.cached(DATA, SIZE, tmp_path / "cache") == out  # the cache is reused
    report = json.loads((out / pf.REPORT).read_text())
    assert report["this_run"]["skipped_as_finished"] == 4
    assert list(prepared.summaries([DATA, out])) == [str(out.absolute())]


def test_trainers_list_only_the_crops_of_a_prepared_folder(tmp_path):
    from sketchfill.training.images import list_photos

    out = tmp_path / "out"
    _prepare(DATA, out)
    (out / ".avatars-001.png.a1b2c3.tmp").write_bytes(b"\x89PNG")  # a run in progress
    (out / "._avatars-001.png").write_bytes(b"\0\5\26\7")  # macOS AppleDouble junk
    names = [p.name for p in list_photos([out])]
    assert names == sorted(f"{p.stem}.png" for p in DATA.glob("*.jpg"))
