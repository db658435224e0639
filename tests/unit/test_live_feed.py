"""The live feed never skips an entry: when it cannot be sure, the stream ends early and a
reconnect after the last entry gets the rest."""

from __future__ import annotations

from pathlib import Path

from adapters.eventstore.memory import InMemoryEventStore
from adapters.sql.engines import make_engine
from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from projections.clock import ProjectionClock
from projections.live import LiveExecutionFeed, follow_execution
from projections.queries import ReadModels
from projections.sql_projector import SqlProjector
from tests.factories import define_crew, register_agent


async def an_execution(bus: CommandBus) -> str:
    ctx = lambda: CommandContext(tenant_id="t1", actor="user:x")  # noqa: E731
    agent = await bus.dispatch(register_agent(), ctx())
    crew = await bus.dispatch(define_crew([agent.aggregate_id]), ctx())
    run = await bus.dispatch(
        m.RequestExecution(crew_id=crew.aggregate_id, inputs={"topic": "x"}), ctx())
    steps = [m.Step(kind="start"), m.Step(kind="task_started", task_name="find"),
             m.Step(kind="task_completed", task_name="find", output="a"),
             m.Step(kind="task_started", task_name="write"),
             m.Step(kind="task_completed", task_name="write", output="b"),
             m.Step(kind="complete", output="done", usage={})]
    await bus.dispatch(m.RecordSteps(execution_id=run.aggregate_id, steps=steps), ctx())
    return run.aggregate_id


async def test_a_reader_that_falls_behind_is_ended_then_resumes_without_a_gap(
    tmp_path: Path,
) -> None:
    store = InMemoryEventStore()
    bus = CommandBus(store)
    execution_id = await an_execution(bus)
    engine = make_engine(f"sqlite:///{tmp_path / 'rm.db'}", immediate=True)
    projector = SqlProjector(engine)
    await projector.initialize()
    everything = await store.read_all(0, 100)
    requested = next(e for e in everything if e.type == "ExecutionRequested")
    await projector.handle([e for e in everything if e.position <= requested.position])
    clock = ProjectionClock(projector.position)
    feed = LiveExecutionFeed(max_queue=2)
    feed.start_at(requested.position)
    reads = ReadModels(engine)

    stream = follow_execution(feed, reads, clock, "t1", execution_id, keepalive_s=0.05)
    first = [await anext(stream)]  # the Requested entry, from the read model
    await feed.handle([e for e in everything if e.position > requested.position])  # 6 live
    first += [entry async for entry in stream if entry is not None]
    assert [e["version"] for e in first] == [1, 2, 3]  # two queued, then the stream ended
    assert first[-1]["type"] != "ExecutionCompleted"

    await projector.handle(everything)
    clock.advance(await projector.position())
    rest = [e async for e in follow_execution(feed, reads, clock, "t1", execution_id,
                                              after=3, keepalive_s=0.05) if e is not None]
    assert [e["version"] for e in first + rest] == list(range(1, 8))
    assert rest[-1]["type"] == "ExecutionCompleted"
    await engine.dispose()


async def test_a_read_model_that_does_not_catch_up_ends_the_stream_at_once(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'rm.db'}", immediate=True)
    projector = SqlProjector(engine)
    await projector.initialize()
    feed = LiveExecutionFeed()
    feed.start_at(50)  # the log is ahead of the read model, which never moves
    stream = follow_execution(feed, ReadModels(engine), ProjectionClock(projector.position),
                              "t1", "some-execution", catch_up_timeout=0.1)
    assert [entry async for entry in stream] == []
    assert not feed.subscribers  # nothing left behind
    await engine.dispose()
