"""The execution runner: turns ExecutionRequested into a crew run recorded as events.

Every step of a run goes through the command bus (the single writer and the state machine),
recorded by the run's ``RunRecorder`` (``streams.run_recorder``). Runs execute on worker
threads, at most ``max_concurrency`` at a time. A run honours CancelRequested at its next
step and fails when it passes its timeout. After a crash, ``resume_unfinished`` re-drives
every execution the log left unfinished: LLM requests already recorded are answered from
the log (prompts are deterministic), so only calls never made before are paid for; tasks
already completed are not recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext, correlated
from commands.errors import StoreUnavailable
from commands.ports import AppendResult, EventStore
from domain.envelope import RecordedEvent
from domain.errors import AlreadyStarted, DomainError
from domain.execution import Execution
from domain.registry import rehydrate
from domain.vocabulary import TERMINAL_STATUSES, AggregateType, EventType, ExecutionStatus
from streams.engine import CrewEngine, RunCancelled, RunResult
from streams.memory import MemoryRecall
from streams.run_recorder import RunRecorder, StopKind, describe

log = logging.getLogger(__name__)


class ExecutionRunner:
    """A processor of the event feed that runs requested executions."""

    name = "execution-runner"

    def __init__(
        self,
        store: EventStore,
        bus: CommandBus,
        engine: CrewEngine,
        *,
        max_concurrency: int = 4,
        default_timeout_s: float = 600.0,
        memory: MemoryRecall | None = None,
        store_retry_s: float = 120.0,
        owns: Callable[[str], bool] | None = None,
    ) -> None:
        self.store = store
        # which executions this runner drives (distributed: those of the partitions its
        # worker owns); None: all of them
        self.owns = owns or (lambda _execution_id: True)
        # how long a step is retried while the store cannot confirm it (a broker or a
        # partition's writer changing hands) before the run gives up
        self.store_retry_s = store_retry_s
        self.bus = bus
        self.engine = engine
        self.memory = memory  # crew memory recall; None: crews with memory recall nothing
        self.default_timeout_s = default_timeout_s
        self.slots = asyncio.Semaphore(max_concurrency)
        self.executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="kasal-run")
        self.active: dict[str, asyncio.Task[None]] = {}
        self.recorders: dict[str, RunRecorder] = {}
        self.start_position = 0

    async def durably(self, command: m.Command, ctx: CommandContext) -> AppendResult:
        """Dispatch, retrying with the SAME command id while the store cannot confirm the
        outcome: the retry either finds the first attempt's result or appends once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.store_retry_s
        delay = 0.25
        while True:
            try:
                return await self.bus.dispatch(command, ctx)
            except StoreUnavailable as error:
                execution_id = getattr(command, "execution_id", None)
                if execution_id is not None and not self.owns(execution_id):
                    # handed to another worker meanwhile: it resumes from the log, and this
                    # step, if it was not appended, must not land after its own
                    raise RunCancelled(StopKind.SHUTDOWN.value) from error
                if loop.time() + delay > deadline:
                    raise
                log.warning("%s not confirmed by the event store (%s); retrying the same "
                            "command", type(command).__name__, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def position(self) -> int:
        """The runner starts at the log's head; earlier work is found by ``resume_unfinished``."""
        if self.start_position == 0:
            self.start_position = await self.store.head_position()
        return self.start_position

    async def handle(self, events: Sequence[RecordedEvent]) -> int:
        for event in events:
            if event.aggregate_type != AggregateType.EXECUTION:
                continue
            if not self.owns(event.aggregate_id):
                continue
            if event.type == EventType.EXECUTION_REQUESTED:
                self.launch(event.aggregate_id)
            elif event.type == EventType.EXECUTION_CANCEL_REQUESTED:
                recorder = self.recorders.get(event.aggregate_id)
                if recorder is not None:
                    recorder.stop(StopKind.CANCEL,
                                  event.payload.get("reason") or "cancel requested")
                else:
                    self.launch(event.aggregate_id)  # not running here: confirm the cancel
        return events[-1].position if events else self.start_position

    async def resume_unfinished(self, execution_ids: Sequence[str]) -> int:
        """Re-drive executions the log left unfinished (after a crash or a stop, or when
        this runner's worker was given their partitions)."""
        launched = 0
        for execution_id in execution_ids:
            if execution_id not in self.active and self.owns(execution_id):
                self.launch(execution_id)
                launched += 1
        return launched

    def release_unowned(self) -> list[str]:
        """Stop the runs this runner no longer owns at their next step, recording no end:
        the partition's new owner resumes them from the log."""
        released = [i for i in list(self.recorders) if not self.owns(i)]
        for execution_id in released:
            self.recorders[execution_id].stop(StopKind.SHUTDOWN)
        return released

    def launch(self, execution_id: str) -> None:
        if execution_id in self.active:
            return
        task = asyncio.create_task(self._drive(execution_id), name=f"run:{execution_id}")
        self.active[execution_id] = task
        task.add_done_callback(lambda _: self.active.pop(execution_id, None))

    async def wait_idle(self) -> None:
        while self.active:
            await asyncio.gather(*list(self.active.values()), return_exceptions=True)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop runs at their next step without recording an end: they resume on restart."""
        for recorder in list(self.recorders.values()):
            recorder.stop(StopKind.SHUTDOWN)
        tasks = list(self.active.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    # --- one run --------------------------------------------------------------------
    async def _drive(self, execution_id: str) -> None:
        try:
            async with self.slots:
                await self._run(execution_id)
        except Exception:
            log.exception("execution %s: the runner failed", execution_id)

    async def _run(self, execution_id: str) -> None:
        if not self.owns(execution_id):  # handed to another worker while it waited
            return
        events = await self.store.read_stream(execution_id)
        execution = rehydrate(Execution, events)
        if execution is None or execution.status in TERMINAL_STATUSES:
            return
        with correlated(events[0].correlation_id):
            loop = asyncio.get_running_loop()
            recorder = RunRecorder(execution, events, self.durably, loop, self.memory)
            if execution.status == ExecutionStatus.CANCEL_REQUESTED:
                await self._finish(recorder, m.ConfirmCancel(
                    execution_id=execution_id, reason="cancelled before it could run"))
                return
            self.recorders[execution_id] = recorder
            try:
                await self._drive_engine(execution, recorder)
            finally:
                self.recorders.pop(execution_id, None)

    async def _drive_engine(self, execution: Execution, recorder: RunRecorder) -> None:
        timeout = execution.timeout_s or self.default_timeout_s
        # the engine's thread keeps this context: its log lines carry the correlation id
        work = asyncio.get_running_loop().run_in_executor(
            self.executor, contextvars.copy_context().run, self.engine.run, execution.crew,
            execution.agents, dict(execution.inputs), recorder,
        )
        done, _ = await asyncio.wait({work}, timeout=timeout)
        if not done:
            recorder.stop(StopKind.TIMEOUT)
        result: RunResult | None = None
        error: BaseException | None = None
        try:
            result = await work
        except RunCancelled:
            pass
        except Exception as raised:
            error = raised
        await recorder.drain()  # the appends the engine handed over, settled, in order
        stopped = recorder.stopped
        if stopped is None and error is None and result is None:
            # a bare RunCancelled from the engine: it stopped on its own, as if cancelled
            recorder.stop(StopKind.CANCEL, "the engine stopped the run")
            stopped = recorder.stopped
        early = stopped is not None and (
            stopped.kind in (StopKind.SHUTDOWN, StopKind.REFUSED)  # CrewAI may wrap our signal
            or (recorder.failure is None
                and (result is not None or error is None or recorder.told_to_stop))
        )
        if early:  # cancelled, timed out, shut down or refused: keep what was done
            await self._ended_early(recorder, timeout)
            return
        error = recorder.failure or error  # a step that could not be recorded comes first
        if error is not None or result is None:
            await self._record_pending(recorder)
            await self._finish(recorder, m.FailExecution(
                execution_id=recorder.execution_id,
                error=describe(error or RuntimeError("the engine returned no result"))))
            return
        try:
            await self.durably(*recorder.batch(recorder.completion(result.output)))
        except DomainError as refused:
            await self.refused(recorder, refused)

    async def _ended_early(self, recorder: RunRecorder, timeout: float) -> None:
        """Cancelled, timed out or shut down: keep what was done, then say how it ended."""
        stopped = recorder.stopped
        assert stopped is not None
        if stopped.kind is StopKind.REFUSED:
            await self.refused(recorder, stopped.refusal)
            return
        await self._record_pending(recorder)
        if stopped.kind is StopKind.SHUTDOWN:
            return  # left running on purpose: resumed at the next start
        if stopped.kind is StopKind.TIMEOUT:
            error = f"timed out after {timeout:g} s (timeout_s)"
            await self._finish(recorder, m.FailExecution(execution_id=recorder.execution_id,
                                                         error=error))
        else:
            await self._finish(recorder, m.ConfirmCancel(execution_id=recorder.execution_id,
                                                         reason=stopped.reason))

    async def refused(self, recorder: RunRecorder, error: DomainError | None) -> None:
        """The log refused a step: the execution ended or is run elsewhere (back off and
        record nothing), or the step itself was wrong (the run fails with the cause)."""
        events = await self.store.read_stream(recorder.execution_id)
        execution = rehydrate(Execution, events)
        if execution is None or execution.status in TERMINAL_STATUSES:
            return  # ended by someone else (a cancel before start, another runner)
        if isinstance(error, AlreadyStarted):
            log.warning("execution %s is run by another runner; this one backs off",
                        recorder.execution_id)
            return
        await self._finish(recorder, m.FailExecution(
            execution_id=recorder.execution_id, error=f"a step was refused: {error}"))

    async def _record_pending(self, recorder: RunRecorder) -> None:
        await recorder.drain()
        steps = recorder.take()
        if steps:
            with contextlib.suppress(DomainError, RunCancelled):  # RunCancelled: moved away
                await self.durably(*recorder.batch(steps))

    async def _finish(self, recorder: RunRecorder, command: m.Command) -> None:
        await recorder.drain()
        # DomainError: already finished by someone else; RunCancelled: moved to another worker
        with contextlib.suppress(DomainError, RunCancelled):
            await self.durably(command, recorder.context("finish"))
