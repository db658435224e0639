"""The in-process runtime driving the SQL projector (streams/runtime.py).

The bus wakes the runtime after every append; a stopped runtime leaves the tracked
position where it was, and a new runtime over the same database resumes from it.
"""

from __future__ import annotations

from typing import Any

import pytest

from commands import messages as m
from commands.bus import CommandBus
from commands.ports import AppendResult, EventStore
from domain.envelope import RecordedEvent
from projections.processor_health import quarantine_event
from projections.sql_projector import SqlProjector
from streams.runtime import InProcessRuntime
from tests.contract.conftest import applier_of, replayed_tables
from tests.waiting import until

from .conftest import (
    Database,
    Progress,
    agent_command,
    crew_command,
    ctx,
    dump_tables,
    run_scenario,
)

# Long enough that only the bus's notify (or start-up) can wake a processor in time.
NO_POLLING = 120.0


async def run_until_caught_up(store: EventStore, projector: SqlProjector, batch_size: int,
                              what: str) -> None:
    runtime = InProcessRuntime(store, [projector], batch_size=batch_size,
                               poll_interval=NO_POLLING)
    progress = Progress()
    runtime.on_progress(progress)
    await runtime.start()
    try:
        await progress.wait_until(lambda: caught_up(projector, store), what=what)
    finally:
        await runtime.stop()


async def caught_up(projector: SqlProjector, store: EventStore) -> bool:
    return await projector.position() == await store.head_position()


async def test_runtime_projects_live_then_a_new_runtime_resumes_without_doubling_rows(
    database: Database,
) -> None:
    store = await database.open_store()
    projector = await database.open_projector()
    runtime = InProcessRuntime(store, [projector], batch_size=3, poll_interval=NO_POLLING)
    progress = Progress()
    runtime.on_progress(progress)
    bus = CommandBus(store)
    bus.subscribe(runtime.notify)

    await runtime.start()
    try:
        scenario = await run_scenario(bus)
        await progress.wait_until(lambda: caught_up(projector, store), what="the live projection")
    finally:
        await runtime.stop()
    first_head = await store.head_position()
    assert runtime.positions[projector.name] == first_head
    reported = progress.positions
    assert reported == sorted(set(reported)), "progress is reported in increasing order"
    assert reported[-1] == first_head

    # while no runtime runs, more commands land: nothing projects them
    quiet_bus = CommandBus(store)
    third = await quiet_bus.dispatch(agent_command("Critic"), ctx())
    await quiet_bus.dispatch(
        m.UpdateAgent(
            agent_id=scenario.agents[1], role="Lead Writer", goal="Write", backstory="Seasoned."
        ),
        ctx(),
    )
    crew = await quiet_bus.dispatch(crew_command([scenario.agents[1], third.aggregate_id]), ctx())
    await quiet_bus.dispatch(
        m.RequestExecution(crew_id=crew.aggregate_id, inputs={"topic": "bats"}), ctx()
    )
    head = await store.head_position()
    assert head > first_head
    assert await projector.position() == first_head

    # a new process: new projector engine and runtime over the same database
    resumed = await database.open_projector()
    assert await resumed.position() == first_head
    seen: list[RecordedEvent] = []
    original_handle = resumed.handle

    async def recording_handle(events: Any) -> int:
        seen.extend(events)
        return await original_handle(events)

    resumed.handle = recording_handle  # type: ignore[method-assign]
    await run_until_caught_up(store, resumed, 3, "the resumed projection")

    assert seen, "the resumed runtime handed events to its projector"
    assert min(e.position for e in seen) > first_head, "it resumed from the tracked position"
    events = await store.read_all(0, 10_000)
    rows = await dump_tables(resumed.engine)
    assert sorted(r["position"] for r in rows["audit_log"]) == [e.position for e in events]
    assert len(rows["agents"]) == 3
    assert len(rows["crews"]) == 2
    assert len(rows["executions"]) == 2
    assert len(rows["execution_timeline"]) == sum(
        1 for e in events if e.aggregate_type == "execution"
    )
    assert {a["id"]: a["version"] for a in rows["agents"]} == {
        scenario.agents[0]: 2,
        scenario.agents[1]: 2,
        third.aggregate_id: 1,
    }

    assert await replayed_tables(database, events) == rows


async def test_runtime_retries_a_failing_batch_and_never_skips_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await database.open_store()
    await run_scenario(CommandBus(store))
    projector = await database.open_projector()
    failures: list[int] = []
    original = applier_of(projector, "CrewDefined")["CrewDefined"]

    async def flaky(conn: Any, event: RecordedEvent) -> None:
        if len(failures) < 2:
            failures.append(event.position)
            raise RuntimeError("injected transient failure")
        await original(conn, event)

    monkeypatch.setitem(applier_of(projector, "CrewDefined"), "CrewDefined", flaky)
    await run_until_caught_up(store, projector, 2, "the retried projection")

    assert len(failures) == 2
    assert len(set(failures)) == 1, "the same event was retried"
    rows = await dump_tables(projector.engine)
    assert len(rows["crews"]) == 1
    events = await store.read_all(0, 1000)
    assert sorted(r["position"] for r in rows["audit_log"]) == [e.position for e in events]


async def test_catch_up_drives_the_projector_to_the_head(database: Database) -> None:
    store = await database.open_store()
    await run_scenario(CommandBus(store))
    projector = await database.open_projector()
    runtime = InProcessRuntime(store, [projector], batch_size=2)

    assert await runtime.catch_up() == await store.head_position()
    assert await caught_up(projector, store)
    assert await runtime.catch_up() == await store.head_position()  # idempotent
    rows = await dump_tables(projector.engine)
    assert len(rows["audit_log"]) == len(await store.read_all(0, 1000))


async def test_a_failing_event_is_narrowed_down_reported_and_the_events_before_it_applied(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that fails is retried one event at a time: what precedes the event that
    fails is projected, the report names that event and counts the attempts, and the
    report ends when the projector gets past it."""
    store, projector, bad, poison = await agents_with_a_poisoned_one(database, monkeypatch, 5, 3)
    sizes: list[int] = []
    handle = projector.handle

    async def counted(events: Any) -> int:
        sizes.append(len(events))
        return await handle(events)

    monkeypatch.setattr(projector, "handle", counted)
    runtime = InProcessRuntime(store, [projector], batch_size=100, poll_interval=NO_POLLING)
    reports: list[object] = []
    runtime.on_failure(lambda name, failure: reports.append(failure))
    await runtime.start()
    try:
        progress = Progress()
        runtime.on_progress(progress)

        async def reported_twice() -> bool:
            failure = runtime.failures.get(projector.name)
            return failure is not None and failure.attempts >= 2

        await until(reported_twice, timeout=15, what="two failed attempts at one event")
        failure = runtime.failures[projector.name]
        assert (failure.position, failure.event_type) == (bad.position, "AgentRegistered")
        assert failure.aggregate_id == bad.aggregate_id and "cannot apply" in failure.error
        assert await projector.position() == bad.position - 1  # the three before it
        poison.clear()  # healed
        runtime.notify()
        await progress.wait_until(lambda: caught_up(projector, store), what="getting past it")
        assert projector.name not in runtime.failures
        assert reports[-1] is None  # the report ended
        # one full batch, then one event at a time until past the batch that failed
        assert sizes[0] == 5 and set(sizes[1:]) == {1}, sizes
    finally:
        await runtime.stop()


async def test_a_failure_an_earlier_process_reported_ends_when_this_one_gets_going(
    database: Database,
) -> None:
    store = await database.open_store()
    await CommandBus(store).dispatch(agent_command("R"), ctx())
    projector = await database.open_projector()
    runtime = InProcessRuntime(store, [projector], poll_interval=NO_POLLING)
    reports: list[tuple[str, object]] = []
    runtime.on_failure(lambda name, failure: reports.append((name, failure)))
    progress = Progress()
    runtime.on_progress(progress)
    await runtime.start()
    try:
        await progress.wait_until(lambda: caught_up(projector, store), what="the first batch")
        assert reports == [(projector.name, None)]  # a stale report is cleared once
    finally:
        await runtime.stop()


async def test_catch_up_goes_past_an_event_an_operator_set_aside(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kasal projections rebuild`` (catch_up, no retries) meets the quarantined event."""
    store, projector, bad, _ = await agents_with_a_poisoned_one(database, monkeypatch, 3, 1)
    assert await quarantine_event(projector.engine, projector.name, bad.position, "t", by="t")
    assert not await quarantine_event(projector.engine, projector.name, bad.position, "t", by="t")
    runtime = InProcessRuntime(store, [projector], poll_interval=NO_POLLING)
    assert await runtime.catch_up() == await store.head_position()
    assert await projector.position() == await store.head_position()


async def agents_with_a_poisoned_one(
    database: Database, monkeypatch: pytest.MonkeyPatch, count: int, bad_index: int,
) -> tuple[EventStore, SqlProjector, AppendResult, set[int]]:
    """``count`` agents in the log and a projector whose applier fails on the one at
    ``bad_index`` while its position is in the returned set (clear it to heal)."""
    store = await database.open_store()
    bus = CommandBus(store)
    results = [await bus.dispatch(agent_command(f"R{i}"), ctx()) for i in range(count)]
    bad = results[bad_index]
    projector = await database.open_projector()
    original = applier_of(projector, "AgentRegistered")["AgentRegistered"]
    poison = {bad.position}

    async def fails_on_the_bad_one(conn: Any, event: RecordedEvent) -> None:
        if event.position in poison:
            raise RuntimeError("cannot apply this one")
        await original(conn, event)

    monkeypatch.setitem(applier_of(projector, "AgentRegistered"), "AgentRegistered",
                        fails_on_the_bad_one)
    return store, projector, bad, poison
