"""Enabling the Krita plug-in in kritarc: byte-exact edits of one key, the rest untouched."""

from __future__ import annotations

from . import plugins

KRITARC_BACKUP_SUFFIX = ".sketchfill-backup"
ENABLE_KEY = f"enable_{plugins.PLUGIN_NAME}".encode()
_PYTHON_SECTION = b"[python]"


def kritarc_enable(data: bytes) -> bytes:
    """kritarc with `[python] enable_sketchfill=true`; every other byte is kept."""
    lines = data.splitlines(keepends=True)
    nl = b"\r\n" if b"\r\n" in data else b"\n"
    entry = ENABLE_KEY + b"=true"
    section = _section(lines)
    if section is None:
        body = data if not data or data.endswith(b"\n") else data + nl
        gap = nl if body.strip() else b""
        return body + gap + _PYTHON_SECTION + nl + entry + nl
    start, end = section
    for i in range(start + 1, end):
        if _key(lines[i]) == ENABLE_KEY:
            if lines[i].split(b"=", 1)[1].strip() == b"true":
                return data
            lines[i] = entry + _ending(lines[i], nl)
            return b"".join(lines)
    at = max([start + 1] + [i + 1 for i in range(start + 1, end) if lines[i].strip()])
    if not lines[at - 1].endswith(b"\n"):
        lines[at - 1] += nl
    lines.insert(at, entry + nl)
    return b"".join(lines)


def kritarc_disable(data: bytes) -> bytes:
    """kritarc without SketchFill's entry, and without a [python] section left empty (the
    way kritarc_enable adds one, blank line before it included)."""
    lines = data.splitlines(keepends=True)
    section = _section(lines)
    if section is None:
        return data
    start, end = section
    keep = [i for i in range(start + 1, end) if _key(lines[i]) != ENABLE_KEY]
    if any(lines[i].strip() for i in keep):
        return b"".join(line for i, line in enumerate(lines) if i in keep or not start < i < end)
    first = start - 1 if start > 0 and not lines[start - 1].strip() else start
    return b"".join(lines[:first] + lines[end:])


def kritarc_enabled(data: bytes) -> bool:
    return kritarc_enable(data) == data


def _section(lines: list[bytes]) -> tuple[int, int] | None:
    for start, line in enumerate(lines):
        if line.strip() == _PYTHON_SECTION:
            end = next(
                (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith(b"[")),
                len(lines),
            )
            return start, end
    return None


def _key(line: bytes) -> bytes | None:
    return line.split(b"=", 1)[0].strip() if b"=" in line else None


def _ending(line: bytes, default: bytes) -> bytes:
    stripped = line.rstrip(b"\r\n")
    return line[len(stripped) :] or default
