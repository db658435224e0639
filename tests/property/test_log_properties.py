"""For random sequences of commands: the log is gapless and chained, tampering shows,
and read models rebuilt from the log equal the ones built live."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from adapters.eventstore.memory import InMemoryEventStore
from adapters.sql.engines import make_engine
from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from commands.ports import EventStore
from domain.envelope import RecordedEvent, verify_chain
from domain.errors import DomainError, TamperedEvent
from projections import schema
from projections.sql_projector import SqlProjector

TENANTS = ("t1", "t2")
ref = st.integers(min_value=0, max_value=50)
register = st.tuples(
    st.just("register"), st.sampled_from(TENANTS), st.sampled_from(["R", "W", "E"])
)
operation = st.one_of(
    register,
    st.tuples(st.just("define_crew"), ref, ref),
    st.tuples(st.just("request"), ref, st.sampled_from(["ai", "ai", ""])),
    st.tuples(st.just("request"), ref, st.sampled_from(["ml", "x" * 50])),
    st.tuples(st.just("cancel"), ref),
    st.tuples(st.just("update_agent"), ref, st.sampled_from(["R2", "W2"])),
    st.tuples(st.just("update_crew"), ref, ref),
    st.tuples(st.just("retry_last")),
    st.tuples(st.just("archive_agent"), ref),
    st.tuples(st.just("archive_crew"), ref),
)


# every sequence starts from two agents and a crew per tenant, then goes random
SETUP: list[tuple[Any, ...]] = [
    ("register", "t1", "R"), ("register", "t2", "R"), ("register", "t1", "W"),
    ("register", "t2", "W"), ("define_crew", 0, 2), ("define_crew", 1, 3),
]


def pick(items: list[tuple[str, str]], index: int) -> tuple[str, str] | None:
    return items[index % len(items)] if items else None


def crew_command(first: str, second: str, crew_id: str | None = None) -> m.Command:
    body: dict[str, Any] = {
        "name": "crew",
        "agents": sorted({first, second}),
        "tasks": [{"name": "a", "description": "Do {topic}", "expected_output": "o",
                   "agent": first}],
    }
    return m.UpdateCrew(crew_id=crew_id, **body) if crew_id else m.DefineCrew(**body)


async def run_sequence(ops: list[tuple[Any, ...]], bus: CommandBus, store: EventStore,
                       project: Callable[[], Awaitable[bool]],
                       tenant_of: Callable[[str], str] = str) -> int:
    """Run ``ops``; ``project`` (after each accepted command, then until it says there is
    nothing left) projects the next few events live; ``tenant_of`` names a tenant in the
    store (one store serves several examples: each has tenants of its own)."""
    agents: list[tuple[str, str]] = []  # (tenant, id)
    crews: list[tuple[str, str]] = []
    runs: list[tuple[str, str]] = []
    last: tuple[m.Command, CommandContext] | None = None
    rejected = 0
    for op in ops:
        command: m.Command | None = None
        tenant = "t1"
        kind = op[0]
        if kind == "register":
            tenant, command = op[1], m.RegisterAgent(role=op[2], goal="g", backstory="b")
        elif kind in ("update_agent", "archive_agent") and (a := pick(agents, op[1])):
            tenant = a[0]
            command = (m.UpdateAgent(agent_id=a[1], role=op[2], goal="g", backstory="b")
                       if kind == "update_agent" else m.ArchiveAgent(agent_id=a[1]))
        elif kind == "define_crew" and (a := pick(agents, op[1])) and (b := pick(agents, op[2])):
            tenant, command = a[0], crew_command(a[1], b[1])  # b may be another tenant's
        elif kind == "update_crew" and (c := pick(crews, op[1])) and (a := pick(agents, op[2])):
            tenant, command = c[0], crew_command(a[1], a[1], c[1])
        elif kind == "archive_crew" and (c := pick(crews, op[1])):
            tenant, command = c[0], m.ArchiveCrew(crew_id=c[1])
        elif kind == "request" and (c := pick(crews, op[1])):
            inputs = {"topic": op[2]} if op[2] else {}
            tenant, command = c[0], m.RequestExecution(crew_id=c[1], inputs=inputs)
        elif kind == "cancel" and (r := pick(runs, op[1])):
            tenant, command = r[0], m.CancelExecution(execution_id=r[1])
        elif kind == "retry_last" and last:
            command, ctx = last
            head = await store.head_position()
            await bus.dispatch(command, ctx)
            assert await store.head_position() == head, "a retried command appended events"
            continue
        if command is None:
            continue
        ctx = CommandContext(tenant_id=tenant_of(tenant), actor=f"user:{tenant}")
        head = await store.head_position()
        try:
            result = await bus.dispatch(command, ctx)
        except DomainError:
            rejected += 1
            assert await store.head_position() == head, "a rejected command appended events"
            continue
        last = (command, ctx)
        created = {m.RegisterAgent: agents, m.DefineCrew: crews, m.RequestExecution: runs}
        if type(command) in created:
            created[type(command)].append((tenant, result.aggregate_id))
        await project()  # live, in small steps, as the runtime would
    while await project():
        pass
    return rejected


async def dump(engine: Any) -> dict[str, list[tuple[Any, ...]]]:
    tables = {}
    async with engine.connect() as conn:
        for table in schema.metadata.sorted_tables:
            rows = await conn.execute(select(table).order_by(*table.primary_key.columns))
            tables[table.name] = [tuple(r) for r in rows]
    return tables


async def check(ops: list[tuple[Any, ...]], tamper_index: int, directory: Path) -> None:
    live_engine = make_engine(f"sqlite:///{directory / 'live.db'}", immediate=True)
    rebuilt_engine = make_engine(f"sqlite:///{directory / 'rebuilt.db'}", immediate=True)
    try:
        await check_on(InMemoryEventStore(), ops, tamper_index, live_engine, rebuilt_engine)
    finally:
        await live_engine.dispose()
        await rebuilt_engine.dispose()


async def check_on(store: EventStore, ops: list[tuple[Any, ...]], tamper_index: int,
                   live_engine: Any, rebuilt_engine: Any, suffix: str = "") -> None:
    """Run ``ops`` on ``store`` and check the log and the read models. With ``suffix`` the
    store serves other examples too: this one's tenants are ``t1<suffix>``, ``t2<suffix>``
    and only their events (after the head at the start) are checked and projected."""
    bus = CommandBus(store)
    live, rebuilt = SqlProjector(live_engine), SqlProjector(rebuilt_engine)
    await live.initialize()
    await rebuilt.initialize()
    ours = {t + suffix for t in TENANTS}
    start = cursor = await store.head_position()

    async def project() -> bool:
        nonlocal cursor
        batch = await store.read_all(cursor, 3)
        if batch:
            cursor = batch[-1].position
            if mine := [e for e in batch if e.tenant_id in ours]:
                await live.handle(mine)
        return bool(batch)

    await run_sequence(SETUP + ops, bus, store, project, lambda t: t + suffix)
    events = [e for e in await store.read_all(start, 100_000) if e.tenant_id in ours]
    assert len(events) >= 4, "the setup's four agents are not in the log"
    for type_ in sorted({e.type for e in events}):
        event(type_)
    # positions strictly increasing; versions per aggregate 1..n without gaps
    assert [e.position for e in events] == sorted({e.position for e in events})
    for aggregate_id in {e.aggregate_id for e in events}:
        stream = await store.read_stream(aggregate_id)
        assert [e.version for e in stream] == list(range(1, len(stream) + 1))
        assert verify_chain(stream) == len(stream)
    # one batch gives exactly what live, small-step projection gave
    await rebuilt.handle(events)
    assert await dump(rebuilt_engine) == await dump(live_engine)
    # a tampered event anywhere is detected
    if events:
        victim = events[tamper_index % len(events)]
        stream = await store.read_stream(victim.aggregate_id)
        forged = [tampered(e) if e.event_id == victim.event_id else e for e in stream]
        try:
            verify_chain(forged)
        except TamperedEvent:
            pass
        else:
            raise AssertionError(f"tampering with {victim.type} v{victim.version} went unseen")


def tampered(event: RecordedEvent) -> RecordedEvent:
    return replace(event, payload={**event.payload, "forged": True})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=1, max_size=40), tamper_index=st.integers(0, 1000))
def test_random_command_sequences_keep_the_log_and_projections_consistent(
    ops: list[tuple[Any, ...]], tamper_index: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(check(ops, tamper_index, Path(directory)))
