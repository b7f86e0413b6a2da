"""The last few results, kept in memory so one can be put back as a new layer."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from .document import Patch
from .sketchfill_client.protocol import OP_EDIT


@dataclass
class Entry:
    patch: Patch
    document_name: str
    created: float = field(default_factory=time.time)

    def label(self) -> str:
        p = self.patch
        when = time.strftime("%H:%M:%S", time.localtime(self.created))
        if p.tool == OP_EDIT:
            what = f"seed {p.seed}"
        else:  # "tone", "composite", "restore seed N"
            what = p.tool if p.seed is None else f"{p.tool} seed {p.seed}"
        return f"{what}  {when}  {self.document_name}  {p.width}x{p.height} at {p.x},{p.y}"


class History:
    """Newest first; bounded both in entries and in bytes, since a patch of a large edit
    can weigh tens of megabytes."""

    def __init__(self, max_entries: int = 12, max_bytes: int = 256 * 1024 * 1024):
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.entries: list[Entry] = []

    def add(self, entry: Entry) -> None:
        self.entries.insert(0, entry)
        del self.entries[self.max_entries :]
        total = 0
        for i, e in enumerate(self.entries):
            total += len(e.patch.bgra)
            if total > self.max_bytes and i > 0:
                del self.entries[i:]
                break

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Entry:
        return self.entries[index]
