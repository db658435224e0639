"""The run recorder: the one implementation of ``RunHooks``. It turns a run's steps into
``RecordSteps`` commands and keeps the run's usage tally.

Steps are queued, then appended as ONE command (one transaction) right before every model
call that is not answered from the log, within ``COMPLETION_FLUSH_S`` of a task's
completion (unless one of those takes it along first), and at the end of the run. So each
paid call is preceded by a durable record of everything before it, a task's output is in
the log (and the live feed) as it completes, and a crash loses at most the call in flight,
while a run costs a few appends, not one per step.

Hooks are called on the engine's threads; appends run on the event loop (``dispatch``) and
the calling thread blocks until they are durable, except at a task's completion, which is
not waited for (appends stay in order; the next step raises what went wrong).
A failure is sticky: once recording a step failed, every later hook raises it again, so the
engine stops even where CrewAI catches an exception and carries on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from commands import messages as m
from commands.context import CommandContext
from commands.ports import AppendResult
from domain.envelope import RecordedEvent
from domain.errors import DomainError
from domain.execution import Execution
from domain.ids import uuid7
from domain.text import storable
from domain.usage import Usage
from domain.vocabulary import EventType, ExecutionStatus
from projections.vectors import Document
from streams.engine import LlmCall, RunCancelled
from streams.memory import MemoryRecall
from streams.recall import IndexRecall
from streams.tool_replay import MAX_TOOL_TEXT, ToolReplay, tool_key

log = logging.getLogger(__name__)
ACTOR = "service:execution-runner"
# a task's completion is appended this soon, unless the next step's append (before the next
# paid call, or the run's end) takes it along first: live within 50 ms, no extra append
COMPLETION_FLUSH_S = 0.05

Dispatch = Callable[[m.Command, CommandContext], Coroutine[Any, Any, AppendResult]]


class StopKind(Enum):
    CANCEL = "cancel"  # CancelRequested: confirm it, keep what was done
    TIMEOUT = "timeout"  # past timeout_s: fail with the reason
    SHUTDOWN = "shutdown"  # this process stops or lost the execution: record no end
    REFUSED = "refused"  # the log refused a step (see ``ExecutionRunner.refused``)


@dataclass(frozen=True)
class Stop:
    kind: StopKind
    reason: str = ""
    refusal: DomainError | None = None


class RunRecorder:
    def __init__(
        self,
        execution: Execution,
        events: Sequence[RecordedEvent],
        dispatch: Dispatch,
        loop: asyncio.AbstractEventLoop,
        memory: MemoryRecall | None = None,
    ) -> None:
        self.execution_id = execution.aggregate_id
        self.tenant_id = execution.tenant_id
        self.crew_id = execution.crew_id
        self.dispatch = dispatch
        self.loop = loop
        requested = events[0]
        self.recall = IndexRecall(self.execution_id, self.tenant_id, self.crew_id, memory,
                                  loop, requested.position)
        self.correlation_id = requested.correlation_id
        self.causation_id = requested.event_id
        self.stopped: Stop | None = None
        self.failure: BaseException | None = None  # recording failed: sticky
        self.told_to_stop = False  # the engine was told to stop (RunCancelled, cancelled())
        self.lock = threading.Lock()
        self.pending: list[m.Step] = []
        self.inflight: concurrent.futures.Future[AppendResult] | None = None  # the last append
        self.timer: asyncio.TimerHandle | None = None  # a completion's flush, armed
        self.recorded: dict[str, str] = {}
        self.usage = Usage()
        self.replayed_llm_calls = 0
        self.tools = ToolReplay(events)  # a resumed run's tools answer from the log
        for event in events:
            if event.type == EventType.EXECUTION_LLM_CALL_COMPLETED:
                call = event.payload["call"]
                self.recorded.setdefault(call["request_hash"], call["response"])
                self.usage = self.usage.add_call(call)

        self.completed_tasks = set(execution.completed_tasks)
        self.started_tasks = {
            str(e.payload["task_name"]) for e in events
            if e.type == EventType.EXECUTION_TASK_STARTED
        }
        if execution.status == ExecutionStatus.REQUESTED:
            self.pending.append(m.Step(kind="start"))

    # --- called by the runner -------------------------------------------------------
    def stop(self, kind: StopKind, reason: str = "", refusal: DomainError | None = None) -> None:
        """Stop the run at its next step (the first stop wins)."""
        with self.lock:
            if self.stopped is None:
                self.stopped = Stop(kind, reason or kind.value, refusal)

    def take(self) -> list[m.Step]:
        with self.lock:
            steps, self.pending = self.pending, []
        return steps

    def batch(self, steps: list[m.Step]) -> tuple[m.RecordSteps, CommandContext]:
        return (
            m.RecordSteps(execution_id=self.execution_id, steps=steps),
            self.context(f"steps:{uuid7()}"),
        )

    def completion(self, output: str) -> list[m.Step]:
        """The last batch of a run that finished: what is queued, then ``complete``."""
        usage = {**self.usage.as_columns(), "replayed_llm_calls": self.replayed_llm_calls,
                 "replayed_tool_calls": self.tools.replayed}
        return [*self.take(), m.Step(kind="complete", output=storable(output), usage=usage)]

    def context(self, step: str) -> CommandContext:
        return CommandContext(
            tenant_id=self.tenant_id,
            actor=ACTOR,
            command_id=f"{self.execution_id}:{step}",
            correlation_id=self.correlation_id,
            causation_id=self.causation_id,
        )

    # --- RunHooks, called on the engine's threads ------------------------------------
    def cancelled(self) -> bool:
        self._raise_failure()
        if self.stopped is not None:
            self.told_to_stop = True
        return self.stopped is not None

    def recorded_response(self, request_hash: str) -> str | None:
        self._raise_failure()
        response = self.recorded.get(request_hash)
        if response is not None:
            with self.lock:
                self.replayed_llm_calls += 1
            return response
        self.flush()  # the model is about to be paid: make everything before it durable
        return None

    def task_started(self, task_name: str) -> None:
        self._check()
        if task_name not in self.completed_tasks and task_name not in self.started_tasks:
            self.started_tasks.add(task_name)
            self._queue(kind="task_started", task_name=task_name)

    def task_completed(self, task_name: str, output: str,
                       output_json: dict[str, Any] | None = None,
                       output_problem: str | None = None) -> None:
        self._check()
        if task_name not in self.completed_tasks:
            self.completed_tasks.add(task_name)
            self._queue(kind="task_completed", task_name=task_name, output=output,
                        output_json=output_json, output_problem=output_problem)
            # durable (and live) as the task completes, without holding the next task back
            self.loop.call_soon_threadsafe(self._flush_soon)

    def llm_call(self, call: LlmCall) -> None:
        self._check()
        payload = call.as_payload()
        with self.lock:
            self.usage = self.usage.add_call(payload)
        self._queue(kind="llm_call", call=payload)

    def recorded_tool_result(self, task_name: str | None, tool: str,
                             tool_input: str) -> str | None:
        self._raise_failure()
        return self.tools.result(tool_key(task_name, tool, tool_input))

    def tool_used(self, task_name: str | None, tool: str, tool_input: str, output: str, *,
                  error: str | None = None, duration_ms: int | None = None) -> None:
        self._check()
        if task_name in self.completed_tasks:  # replaying a task the log already holds
            return
        if self.tools.in_log(tool_key(task_name, tool, tool_input)):
            return
        self._queue(kind="tool_used", task_name=task_name, tool=tool,
                    tool_input=tool_input[:MAX_TOOL_TEXT], output=output[:MAX_TOOL_TEXT],
                    error=None if error is None else error[:MAX_TOOL_TEXT],
                    duration_ms=duration_ms)

    def recall_memory(self, query: str, limit: int) -> list[str]:
        self._check()
        return self.recall.memory(query, limit)

    def recall_knowledge(self, source_ids: Sequence[str], query: str, limit: int) -> list[str]:
        """Fails the run (stickily: even where CrewAI catches the error, as in a delegated
        task) when knowledge cannot be recalled: a run never goes on without it."""
        self._check()
        try:
            return self.recall.knowledge(source_ids, query, limit)
        except Exception as error:
            failure = RuntimeError(f"recalling the crew's knowledge failed: {error}")
            with self.lock:
                self.failure = self.failure or failure
            raise failure from error

    def search_documents(self, documents: Sequence[Document], query: str,
                         limit: int) -> list[str]:
        self._check()
        return self.recall.documents(documents, query, limit)

    def flush(self) -> None:
        """Append the queued steps now, after the appends handed over before them (from an
        engine thread); block until every one is durable and raise what went wrong."""
        self._check()
        self._submit(self.take())
        inflight = self.inflight
        if inflight is not None:
            with contextlib.suppress(Exception, concurrent.futures.CancelledError):
                inflight.result()
            self._settled(inflight)  # its callback may not have run yet
            self._check()

    def _submit(self, steps: list[m.Step]) -> None:
        """Hand ``steps`` to the loop as one append, chained after the one before."""
        if not steps:
            return
        with self.lock:
            previous = self.inflight

            async def append() -> AppendResult:
                if previous is not None:  # in order: the batches before this one first
                    await asyncio.wrap_future(previous)
                return await self.dispatch(*self.batch(steps))

            self.inflight = asyncio.run_coroutine_threadsafe(append(), self.loop)
        self.inflight.add_done_callback(self._settled)

    def _flush_soon(self) -> None:
        """(On the loop.) A task completed: append within ``COMPLETION_FLUSH_S`` unless the
        next step's append takes it along first."""
        if self.timer is None:
            self.timer = self.loop.call_later(COMPLETION_FLUSH_S, self._flush_due)

    def _flush_due(self) -> None:
        self.timer = None
        if self.stopped is None and self.failure is None:
            self._submit(self.take())

    async def drain(self) -> None:
        """Wait (on the loop) until every append handed over is settled; its failures are
        then in ``stopped`` or ``failure``."""
        inflight = self.inflight
        if inflight is None:
            return
        if not inflight.cancelled():
            try:
                await asyncio.wrap_future(inflight)
            except asyncio.CancelledError:
                if not inflight.cancelled():
                    raise  # this task is being cancelled, not the append
            except Exception:
                pass  # recorded by _settled
        self._settled(inflight)

    def _settled(self, future: concurrent.futures.Future[AppendResult]) -> None:
        if future.cancelled():  # the loop is going away: the run resumes at the next start
            self.stop(StopKind.SHUTDOWN)
            return
        error = future.exception()
        if isinstance(error, DomainError):
            self.stop(StopKind.REFUSED, str(error), error)
        elif isinstance(error, RunCancelled):  # the execution moved to another worker
            self.stop(StopKind.SHUTDOWN)
        elif error is not None:
            with self.lock:
                self.failure = self.failure or error

    # --- internals ------------------------------------------------------------------
    def _queue(self, **fields: Any) -> None:
        self._check()
        try:
            # what a model or a tool produced, made storable by every store (a NUL would
            # stall a PostgreSQL projector): each such character becomes U+FFFD
            step = m.Step(**{k: _storable(v) for k, v in fields.items()})
        except Exception as error:  # a step that cannot be recorded ends the run, stickily
            with self.lock:
                self.failure = self.failure or error
            raise
        with self.lock:
            self.pending.append(step)

    def _check(self) -> None:
        self._raise_failure()
        if self.stopped is not None:
            self.told_to_stop = True
            raise RunCancelled(self.stopped.reason)

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise self.failure


def _storable(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def describe(error: BaseException) -> str:
    text = str(error).strip() or "no message"
    return storable(f"{type(error).__name__}: {text}"[:20_000])


__all__ = ["ACTOR", "RunRecorder", "Stop", "StopKind", "describe"]
