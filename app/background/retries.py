"""Retries with exponential backoff: taskiq's retry middleware, recording each failed try.

A try that raises is recorded on the run's row (its attempt log, and the
error), then queued again after backoff, 2 x backoff, 4 x backoff, ...
(capped) until its retries are spent; the last failure leaves the row
`failed`, which is the dead-letter record. A run past its timeout, one
stopped by its worker shutting down, or one that raised `RunFailed` is not
retried.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from taskiq import SmartRetryMiddleware
from taskiq.exceptions import NoResultError
from taskiq.kicker import AsyncKicker
from taskiq.message import TaskiqMessage
from taskiq.result import TaskiqResult

from app.background import records

if TYPE_CHECKING:
    from app.background.queue import RunQueue

DEFAULT_BACKOFF_S = 1.0
MAX_BACKOFF_S = 300.0


class RunFailed(Exception):
    """Fail the run now, without retrying: what it was asked is wrong, not the weather."""


class RetryWithBackoff(SmartRetryMiddleware):
    def __init__(self, queue: RunQueue, *, task_name: str) -> None:
        super().__init__(default_retry_label=True, default_delay=DEFAULT_BACKOFF_S)
        self.max_delay_exponent = MAX_BACKOFF_S
        self.queue = queue
        self.task_name = task_name

    def make_delay(self, message: TaskiqMessage, retries: int) -> float:
        base = float(message.labels.get("backoff_s", self.default_delay))
        return float(min(base * 2 ** (retries - 1), self.max_delay_exponent))

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        if message.task_name != self.task_name or isinstance(exception, NoResultError):
            return
        attempt = int(message.labels.get("_retries", 0)) + 1
        tries = int(message.labels.get("max_retries", 1))
        final = isinstance(exception, TimeoutError | RunFailed | asyncio.CancelledError)
        retry_in = None if final or attempt >= tries else self.make_delay(message, attempt)
        run_id = str(message.args[0])
        found = await records.get(self.queue.db, run_id)
        kind = found.kind if found is not None else "unknown"
        await self.queue.failed_attempt(
            run_id, kind, _described(exception, message), attempt, retry_in
        )
        if retry_in is None:
            return
        kicker: AsyncKicker[Any, Any] = (
            AsyncKicker(task_name=message.task_name, broker=self.broker, labels=message.labels)
            .with_task_id(message.task_id)
            .with_labels(_retries=attempt)
        )
        await self.on_send(kicker, message, retry_in)
        result.error = NoResultError()


def _described(exception: BaseException, message: TaskiqMessage) -> str:
    if isinstance(exception, TimeoutError):
        return f"stopped: it ran past its timeout of {message.labels.get('timeout')} s"
    if isinstance(exception, asyncio.CancelledError):
        return "stopped: the worker was shut down"
    return f"{_recorded_name(exception)}: {exception}"


def _recorded_name(exception: BaseException) -> str:
    # The dead-letter record named this failure before background work was
    # called a run; the rows already stored, and whoever reads them, keep it.
    return "JobFailed" if isinstance(exception, RunFailed) else type(exception).__name__
