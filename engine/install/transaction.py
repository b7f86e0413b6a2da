"""Applying changes as one transaction: staged beside their destination, swapped in by
rename, rolled back on any failure; a journal lets the next run finish or undo a run that
was killed part-way."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .discovery import InstallError

JOURNAL = "install-journal.json"


class Transaction:
    """Changes to the user's folders, undoable until commit, and recoverable after a crash.

    Every step is written to a journal before it is taken. Rolling back replays the journal
    backwards; committing deletes the kept old versions and the staging folders. A journal
    found at start-up belongs to a run that was killed: `recover` finishes or undoes it.
    """

    def __init__(self, data_dir: Path):
        self.journal = data_dir / JOURNAL
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.entries: list[dict[str, Any]] = []
        self.created: list[Path] = []  # folders made for the installation (not staging)
        self._made_data_dir = _missing_parents(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self._save("open")

    def _save(self, state: str) -> None:
        body = {"state": state, "made": [str(d) for d in self._made_data_dir]}
        body["entries"] = self.entries
        _atomic_write(self.journal, json.dumps(body, indent=1).encode())

    def _record(self, **entry: Any) -> None:
        self.entries.append({k: str(v) if isinstance(v, Path) else v for k, v in entry.items()})
        self._save("open")

    def mkdirs(self, folder: Path) -> None:
        for d in _missing_parents(folder):
            self._record(op="mkdir", path=d)
            d.mkdir()
            self.created.append(d)

    def scratch(self, parent: Path, label: str) -> Path:
        """A staging folder in `parent` (same file system as what it will replace), made
        once per transaction: several things staged for one folder (e.g. two models) share
        it under their own names."""
        path = parent / f".sketchfill-{label}-{self.token}"
        if path.is_dir():
            return path
        self.mkdirs(parent)
        self._record(op="scratch", path=path)
        path.mkdir()
        return path

    def put(self, new: Path | None, dest: Path) -> None:
        """Move the staged `new` to `dest` (None: remove `dest`), keeping what was there."""
        had = dest.exists() or dest.is_symlink()
        backup = dest.parent / f".sketchfill-backup-{self.token}" / dest.name if had else None
        if backup is not None and not backup.parent.exists():
            self._record(op="scratch", path=backup.parent)
            backup.parent.mkdir()
        self._record(op="put", dest=dest, backup=backup)
        if backup is not None:
            if dest.is_dir() and not dest.is_symlink():
                os.replace(dest, backup)
            else:
                # Files are copied aside, so a file such as kritarc is never missing; the
                # copy becomes the backup by rename, so a backup that exists is complete.
                partial = backup.with_name(backup.name + ".part")
                shutil.copy2(dest, partial)
                os.replace(partial, backup)
        if new is not None:
            os.replace(new, dest)
        elif backup is not None and dest.exists():
            dest.unlink()

    def write(self, dest: Path, data: bytes) -> None:
        self.mkdirs(dest.parent)
        staged = dest.parent / f".{dest.name}.sketchfill-{self.token}"
        self._record(op="scratch", path=staged)
        staged.write_bytes(data)
        if dest.exists():
            shutil.copymode(dest, staged)
        self.put(staged, dest)

    def commit(self) -> None:
        self._save("commit")
        _finish(self.entries)
        self.journal.unlink()

    def rollback(self) -> None:
        _undo(self.entries)
        self.journal.unlink(missing_ok=True)
        remove_empty(self._made_data_dir)


def recover(data_dir: Path) -> str | None:
    """Finish or undo a run that was killed part-way; a sentence saying which, or None."""
    journal = data_dir / JOURNAL
    try:
        body = json.loads(journal.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InstallError(
            f"cannot read {journal} ({exc}), left by an interrupted run; remove it and run "
            "again with --repair"
        ) from None
    if body.get("state") == "commit":
        _finish(body["entries"])
        done = "finished the installation that an earlier run had nearly completed"
    else:
        _undo(body["entries"])
        done = "undid the partial changes of an earlier run that was interrupted"
    journal.unlink()
    remove_empty([Path(d) for d in body.get("made", [])])
    return done


def _undo(entries: list[dict[str, Any]]) -> None:
    for entry in reversed(entries):
        op, path = entry["op"], Path(entry.get("path") or entry["dest"])
        if op == "put":
            backup = Path(entry["backup"]) if entry["backup"] else None
            if backup is None or backup.exists() or backup.is_symlink():
                _remove(path)
            if backup is not None and (backup.exists() or backup.is_symlink()):
                os.replace(backup, path)
        elif op == "scratch":
            _remove(path)
        elif op == "mkdir":
            remove_empty([path])


def _finish(entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        if entry["op"] == "scratch":
            _remove(Path(entry["path"]))


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def remove_empty(folders: Iterable[Path]) -> None:
    """Remove folders that are empty, deepest first."""
    for d in sorted(folders, key=lambda d: len(d.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()


def _missing_parents(folder: Path) -> list[Path]:
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return list(reversed(missing))


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
