"""The execution runner: turns ExecutionRequested into a crew run recorded as events.

Every step of a run goes through the command bus (the single writer and the state machine).
Steps are batched: one append before each model call that is paid for, one at the end. Runs
execute on worker threads, at most ``max_concurrency`` at a time. A run honours
CancelRequested at its next step and fails when it passes its timeout. After a crash,
``resume_unfinished`` re-drives every execution the log left unfinished: LLM requests
already recorded are answered from the log (prompts are deterministic), so only calls never
made before are paid for; tasks already completed are not recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from commands.ports import AppendResult, EventStore, StoreUnavailable
from domain.envelope import RecordedEvent
from domain.errors import DomainError, InvalidTransition
from domain.execution import CANCEL_REQUESTED, REQUESTED, TERMINAL, Execution
from domain.ids import uuid7
from domain.registry import rehydrate
from streams.engine import CrewEngine, LlmCall, RunCancelled
from streams.memory import MemoryRecall

log = logging.getLogger(__name__)
ACTOR = "service:execution-runner"
MEMORY_WAIT_S = 10.0  # before a run's first recall: for the vector projector to pass its cut
MEMORY_RECALL_TIMEOUT_S = 60.0
SHUTDOWN = "shutdown"
TIMEOUT = "timeout"
REFUSED = "refused"


class RunHooksImpl:
    """Bridges the engine's threads to the bus on the event loop.

    Steps are queued, then appended as ONE ``RecordSteps`` command (one transaction) right
    before every model call that is not answered from the log, and at the end of the run.
    So each paid call is preceded by a durable record of everything before it, and a crash
    can lose at most the call in flight, while a run costs a few appends, not one per step.
    """

    def __init__(
        self,
        runner: ExecutionRunner,
        execution: Execution,
        events: Sequence[RecordedEvent],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.runner = runner
        self.execution_id = execution.aggregate_id
        self.tenant_id = execution.tenant_id
        self.crew_id = execution.crew_id
        self.loop = loop
        requested = events[0]
        # crew memory recalls what was recorded before this run was requested: never the
        # run itself nor later runs, and the same again when the run is resumed
        self.memory_cut = requested.position
        self.memory_ready = False
        self.correlation_id = requested.correlation_id
        self.causation_id = requested.event_id
        self.stop_reason: str | None = None
        self.refusal: DomainError | None = None
        self.lock = threading.Lock()
        self.pending: list[m.Step] = []
        self.recorded: dict[str, str] = {}
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0,
                      "cost": 0.0, "llm_calls": 0, "replayed_llm_calls": 0}
        for event in events:
            if event.type == "ExecutionLlmCallCompleted":
                call = event.payload["call"]
                self.recorded.setdefault(call["request_hash"], call["response"])
                self._count(call)
        self.completed_tasks = set(execution.completed_tasks)
        self.started_tasks = {
            str(e.payload["task_name"]) for e in events if e.type == "ExecutionTaskStarted"
        }
        if execution.status == REQUESTED:
            self.pending.append(m.Step(kind="start"))

    # --- called by the runner -------------------------------------------------------
    def stop(self, reason: str) -> None:
        with self.lock:
            if self.stop_reason is None:
                self.stop_reason = reason

    def take(self) -> list[m.Step]:
        with self.lock:
            steps, self.pending = self.pending, []
        return steps

    def batch(self, steps: list[m.Step]) -> tuple[m.RecordSteps, CommandContext]:
        return (
            m.RecordSteps(execution_id=self.execution_id, steps=steps),
            self.context(f"steps:{uuid7()}"),
        )

    # --- RunHooks, called on the engine's threads ------------------------------------
    def cancelled(self) -> bool:
        return self.stop_reason is not None

    def recorded_response(self, request_hash: str) -> str | None:
        response = self.recorded.get(request_hash)
        if response is not None:
            with self.lock:
                self.usage["replayed_llm_calls"] += 1
            return response
        self.flush()  # the model is about to be paid: make everything before it durable
        return None

    def task_started(self, task_name: str) -> None:
        if task_name not in self.completed_tasks and task_name not in self.started_tasks:
            self.started_tasks.add(task_name)
            self._queue(m.Step(kind="task_started", task_name=task_name))

    def task_completed(self, task_name: str, output: str) -> None:
        if task_name not in self.completed_tasks:
            self.completed_tasks.add(task_name)
            self._queue(m.Step(kind="task_completed", task_name=task_name, output=output))

    def llm_call(self, call: LlmCall) -> None:
        payload = call.as_payload()
        with self.lock:
            self._count(payload)
        self._queue(m.Step(kind="llm_call", call=payload))

    def tool_used(self, task_name: str | None, tool: str, tool_input: str, output: str) -> None:
        if task_name in self.completed_tasks:  # replaying a task the log already holds
            return
        self._queue(m.Step(kind="tool_used", task_name=task_name, tool=tool,
                           tool_input=tool_input[:20_000], output=output[:20_000]))

    def recall_memory(self, query: str, limit: int) -> list[str]:
        memory = self.runner.memory
        if memory is None:
            return []
        future = asyncio.run_coroutine_threadsafe(self._recall(memory, query, limit), self.loop)
        try:
            return future.result(MEMORY_RECALL_TIMEOUT_S)
        except Exception:  # memory is an aid: a run goes on without it
            future.cancel()
            log.exception("execution %s: recalling crew memory failed", self.execution_id)
            return []

    async def _recall(self, memory: MemoryRecall, query: str, limit: int) -> list[str]:
        if not self.memory_ready:
            if not await memory.wait_until_indexed(self.memory_cut, MEMORY_WAIT_S):
                log.warning("execution %s: crew memory is behind the log; recalling what it "
                            "holds", self.execution_id)
            self.memory_ready = True
        return await memory.recall_memory(
            self.tenant_id, self.crew_id, self.memory_cut, query, limit
        )

    def flush(self) -> None:
        """Append the queued steps now (from an engine thread; blocks until durable)."""
        if self.stop_reason is not None:
            raise RunCancelled(self.stop_reason)
        steps = self.take()
        if not steps:
            return
        future = asyncio.run_coroutine_threadsafe(
            self.runner.durably(*self.batch(steps)), self.loop
        )
        try:
            future.result()
        except DomainError as error:
            self.refused(error)
            raise RunCancelled(str(error)) from error

    def refused(self, error: DomainError) -> None:
        """The log refused a step: the execution ended or is run elsewhere (back off and
        record nothing), or the step itself was wrong (the run fails with the cause)."""
        with self.lock:
            if self.stop_reason is None:
                self.stop_reason = REFUSED
                self.refusal = error

    # --- internals ------------------------------------------------------------------
    def _queue(self, step: m.Step) -> None:
        if self.stop_reason is not None:
            raise RunCancelled(self.stop_reason)
        with self.lock:
            self.pending.append(step)

    def _count(self, call: dict[str, Any]) -> None:
        prompt = int(call.get("prompt_tokens") or 0)
        completion = int(call.get("completion_tokens") or 0)
        self.usage["prompt_tokens"] += prompt
        self.usage["completion_tokens"] += completion
        self.usage["total_tokens"] += prompt + completion
        self.usage["cost"] += float(call.get("cost") or 0.0)
        self.usage["llm_calls"] += 1

    def context(self, step: str) -> CommandContext:
        return CommandContext(
            tenant_id=self.tenant_id,
            actor=ACTOR,
            command_id=f"{self.execution_id}:{step}",
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
        )


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
        self.hooks: dict[str, RunHooksImpl] = {}
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
                    raise RunCancelled(SHUTDOWN) from error
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
            if event.aggregate_type != "execution":
                continue
            if not self.owns(event.aggregate_id):
                continue
            if event.type == "ExecutionRequested":
                self.launch(event.aggregate_id)
            elif event.type == "ExecutionCancelRequested":
                hooks = self.hooks.get(event.aggregate_id)
                if hooks is not None:
                    hooks.stop(event.payload.get("reason") or "cancel requested")
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
        released = [i for i in list(self.hooks) if not self.owns(i)]
        for execution_id in released:
            self.hooks[execution_id].stop(SHUTDOWN)
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
        for hooks in list(self.hooks.values()):
            hooks.stop(SHUTDOWN)
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
        if execution is None or execution.status in TERMINAL:
            return
        loop = asyncio.get_running_loop()
        hooks = RunHooksImpl(self, execution, events, loop)
        if execution.status == CANCEL_REQUESTED:
            await self._finish(hooks, m.ConfirmCancel(execution_id=execution_id,
                                                      reason="cancelled before it could run"))
            return
        self.hooks[execution_id] = hooks
        timeout = execution.timeout_s or self.default_timeout_s
        work = loop.run_in_executor(
            self.executor, self.engine.run, execution.crew, execution.agents,
            dict(execution.inputs), hooks,
        )
        try:
            done, _ = await asyncio.wait({work}, timeout=timeout)
            if not done:
                hooks.stop(TIMEOUT)
            try:
                result = await work
            except RunCancelled:
                await self._ended_early(hooks, timeout)
                return
            except Exception as error:
                if hooks.stop_reason in (SHUTDOWN, REFUSED):  # CrewAI may wrap our signal
                    await self._ended_early(hooks, timeout)
                    return
                await self._record_pending(hooks)
                await self._finish(hooks, m.FailExecution(
                    execution_id=execution_id, error=describe(error)))
                return
            if hooks.stop_reason is not None:
                await self._ended_early(hooks, timeout)
                return
            steps = [*hooks.take(), m.Step(kind="complete", output=result.output,
                                           usage=dict(hooks.usage))]
            try:
                await self.durably(*hooks.batch(steps))
            except DomainError as error:
                hooks.refused(error)
                await self._refused(hooks)
        finally:
            self.hooks.pop(execution_id, None)

    async def _ended_early(self, hooks: RunHooksImpl, timeout: float) -> None:
        """Cancelled, timed out or shut down: keep what was done, then say how it ended."""
        reason = hooks.stop_reason or "cancelled"
        if reason == REFUSED:
            await self._refused(hooks)
            return
        await self._record_pending(hooks)
        if reason == SHUTDOWN:
            return  # left running on purpose: resumed at the next start
        if reason == TIMEOUT:
            error = f"timed out after {timeout:g} s (timeout_s)"
            await self._finish(hooks, m.FailExecution(execution_id=hooks.execution_id,
                                                      error=error))
        else:
            await self._finish(hooks, m.ConfirmCancel(execution_id=hooks.execution_id,
                                                      reason=reason))

    async def _refused(self, hooks: RunHooksImpl) -> None:
        error = hooks.refusal
        events = await self.store.read_stream(hooks.execution_id)
        execution = rehydrate(Execution, events)
        if execution is None or execution.status in TERMINAL:
            return  # ended by someone else (a cancel before start, another runner)
        if isinstance(error, InvalidTransition) and "not requested" in str(error):
            log.warning("execution %s is run by another runner; this one backs off",
                        hooks.execution_id)
            return
        await self._finish(hooks, m.FailExecution(
            execution_id=hooks.execution_id, error=f"a step was refused: {error}"))

    async def _record_pending(self, hooks: RunHooksImpl) -> None:
        steps = hooks.take()
        if steps:
            with contextlib.suppress(DomainError, RunCancelled):  # RunCancelled: moved away
                await self.durably(*hooks.batch(steps))

    async def _finish(self, hooks: RunHooksImpl, command: m.Command) -> None:
        # DomainError: already finished by someone else; RunCancelled: moved to another worker
        with contextlib.suppress(DomainError, RunCancelled):
            await self.durably(command, hooks.context("finish"))


def describe(error: BaseException) -> str:
    text = str(error).strip() or "no message"
    return f"{type(error).__name__}: {text}"[:20_000]

