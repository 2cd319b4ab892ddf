"""A run in progress, as its handler sees it: the run, progress reports, a stop flag.

The handler runs in a thread (the optimizer) or on the loop (bulk moves);
the queue's watcher stores and publishes what it reports (`RunQueue._watch`)
and sets `stop` when the run is cancelled, times out or the worker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["ActiveRun"]

_SAVED_POLL_S = 0.01


@dataclass
class ActiveRun:
    """What a handler gets: its run, a way to report progress, and whether to stop."""

    id: str
    kind: str
    payload: dict[str, Any]
    created_by: int | None
    attempt: int
    # Set when someone cancels the run, it runs past its timeout, or the worker stops.
    stop: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    progress: dict[str, Any] | None = None
    # How many reports have been stored and published.
    saved: int = 0
    _unsaved: bool = False
    # Wakes the watcher from any thread (set while the run goes on).
    _wake: Callable[[], None] | None = field(default=None, repr=False)

    def report(self, progress: dict[str, Any]) -> None:
        """Safe from any thread; stored and published every `queue.PROGRESS_INTERVAL_S`,
        the first report at once (a user waits for the first figures)."""
        first = self.progress is None
        self.progress = progress
        self._unsaved = True
        if first and self._wake is not None:
            self._wake()

    def wait_saved(self, seconds: float) -> None:
        """From the run's thread: until a report is stored and published, at most
        `seconds`, so the run's own work does not slow that down (polled with
        sleeps: under libfaketime a timed wait never times out)."""
        for _ in range(max(1, round(seconds / _SAVED_POLL_S))):
            if self.saved or self.stop.is_set():
                return
            time.sleep(_SAVED_POLL_S)

    def should_stop(self) -> bool:
        return self.stop.is_set()

    def take_progress(self) -> dict[str, Any] | None:
        if not self._unsaved:
            return None
        self._unsaved = False
        return self.progress


def detached(work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """A task of the queue's own: not in the context (request id, trace) of the request
    whose first run started the queue, so its runs and sweeps do not claim that request."""
    return asyncio.create_task(work, context=contextvars.Context())


def waker(loop: asyncio.AbstractEventLoop, woken: asyncio.Event) -> Callable[[], None]:
    """Sets `woken` from any thread; nothing once the loop is closed (the run is over)."""

    def wake() -> None:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(woken.set)

    return wake
