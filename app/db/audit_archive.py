"""The audit archive's files: a stretch of the audit trail as gzip'd JSON lines.

    digest = write_entries(path, entries)    # atomically: beside it, then renamed
    for entry in read_entries(path): ...     # the same dicts back

One entry per line, with every column of `audit_entries` (`at` in ISO 8601),
in chain order. The file's sha256 goes into `audit_archives`, so a changed
file is found even before its hashes are recomputed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["file_digest", "read_entries", "write_entries"]


def write_entries(path: Path, entries: Iterable[dict[str, Any]]) -> str:
    """Write `entries` to `path` (replacing it whole, never half); the file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
            for entry in entries:
                line = json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str)
                packed.write(line.encode() + b"\n")
        raw.flush()
        os.fsync(raw.fileno())
    partial.replace(path)
    return file_digest(path)


def read_entries(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                found: dict[str, Any] = json.loads(line)
                yield found


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as raw:
        for block in iter(lambda: raw.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
