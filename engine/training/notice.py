"""NOTICE.md for a model trained on photos under attribution licences.

A model trained on CC BY photos may be shipped for commercial use when the attributions
travel with it. The photos' manifest (a `prepare-faces` MANIFEST.tsv, or the public set's
own) names each file's licence; the notice lists every licence with the number of training
photos under it, so that the model folder carries its attributions wherever it is copied.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

NOTICE_FILE = "NOTICE.md"
NON_COMMERCIAL = (
    "Non-commercial research use only: trained on non-commercial research data (see "
    "training.licence)."
)
COMMERCIAL = (
    "Commercial use allowed: trained only on photos under CC BY 4.0, CC0 and public-domain "
    "terms (see training.licence); keep NOTICE.md, the CC BY attributions, with the model."
)


def card_licence(note: str) -> str:
    """A model card's licence line from its training data's note."""
    return NON_COMMERCIAL if "non-commercial" in note.lower() else COMMERCIAL


def licence_counts(manifest: Path, names: set[str] | None = None) -> Counter[str]:
    """Licence -> number of photos, over the manifest rows whose file stem is in `names`
    (every row when `names` is None). Stems, not names: a prepared PNG may be bundled as JPEG."""
    counts: Counter[str] = Counter()
    with open(manifest, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if names is None or Path(row["file"]).stem in names:
                counts[row.get("licence") or "licence not recorded"] += 1
    return counts


def notice_text(model: str, counts: Counter[str]) -> str:
    lines = [
        f"# {model}: training data and attributions",
        "",
        f"This model was trained on {sum(counts.values())} photos under the licences below.",
        "Redistribute this file with the model.",
        "",
        "| photos | licence and attribution |",
        "|---|---|",
    ]
    lines += [f"| {n} | {text} |" for text, n in sorted(counts.items(), key=lambda kv: -kv[1])]
    return "\n".join(lines) + "\n"


def write_notice(folder: Path, model: str, manifest: Path, data: Path | None) -> Counter[str]:
    """NOTICE.md in `folder` for the photos of `data` (a folder; all manifest rows if None)
    named by `manifest`. Raises ValueError when the manifest covers none of them."""
    from ..pipeline.modelcard import write_atomic

    names = {p.stem for p in data.iterdir()} if data is not None and data.is_dir() else None
    counts = licence_counts(manifest, names)
    if not counts:
        raise ValueError(f"{manifest} names none of the training photos")
    write_atomic(folder / NOTICE_FILE, notice_text(model, counts).encode("utf-8"))
    return counts
