"""Runs over the in-memory store with scripted engines standing in for CrewAI: the runner's
unit tests and the log tests share these."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.eventstore.memory import InMemoryEventStore
from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from domain.agent import AgentSpec
from domain.crew import CrewSpec
from streams.engine import LlmCall, RunHooks, RunResult
from streams.execution_runner import ExecutionRunner
from tests.factories import define_crew, register_agent

Script = Callable[[CrewSpec, RunHooks], RunResult]


class ScriptedEngine:
    def __init__(self, script: Script) -> None:
        self.script = script
        self.runs = 0

    def run(self, crew: CrewSpec, agents: dict[str, AgentSpec], inputs: dict[str, Any],
            hooks: RunHooks) -> RunResult:
        self.runs += 1
        return self.script(crew, hooks)


def call(n: int, task: str) -> LlmCall:
    return LlmCall(model="kasal-offline/default", request_hash=f"{n:064x}", response=f"r{n}",
                   prompt_tokens=10, completion_tokens=5, task_name=task)


def two_tasks(crew: CrewSpec, hooks: RunHooks) -> RunResult:
    for n, task in enumerate(crew.tasks, start=1):
        hooks.task_started(task.name)
        if hooks.recorded_response(f"{n:064x}") is None:
            hooks.llm_call(call(n, task.name))
        hooks.tool_used(task.name, "calculator", "1+1", "2")
        hooks.task_completed(task.name, f"out-{task.name}")
    return RunResult(output="final")


async def setup(engine: Any, store: InMemoryEventStore | None = None, **runner_args: Any
                ) -> tuple[CommandBus, InMemoryEventStore, ExecutionRunner, str]:
    """A bus and a runner over ``store`` (a fresh in-memory one) and a crew to run."""
    store = store or InMemoryEventStore()
    bus = CommandBus(store)
    ctx = CommandContext(tenant_id="t1", actor="user:x")
    agent = await bus.dispatch(register_agent(), ctx)
    crew = await bus.dispatch(define_crew([agent.aggregate_id]),
                              CommandContext(tenant_id="t1", actor="user:x"))
    runner = ExecutionRunner(store, bus, engine, **runner_args)
    await runner.position()
    return bus, store, runner, crew.aggregate_id


async def request(bus: CommandBus, crew_id: str, **extra: Any) -> str:
    result = await bus.dispatch(
        m.RequestExecution(crew_id=crew_id, inputs={"topic": "ai"}, **extra),
        CommandContext(tenant_id="t1", actor="user:x"),
    )
    return result.aggregate_id


async def feed(store: InMemoryEventStore, runner: ExecutionRunner, after: int) -> int:
    batch = await store.read_all(after, 1000)
    return await runner.handle(batch) if batch else after


async def types_of(store: InMemoryEventStore, execution_id: str) -> list[str]:
    return [e.type.removeprefix("Execution") for e in await store.read_stream(execution_id)]


async def run_to_end(script: Script, store: InMemoryEventStore | None = None,
                     **runner_args: Any) -> tuple[InMemoryEventStore, str]:
    """Request one execution, let the runner drive ``script`` to its end."""
    bus, store, runner, crew_id = await setup(ScriptedEngine(script), store, **runner_args)
    run_id = await request(bus, crew_id)
    await feed(store, runner, runner.start_position)
    await runner.wait_idle()
    return store, run_id
