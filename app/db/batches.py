"""Rows in batches a statement can take, for bulk writes and `IN (...)` reads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

# Rows per statement in bulk writes (SQLite allows 32,766 parameters, asyncpg 32,767).
CHUNK = 1000


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    """`items` in slices of `size`: statements stay under the drivers' parameter limits."""
    for first in range(0, len(items), size):
        yield items[first : first + size]
