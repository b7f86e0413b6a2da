"""What every tool's evaluation shares: per-image seeds, means, the JSON report, the
picture sheet and the table printed at the end.

The CLI imports the evaluations to build its parser: heavy imports happen inside the
functions.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path


def image_seed(name: str) -> int:
    """Per-image seed from the file name: the same inputs in every run and for every method."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def mean_finite(values: list[float]) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    return round(sum(finite) / len(finite), 4) if finite else None


def save_report(path: Path, result: dict) -> None:
    """The evaluation's JSON, written atomically (never half a file)."""
    from ..pipeline.modelcard import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, (json.dumps(result, indent=2) + "\n").encode("utf-8"))


def small(rgb):
    """The picture at 256x256 (area average): sheets and colour differences."""
    import numpy as np
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((256, 256), Image.BOX))


def write_sheet(path: Path, rows: list[list]) -> None:
    """A --grid sheet: each row's pictures side by side at 256 px."""
    import numpy as np

    from ..pipeline.images import save_image

    save_image(path, np.concatenate([np.concatenate([small(p) for p in row], 1) for row in rows]))


def print_table(
    summary: dict[str, dict[str, float | None]], metrics: tuple[str, ...], digits: int = 4
) -> None:
    """Methods as rows, metrics as columns; None (not measured) as '-'."""
    width = max(12, *(len(name) + 2 for name in summary))
    print(f"{'method':<{width}}" + "".join(f"{k:>12}" for k in metrics))
    for name, vals in summary.items():
        cells = "".join(
            f"{'-' if vals[k] is None else format(vals[k], f'.{digits}f'):>12}" for k in metrics
        )
        print(f"{name:<{width}}{cells}")


def card_metrics(path: Path) -> dict:
    """The summary of an evaluation's JSON (eval-composite, eval-restore) for the card: the
    per-image rows stay out."""
    found = json.loads(path.read_text(encoding="utf-8"))
    return {
        "methods": found["methods"],
        "images": found["images"],
        "size": found["size"],
        "data": Path(found["data"]).name,
        "protocol": found["protocol"],
    }
