"""Reading the audit trail back, and proving it has not been tampered with.

The trail may be cut: retention (`services.retention`) moves its oldest
stretches to archive files, each recorded in `audit_archives` with its first
link and last hash. `verify_chain` checks that those records follow each
other from the genesis and that the entries still in the database continue
the last one; `verify_archives` also opens the files and recomputes every
hash in them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.db import tables as t
from app.db.audit_archive import file_digest, read_entries
from app.services.context import Services
from app.services.write_path import GENESIS_HASH, audit_hash


@dataclass(frozen=True, slots=True)
class ChainCheck:
    # Entries checked in the database (and, by `verify_archives`, in the files).
    entries: int
    # The id of the first entry whose hash or link does not match, if any.
    broken_at: int | None
    # Entries moved to archive files, and how many files.
    archived: int = 0
    archive_files: int = 0
    # When a file is missing or changed: which, and how.
    archive_problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.broken_at is None and self.archive_problem is None


# Told how many entries have been checked, after every batch (a queued check's progress).
Progress = Callable[[int], None]


async def verify_chain(services: Services, progress: Progress | None = None) -> ChainCheck:
    """Recompute every entry's hash from its content and the entry before it, starting
    where the archived stretches end."""
    async with services.db.read() as session:
        archives = list(
            (
                await session.execute(
                    select(t.AuditArchive).order_by(t.AuditArchive.first_entry_id)
                )
            ).scalars()
        )
        prev_hash = GENESIS_HASH
        for archive in archives:
            if archive.first_prev_hash != prev_hash:
                return ChainCheck(0, archive.first_entry_id, *_archived(archives))
            prev_hash = archive.last_hash
        count = 0
        result = await session.stream(
            select(*_COLUMNS).order_by(t.AuditEntry.id).execution_options(yield_per=_BATCH)
        )
        async for batch in result.partitions():
            for row in batch:
                count += 1
                body = dict(zip(_FIELDS, row[3:], strict=True))
                body["at"] = row.at.isoformat()
                if row.prev_hash != prev_hash or row.hash != audit_hash(prev_hash, body):
                    return ChainCheck(count, row.id, *_archived(archives))
                prev_hash = row.hash
            if progress is not None:
                progress(count)
    return ChainCheck(count, None, *_archived(archives))


async def verify_archives(
    services: Services, folder: Path, progress: Progress | None = None
) -> ChainCheck:
    """`verify_chain`, and every archive file in `folder` opened and recomputed."""
    check = await verify_chain(services, progress)
    if check.broken_at is not None:
        return check
    async with services.db.read() as session:
        archives = list(
            (
                await session.execute(
                    select(t.AuditArchive).order_by(t.AuditArchive.first_entry_id)
                )
            ).scalars()
        )
    for archive in archives:
        problem = await asyncio.to_thread(_file_problem, folder, archive)
        if problem is not None:
            return ChainCheck(check.entries, None, *_archived(archives), problem)
    return check


def _file_problem(folder: Path, archive: t.AuditArchive) -> str | None:
    path = folder / archive.file_name
    if not path.is_file():
        return f"{archive.file_name} is missing from {folder}"
    if file_digest(path) != archive.file_sha256:
        return f"{archive.file_name} was changed after it was written (its sha256 differs)"
    prev_hash, count = archive.first_prev_hash, 0
    for line in read_entries(path):
        count += 1
        if line["prev_hash"] != prev_hash or line["hash"] != audit_hash(prev_hash, _body(line)):
            return f"{archive.file_name}: the chain breaks at entry {line.get('id')}"
        prev_hash = line["hash"]
    if count != archive.entries or prev_hash != archive.last_hash:
        return f"{archive.file_name} does not hold the {archive.entries} entries recorded"
    return None


def _archived(archives: Iterable[t.AuditArchive]) -> tuple[int, int]:
    listed = list(archives)
    return sum(a.entries for a in listed), len(listed)


def _body(entry: t.AuditEntry | Mapping[str, Any]) -> dict[str, Any]:
    """What an entry's hash covers, from a row or an archived line."""
    if isinstance(entry, t.AuditEntry):
        fields = {name: getattr(entry, name) for name in _FIELDS}
        fields["at"] = entry.at.isoformat()
        return fields
    return {name: entry[name] for name in _FIELDS}


_FIELDS = ("action", "entity", "entity_id", "before", "after", "at", "actor_id", "revision")
# Plain rows, not ORM objects: verifying reads the whole trail (millions of entries).
_COLUMNS = (
    t.AuditEntry.id,
    t.AuditEntry.hash,
    t.AuditEntry.prev_hash,
    *(getattr(t.AuditEntry, name) for name in _FIELDS),
)
# Rows per fetch: hashing one batch holds the event loop for a few milliseconds only.
_BATCH = 1000
