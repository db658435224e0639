"""The in-process runtime: tails the event store and drives processors (embedded mode).

Each processor subscribes from its own tracked position and is handed batches in
global order. The runtime wakes when the command bus appends in this process, and
also every ``poll_interval`` seconds, for appends from other processes (the CLI).
A batch that fails is retried with backoff, never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from commands.ports import EventStore
from domain.envelope import RecordedEvent, utc_now
from projections.processor_health import Failure

log = logging.getLogger(__name__)


class Processor(Protocol):
    name: str

    async def position(self) -> int: ...

    async def handle(self, events: Sequence[RecordedEvent]) -> int:
        """Process a batch; return the position now tracked (committed)."""
        ...


def error_text(error: BaseException) -> str:
    """The error's type and the driver's own message: never the statement or its
    parameters (SQLAlchemy's text carries them, and with them a tenant's data)."""
    cause = getattr(error, "orig", None) or error
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first}"[:300]


class InProcessRuntime:
    def __init__(
        self,
        store: EventStore,
        processors: Sequence[Processor],
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.store = store
        self.processors = list(processors)
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.wakeups = {p.name: asyncio.Event() for p in self.processors}
        self.positions: dict[str, int] = {}
        self.listeners: list[Callable[[str, int], None]] = []
        self.failures: dict[str, Failure] = {}  # processors that cannot go on, by name
        self.failure_listeners: list[Callable[[str, Failure | None], None]] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.stopping = False
        self.stopped = asyncio.Event()

    def on_failure(self, listener: Callable[[str, Failure | None], None]) -> None:
        """Call ``listener(processor_name, failure)`` when a processor's batch fails, and with
        ``None`` when it moves on again."""
        self.failure_listeners.append(listener)

    def on_progress(self, listener: Callable[[str, int], None]) -> None:
        """Call ``listener(processor_name, position)`` after each committed batch."""
        self.listeners.append(listener)

    def notify(self, *_: object) -> None:
        for wakeup in self.wakeups.values():
            wakeup.set()

    async def start(self) -> None:
        self.stopping = False
        self.stopped = asyncio.Event()
        for processor in self.processors:
            self.positions[processor.name] = await processor.position()
            self.tasks.append(asyncio.create_task(self._run(processor), name=processor.name))

    async def stop(self, grace: float = 10.0) -> None:
        """Let each processor finish its batch (never cut a transaction), then return."""
        self.stopping = True
        self.stopped.set()
        self.notify()
        if self.tasks:
            _, late = await asyncio.wait(self.tasks, timeout=grace)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.tasks.clear()

    async def catch_up(self) -> int:
        """Drive every processor to the head of the store now (CLI, tests, replay)."""
        head = await self.store.head_position()
        for processor in self.processors:
            position = await processor.position()
            while position < head:
                batch = await self.store.read_all(position, self.batch_size)
                if not batch:
                    break
                position = await processor.handle(batch)
                self._progress(processor.name, position)
        return head

    async def _run(self, processor: Processor) -> None:
        wakeup = self.wakeups[processor.name]
        backoff = 0.1
        failure: Failure | None = None
        narrow_until = 0  # after a failure, one event at a time up to the failed batch's end
        past_start = False  # a failure an earlier process reported is cleared once past it
        while not self.stopping:
            wakeup.clear()  # before reading: a notify that lands during the read is kept
            position = self.positions[processor.name]
            batch: list[RecordedEvent] = []
            try:
                # one event at a time after a failure: what comes before the event that
                # fails is applied, and the report names that event
                size = 1 if position < narrow_until else self.batch_size
                batch = await self.store.read_all(position, size)
                if batch:
                    done = await processor.handle(batch)
                    self._progress(processor.name, done)
                    backoff = 0.1
                    if failure is not None and done >= failure.position:
                        failure = None
                        self._failed(processor.name, None)
                    elif not past_start and failure is None:
                        self._failed(processor.name, None)
                    past_start = True
                    continue
            except Exception as error:
                log.exception(
                    "processor %s failed at position %s; retrying", processor.name, position
                )
                failure = self._failure(processor.name, failure, position, batch, error)
                narrow_until = max(narrow_until, batch[-1].position if batch else position + 1)
                self._failed(processor.name, failure)
                with contextlib.suppress(TimeoutError):  # stop() cuts the backoff short
                    await asyncio.wait_for(self.stopped.wait(), timeout=backoff)
                backoff = min(backoff * 2, self.max_backoff)
                self.positions[processor.name] = await self._safe_position(processor, position)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=self.poll_interval)

    @staticmethod
    def _failure(name: str, before: Failure | None, position: int,
                 batch: list[RecordedEvent], error: Exception) -> Failure:
        event = batch[0] if len(batch) == 1 else None
        at = event.position if event else position + 1  # the event it cannot get past
        same = before is not None and before.position == at
        return Failure(
            processor=name,
            position=at,
            attempts=before.attempts + 1 if same and before else 1,
            since=before.since if same and before else utc_now(),
            error=error_text(error),
            event_id=event.event_id if event else None,
            event_type=event.type if event else None,
            aggregate_type=event.aggregate_type if event else None,
            aggregate_id=event.aggregate_id if event else None,
        )

    def _failed(self, name: str, failure: Failure | None) -> None:
        """Tell the listeners (``None``: it moves on again, or it did not fail here)."""
        if failure is None:
            self.failures.pop(name, None)
        else:
            self.failures[name] = failure
        for listener in self.failure_listeners:
            listener(name, failure)

    async def _safe_position(self, processor: Processor, fallback: int) -> int:
        try:
            return await processor.position()
        except Exception:
            return fallback

    def _progress(self, name: str, position: int) -> None:
        self.positions[name] = position
        for listener in self.listeners:
            listener(name, position)
