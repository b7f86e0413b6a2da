"""The output side of `prepare-faces`, built so that a kill at any moment leaves a folder
the next run can resume: whole files only (temp name, then rename), and manifests that are
appended one whole line per write (fsynced when the run ends). Plus its progress display."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

from ..pipeline.modelcard import write_atomic

# write_atomic's temp files (".NAME.RANDOM.tmp"): hidden, so image listings skip a run's
# unfinished files, and what a killed run left is found by this pattern.
STALE_GLOB = ".*.tmp"


class PrepareError(Exception):
    """A run that cannot start (missing source, output prepared with other settings)."""


def _clean(text: str) -> str:
    return " ".join(str(text).split())  # no tab or newline may break a TSV row


class Journal:
    """An append-only TSV whose rows are each written with one os.write of one whole line,
    so a killed run leaves whole rows only; a torn last line (a crash inside the kernel's
    write, a full disk) is cut off when the file is opened again."""

    def __init__(self, path: Path, columns: tuple[str, ...]):
        self.path, self.columns = path, columns
        rows: list[dict[str, str]] = []
        if path.exists():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):
                data = data[: data.rfind(b"\n") + 1]
                write_atomic(path, data)
            lines = data.decode("utf-8").splitlines()
            if lines and tuple(lines[0].split("\t")) != columns:
                raise PrepareError(f"{path}: not written by this version of prepare-faces")
            rows = [dict(zip(columns, ln.split("\t"))) for ln in lines[1:] if ln]
            rows = [r for r in rows if len(r) == len(columns)]
        else:
            write_atomic(path, ("\t".join(columns) + "\n").encode())
        self.rows = rows
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def append(self, row: dict[str, str]) -> None:
        line = "\t".join(_clean(row.get(c, "")) for c in self.columns) + "\n"
        os.write(self.fd, line.encode("utf-8"))
        self.rows.append(row)

    def rewrite(self, rows: list[dict[str, str]]) -> None:
        """Replace all rows at once (temporary file, then rename)."""
        text = "\t".join(self.columns) + "\n"
        text += "".join("\t".join(_clean(r.get(c, "")) for c in self.columns) + "\n" for r in rows)
        os.close(self.fd)
        write_atomic(self.path, text.encode("utf-8"))
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self.rows = list(rows)

    def close(self) -> None:
        os.fsync(self.fd)
        os.close(self.fd)


class Progress:
    """A bar with rate and time left on a terminal; a plain line every 5 % otherwise (logs)."""

    def __init__(self, total: int, stream):
        self.total, self.stream = total, stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.start = time.time()
        self.last = -1.0
        self.step = max(1, total // 20)

    def update(self, n: int, counts: Counter[str]) -> None:
        now = time.time()
        rate = n / max(now - self.start, 1e-9)
        left = (self.total - n) / rate if rate > 0 else 0.0
        tail = " ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        if self.tty:
            if now - self.last < 0.2 and n < self.total:
                return
            self.last = now
            filled = int(30 * n / max(self.total, 1))
            bar = "#" * filled + "." * (30 - filled)
            self.stream.write(
                f"\r[{bar}] {n}/{self.total} {rate:.1f}/s, {_clock(left)} left  {tail}\x1b[K"
            )
        elif n % self.step == 0 or n == self.total:
            self.stream.write(
                f"prepare-faces: {n}/{self.total} photos, {rate:.2f}/s, {_clock(left)} left; "
                f"{tail}\n"
            )
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.total:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
    )
