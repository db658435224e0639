"""The runner's logic over the in-memory store, with scripted engines standing in for CrewAI
(CrewAI itself is exercised in tests/integration)."""

from __future__ import annotations

import contextlib
import threading
from dataclasses import replace
from typing import Any

import pytest

from adapters.eventstore.memory import InMemoryEventStore
from commands import messages as m
from commands.context import CommandContext
from domain.crew import CrewSpec
from streams.engine import RunCancelled, RunHooks, RunResult
from streams.execution_runner import ExecutionRunner
from streams.run_recorder import RunRecorder, StopKind
from tests.runs import (
    ScriptedEngine,
    call,
    feed,
    request,
    run_to_end,
    setup,
    two_tasks,
    types_of,
)
from tests.waiting import until


async def test_a_requested_execution_runs_and_every_step_is_recorded_in_order() -> None:
    bus, store, runner, crew_id = await setup(ScriptedEngine(two_tasks))
    run_id = await request(bus, crew_id)
    await feed(store, runner, runner.start_position)
    await runner.wait_idle()
    assert await types_of(store, run_id) == [
        "Requested", "Started",
        "TaskStarted", "LlmCallCompleted", "ToolUsed", "TaskCompleted",
        "TaskStarted", "LlmCallCompleted", "ToolUsed", "TaskCompleted",
        "Completed",
    ]
    runner_events = (await store.read_stream(run_id))[1:]
    # one append before each paid model call and one at the end, which take a completed task
    # along (or one within 50 ms of its completion): not one per step
    assert 3 <= len({e.command_id for e in runner_events}) <= 5
    completed = runner_events[-1]
    assert completed.payload["result"] == "final"
    assert completed.payload["usage"]["total_tokens"] == 30
    assert all(e.actor == "service:execution-runner" for e in (await store.read_stream(run_id))[1:])


async def test_an_engine_error_records_failed_with_its_cause() -> None:
    def boom(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        raise RuntimeError("model said no")

    store, run_id = await run_to_end(boom)
    last = (await store.read_stream(run_id))[-1]
    assert last.type == "ExecutionFailed"
    assert last.payload["error"] == "RuntimeError: model said no"


async def test_cancel_stops_the_run_at_its_next_step_and_keeps_partial_results() -> None:
    release = threading.Event()

    def slow(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        hooks.task_started("find")
        hooks.task_completed("find", "partial notes")
        hooks.recorded_response("f" * 64)  # about to call a model: the steps become durable
        release.wait(5)
        hooks.task_started("write")  # the next step: raises RunCancelled
        raise AssertionError("the run went on after a cancel")

    bus, store, runner, crew_id = await setup(ScriptedEngine(slow))
    run_id = await request(bus, crew_id)
    position = await feed(store, runner, runner.start_position)
    async def first_task_done() -> bool:
        return "TaskCompleted" in await types_of(store, run_id)

    await until(first_task_done, what="the first task")
    await bus.dispatch(m.CancelExecution(execution_id=run_id, reason="enough"),
                       CommandContext(tenant_id="t1", actor="user:x"))
    await feed(store, runner, position)
    release.set()
    await runner.wait_idle()
    events = await store.read_stream(run_id)
    assert [e.type for e in events][-2:] == ["ExecutionCancelRequested", "ExecutionCancelled"]
    assert events[-1].payload == {"reason": "enough", "completed_tasks": {"find": "partial notes"}}


async def test_a_run_past_its_timeout_is_failed_with_the_reason() -> None:
    release = threading.Event()

    def stuck(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        release.wait(5)
        hooks.task_started("find")
        raise AssertionError("unreachable")

    bus, store, runner, crew_id = await setup(ScriptedEngine(stuck))
    run_id = await request(bus, crew_id, timeout_s=0.2)
    await feed(store, runner, runner.start_position)
    def timed_out() -> bool:
        recorder = runner.recorders.get(run_id)
        stopped = recorder.stopped if recorder is not None else None
        return stopped is not None and stopped.kind is StopKind.TIMEOUT

    await until(timed_out, what="the timeout to pass while the step is blocked")
    release.set()
    await runner.wait_idle()
    last = (await store.read_stream(run_id))[-1]
    assert (last.type, last.payload["error"]) == (
        "ExecutionFailed", "timed out after 0.2 s (timeout_s)")


async def test_resume_answers_recorded_calls_from_the_log_and_records_nothing_twice() -> None:
    def dies_after_first_task(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        two_tasks(replace(crew, tasks=crew.tasks[:1]), hooks)
        assert isinstance(hooks, RunRecorder)
        hooks.stop(StopKind.SHUTDOWN)  # what a stopped worker does: record no end, resume later
        raise RunCancelled("shutdown")

    bus, store, runner, crew_id = await setup(ScriptedEngine(dies_after_first_task))
    run_id = await request(bus, crew_id)
    await feed(store, runner, runner.start_position)
    await runner.wait_idle()
    assert (await types_of(store, run_id))[-1] == "TaskCompleted"  # left running

    fresh = ExecutionRunner(store, bus, ScriptedEngine(two_tasks))
    assert await fresh.resume_unfinished([run_id]) == 1
    await fresh.wait_idle()
    events = await store.read_stream(run_id)
    hashes = [e.payload["call"]["request_hash"] for e in events
              if e.type == "ExecutionLlmCallCompleted"]
    assert len(hashes) == len(set(hashes)) == 2  # the first task's call was not made again
    assert [e.type for e in events].count("ExecutionTaskCompleted") == 2
    assert [e.type for e in events].count("ExecutionStarted") == 1
    assert [e.type for e in events].count("ExecutionToolUsed") == 2
    assert events[-1].type == "ExecutionCompleted"
    assert events[-1].payload["usage"]["replayed_llm_calls"] == 1
    assert events[-1].payload["usage"]["llm_calls"] == 2


async def test_concurrent_runs_are_bounded_and_do_not_mix() -> None:
    inside = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Event()

    def counted(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)
        gate.wait(0.2)
        with lock:
            inside -= 1
        return two_tasks(crew, hooks)

    bus, store, runner, crew_id = await setup(ScriptedEngine(counted), max_concurrency=2)
    runs = [await request(bus, crew_id) for _ in range(5)]
    await feed(store, runner, runner.start_position)
    await runner.wait_idle()
    assert peak == 2
    for run_id in runs:
        events = await store.read_stream(run_id)
        assert events[-1].type == "ExecutionCompleted"
        assert [e.version for e in events] == list(range(1, 12))


@pytest.mark.parametrize("status", ["completed", "cancelled"])
async def test_finished_executions_are_not_run_again(status: str) -> None:
    engine = ScriptedEngine(two_tasks)
    bus, store, runner, crew_id = await setup(engine)
    run_id = await request(bus, crew_id)
    if status == "cancelled":
        await bus.dispatch(m.CancelExecution(execution_id=run_id),
                           CommandContext(tenant_id="t1", actor="user:x"))
    else:
        await feed(store, runner, runner.start_position)
        await runner.wait_idle()
    runs_before = engine.runs
    await runner.resume_unfinished([run_id])
    await runner.wait_idle()
    assert engine.runs == runs_before


async def test_two_runners_on_one_execution_neither_cancels_the_other() -> None:
    bus, store, first, crew_id = await setup(ScriptedEngine(two_tasks))
    second = ExecutionRunner(store, bus, ScriptedEngine(two_tasks))
    run_id = await request(bus, crew_id)
    first.launch(run_id)
    second.launch(run_id)
    await first.wait_idle()
    await second.wait_idle()
    types = await types_of(store, run_id)
    assert types.count("Started") == 1
    assert types[-1] == "Completed"
    assert "Cancelled" not in types and "Failed" not in types


async def test_a_step_the_log_refuses_fails_the_run_with_the_cause() -> None:
    def wrong(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        hooks.task_completed("no-such-task", "?")
        hooks.recorded_response("e" * 64)  # flush: the batch is refused
        raise AssertionError("the run went on after a refused step")

    store, run_id = await run_to_end(wrong)
    last = (await store.read_stream(run_id))[-1]
    assert last.type == "ExecutionFailed"
    assert last.payload["error"].startswith("a step was refused: ")
    assert "no task 'no-such-task'" in last.payload["error"]


async def test_a_resumed_run_does_not_restart_the_task_it_was_in() -> None:
    def dies_inside_first_task(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        hooks.task_started("find")
        hooks.recorded_response("d" * 64)  # the step is durable, the model call dies with us
        assert isinstance(hooks, RunRecorder)
        hooks.stop(StopKind.SHUTDOWN)
        raise RunCancelled("shutdown")

    bus, store, runner, crew_id = await setup(ScriptedEngine(dies_inside_first_task))
    run_id = await request(bus, crew_id)
    await feed(store, runner, runner.start_position)
    await runner.wait_idle()
    fresh = ExecutionRunner(store, bus, ScriptedEngine(two_tasks))
    await fresh.resume_unfinished([run_id])
    await fresh.wait_idle()
    types = await types_of(store, run_id)
    assert types.count("TaskStarted") == 2  # find once (before the crash), write once
    assert types[-1] == "Completed"


async def test_a_task_completion_is_durable_when_the_task_completes() -> None:
    release = threading.Event()

    def pauses_after_first_task(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        hooks.task_started("find")
        hooks.task_completed("find", "notes")  # durable now, not at the next paid call
        release.wait(5)
        return two_tasks(replace(crew, tasks=crew.tasks[1:]), hooks)

    bus, store, runner, crew_id = await setup(ScriptedEngine(pauses_after_first_task))
    run_id = await request(bus, crew_id)
    await feed(store, runner, runner.start_position)

    async def find_completed() -> bool:
        return "TaskCompleted" in await types_of(store, run_id)

    await until(find_completed, what="the first task's completion in the log")
    assert (await types_of(store, run_id))[-1] == "TaskCompleted"  # the run still waits
    release.set()
    await runner.wait_idle()
    assert (await types_of(store, run_id))[-1] == "Completed"


class FailsOnce(InMemoryEventStore):
    """The first append holding a ``failing`` event fails (a disk error, say); the rest
    succeed."""

    def __init__(self, failing: str) -> None:
        super().__init__()
        self.failing = failing
        self.failed = False

    async def append(self, events: Any, *, expected_version: int, command: Any = None) -> Any:
        if not self.failed and any(e.type == self.failing for e in events):
            self.failed = True
            raise OSError("disk I/O error")
        return await super().append(events, expected_version=expected_version, command=command)


@pytest.mark.parametrize("failing", ["ExecutionTaskStarted", "ExecutionTaskCompleted"])
async def test_a_recording_failure_is_sticky_and_fails_the_run_even_if_the_engine_swallows_it(
    failing: str,
) -> None:
    raised: list[str] = []

    def swallows(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        # TaskStarted is appended (and fails) before the paid call; TaskCompleted is handed
        # over as the task completes, and its failure is raised by the next step
        for step in (lambda: hooks.task_started("find"),
                     lambda: hooks.recorded_response("c" * 64),
                     lambda: hooks.task_completed("find", "notes"),
                     lambda: hooks.recorded_response("d" * 64),
                     hooks.cancelled):
            try:
                step()
            except OSError as error:  # what CrewAI does in places: catch and carry on
                raised.append(str(error))
        return RunResult(output="pretends all went well")

    store, run_id = await run_to_end(swallows, FailsOnce(failing))
    # the failing append's step (or the next one), then every later hook
    assert raised == ["disk I/O error"] * (4 if failing == "ExecutionTaskStarted" else 2)
    last = (await store.read_stream(run_id))[-1]
    assert (last.type, last.payload["error"]) == ("ExecutionFailed", "OSError: disk I/O error")


async def test_what_a_model_or_tool_produces_is_made_storable_by_every_store() -> None:
    """PostgreSQL refuses NUL and nothing stores a lone surrogate: text a run produces has
    each such character replaced by U+FFFD, visibly, instead of stalling a projector."""

    def binary_tool(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        for task in crew.tasks:
            hooks.task_started(task.name)
            hooks.llm_call(replace(call(1, task.name), response="raw\x00bytes\udfff"))
            hooks.tool_used(task.name, "file_read", "{}", "PK\x03\x04\x00\x00")
            hooks.task_completed(task.name, "read \x00 it")
        return RunResult(output="done\x00")

    store, run_id = await run_to_end(binary_tool)
    events = await store.read_stream(run_id)
    assert events[-1].type == "ExecutionCompleted"
    assert events[-1].payload["result"] == "done\ufffd"
    texts = [str(e.payload) for e in events]
    assert not any("\x00" in text for text in texts)
    tool = next(e for e in events if e.type == "ExecutionToolUsed")
    assert tool.payload["output"] == "PK\x03\x04\ufffd\ufffd"
    llm = next(e for e in events if e.type == "ExecutionLlmCallCompleted")
    assert llm.payload["call"]["response"] == "raw\ufffdbytes\ufffd"




def test_call_limits_hold_a_minutes_calls_and_a_tasks_time() -> None:
    from adapters.crewai.call_limits import CallLimits, RunLimits, TaskTimedOut

    now = [100.0]
    run = RunLimits(clock=lambda: now[0])
    run.task_started(1)
    limits = CallLimits(run, max_rpm=2, max_execution_time=5)
    assert [limits.take_call(), limits.take_call()] == [0.0, 0.0]
    assert limits.take_call() == 60.0  # the third waits for the first to leave the minute
    now[0] = 104.0
    limits.check_time(1, "t")  # 4 s into a 5 s limit
    limits.check_time(2, "delegated")  # a task CrewAI made up: timed from its first call
    now[0] = 160.0
    assert limits.take_call() == 0.0  # the first left the minute
    with pytest.raises(TaskTimedOut, match="task 't' ran past its agent's max_execution_time"):
        limits.check_time(None, "t")  # no task named: the crew task running now
    with pytest.raises(TaskTimedOut, match="task 't'"):  # sticky: every later call
        CallLimits(run).check_time(3, "another")
    assert CallLimits(RunLimits()).take_call() == 0.0  # no limits: never waits


async def test_a_resumed_run_answers_its_tool_calls_from_the_log_and_records_none_twice() -> None:
    made: list[str] = []

    def write_tool(hooks: RunHooks, task: str) -> str:  # what the engine does for a Kasal tool
        result = hooks.recorded_tool_result(task, "file_writer_tool", '{"path": "a.md"}')
        if result is None:
            made.append(task)
            result = f"wrote a.md for {task}"
        hooks.tool_used(task, "file_writer_tool", '{"path": "a.md"}', result)
        return result

    def dies_after_its_tools(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        hooks.task_started("find")
        write_tool(hooks, "find")
        hooks.tool_used("find", "Search memory", '{"q": "owls"}', "nothing")  # CrewAI's own
        hooks.recorded_response("d" * 64)  # the steps are durable; the model call dies with us
        assert isinstance(hooks, RunRecorder)
        hooks.stop(StopKind.SHUTDOWN)
        raise RunCancelled("shutdown")

    def whole_run(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        for task in crew.tasks:
            hooks.task_started(task.name)
            assert write_tool(hooks, task.name) == f"wrote a.md for {task.name}"
            if task.name == "find":  # made again: not answerable from the log, yet logged
                hooks.tool_used("find", "Search memory", '{"q": "owls"}', "nothing")
            hooks.task_completed(task.name, "done")
        return RunResult(output="done")

    bus, store, runner, crew_id = await setup(ScriptedEngine(dies_after_its_tools))
    run_id = await request(bus, crew_id)
    await feed(store, runner, runner.start_position)
    await runner.wait_idle()
    fresh = ExecutionRunner(store, bus, ScriptedEngine(whole_run))
    await fresh.resume_unfinished([run_id])
    await fresh.wait_idle()
    assert made == ["find", "write"]  # find's write ran once, before the crash
    events = await store.read_stream(run_id)
    used = [(e.payload["task_name"], e.payload["tool"]) for e in events
            if e.type == "ExecutionToolUsed"]
    assert used == [("find", "file_writer_tool"), ("find", "Search memory"),
                    ("write", "file_writer_tool")]
    assert events[-1].type == "ExecutionCompleted"
    assert events[-1].payload["usage"]["replayed_tool_calls"] == 1


async def test_a_failed_knowledge_recall_fails_the_run_even_where_the_engine_swallows_it(
) -> None:
    """CrewAI's delegation tool turns a coworker's error into text: the recorder's failure
    is sticky, so the run's next step raises it and the run fails naming it."""

    def swallowing(crew: CrewSpec, hooks: RunHooks) -> RunResult:
        with contextlib.suppress(RuntimeError):  # as CrewAI's delegation tool would
            hooks.recall_knowledge(["k1"], "owls", 3)  # no vector index in this runner
        hooks.task_started(crew.tasks[0].name)
        return RunResult(output="went on without its knowledge")

    store, run_id = await run_to_end(swallowing)
    events = await store.read_stream(run_id)
    assert events[-1].type == "ExecutionFailed"
    assert "recalling the crew's knowledge failed: the vector index is off" in \
        events[-1].payload["error"]
    assert "ExecutionCompleted" not in [e.type for e in events]
