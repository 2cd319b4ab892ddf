"""A steady heap while a background run works: what the process held before
the run is not walked by the garbage collector until the run ends.

An optimizer run on a large plant allocates hundreds of thousands of small
objects in a burst (its first plan); each of the collector's full passes
would also walk everything the process already held (the app's caches, a
freshly loaded plant), a third of a second per first plan on the large demo.
`gc.freeze()` moves those objects out of the collector's sight; objects the
run makes are collected as usual, and reference counting frees everything as
it always does. The last run to end gives the collector the old objects back.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["steady_heap"]

_lock = threading.Lock()
_runs = 0


@contextmanager
def steady_heap() -> Iterator[None]:
    global _runs
    with _lock:
        _runs += 1
        gc.freeze()
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                gc.unfreeze()
