"""The sweep: runs whose message the broker lost, runs whose worker died, housekeeping.

The `background_jobs` row is the truth and the broker message only carries
it to a worker, so the two can part: Redis restarted without persistence or
was flushed, a worker died between taking a message and starting its run,
the embedded app restarted with runs in its in-process queue. The row then
waits forever, and a page polling it spins. And a worker can die without a
word (killed, out of memory, the machine gone), leaving its runs active.

Every process that runs a queue (the app, each `takt worker`) sweeps every
`interval_s` while its queue runs:

- a run still *waiting* `lost_after_s` after its message was due, whose
  message is in none of the broker's queues, is queued again, with its
  priority and what is left of its retries;
- a run *active* without a heartbeat for `heartbeat_grace_s` (a run in progress
  beats every `heartbeat_s`) lost its worker: it is queued again at once when
  it has tries left, else failed with the reason (the dead-letter record);
- then the housekeeping the queue was given runs (expired drafts go).

Each of those transitions is one conditional UPDATE (`records`), so sweeps
in several processes take a run back once. Delivery stays at least once: a
message a worker took just before the sweep looked can arrive beside the one
queued again, and `records.start` lets only the first of them start the run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter

from app import clock
from app.background import records
from app.background.records import RunRecord

if TYPE_CHECKING:
    from app.background.queue import RunQueue

# How often a run in progress beats, at most; a shorter grace makes it beat more often.
HEARTBEAT_S = 5.0

QUEUE_SWEPT = Counter("takt_queue_swept_total", "Jobs the sweep took back, by outcome", ["outcome"])

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    interval_s: float = 10.0
    lost_after_s: float = 60.0
    heartbeat_grace_s: float = 20.0

    @property
    def heartbeat_s(self) -> float:
        """Often enough that a worker is called dead only after missing several beats."""
        return min(HEARTBEAT_S, self.heartbeat_grace_s / 4)


@dataclass(frozen=True, slots=True)
class Swept:
    # Queued again: lost messages, and runs of dead workers with tries left.
    requeued: list[str]
    # Runs of dead workers with no tries left.
    failed: list[str]


@dataclass(frozen=True, slots=True)
class Abandoned:
    """What becomes of an active run whose worker stopped beating."""

    status: str  # waiting (another try) | failed
    error: str
    attempt: dict[str, Any]


def lost(waiting: Sequence[RunRecord], queued: Container[str]) -> list[RunRecord]:
    """The waiting runs the broker holds no message for."""
    return [found for found in waiting if found.id not in queued]


def abandoned(found: RunRecord, *, now: datetime) -> Abandoned:
    """Tried again (at once: the worker failed, not the run) while it has tries left."""
    last_seen = found.heartbeat_at or found.started_at or now
    silent_s = max(0.0, (now - last_seen).total_seconds())
    on = f" {found.worker}" if found.worker else ""
    error = f"stopped: its worker{on} stopped answering (no heartbeat for {silent_s:.0f} s)"
    retry = found.attempts <= found.max_retries
    return Abandoned(
        status="waiting" if retry else "failed",
        error=error,
        attempt={"attempt": found.attempts, "error": error, "retry_in_s": 0.0 if retry else None},
    )


async def sweep(
    queue: RunQueue,
    policy: SweepPolicy,
    housekeeping: Mapping[str, Callable[[], Awaitable[object]]],
) -> Swept:
    swept = await _take_back(queue, policy)
    QUEUE_SWEPT.labels("requeued").inc(len(swept.requeued))
    QUEUE_SWEPT.labels("failed").inc(len(swept.failed))
    if swept.requeued or swept.failed:
        log.warning("job queue: swept; queued again %s, failed %s", swept.requeued, swept.failed)
    for name, chore in housekeeping.items():
        try:
            await chore()
        except Exception:  # the next sweep tries again
            log.exception("job queue: housekeeping %r failed", name)
    return swept


async def _take_back(queue: RunQueue, policy: SweepPolicy) -> Swept:
    now = clock.now()
    due_before = now - timedelta(seconds=policy.lost_after_s)
    silent_since = now - timedelta(seconds=policy.heartbeat_grace_s)
    waiting, active = await records.overdue(
        queue.db, due_before=due_before, silent_since=silent_since
    )
    requeued: list[str] = []
    failed: list[str] = []
    if waiting:
        # Read after the rows: a message taken meanwhile belongs to a run no longer waiting.
        queued = await queue.queued()
        for found in lost(waiting, queued):
            if await records.requeue_lost(queue.db, found.id, due_before=due_before):
                await queue.kick_again(found)
                requeued.append(found.id)
    for found in active:
        verdict = abandoned(found, now=now)
        taken = await records.abandon(
            queue.db,
            found,
            silent_since=silent_since,
            status=verdict.status,
            error=verdict.error,
            attempt=verdict.attempt,
        )
        if not taken:
            continue  # it beat meanwhile, or another sweep took it
        if verdict.status == "waiting":
            await queue.kick_again(found)
            requeued.append(found.id)
        else:
            await queue.gave_up(found, verdict.error)
            failed.append(found.id)
    return Swept(requeued=requeued, failed=failed)
