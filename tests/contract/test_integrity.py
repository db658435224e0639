"""What the hash chains cannot see is found by the log's own checks: the log chain over the
global order, the head record, and the commands that produced the events. One test per way
of tampering that passed ``kasal audit verify`` before (issue 11), on SQLite and PostgreSQL,
each done as an attacker with the database would: rows changed behind the store's back."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace

import pytest
from sqlalchemy import text

from adapters.eventstore.integrity import integrity_problems
from adapters.eventstore.log_chain import LogTampered, restore_head
from adapters.eventstore.sql_log import SqlEventLog
from adapters.eventstore.sql_store import SqlEventStore
from adapters.kafka.client_store import KafkaEventStore
from commands import messages as m
from commands.bus import CommandBus
from commands.ports import CommandRecord
from domain.envelope import GENESIS_HASH, compute_hash, verify_chain
from domain.ids import new_id
from tests.contract.conftest import (
    KAFKA,
    SQL_BACKENDS,
    TENANT,
    Database,
    agent_command,
    backend_database,
    ctx,
    new_events,
    open_backend,
)
from tests.factories import execute_raw


async def registered(store: SqlEventStore, *roles: str) -> list[str]:
    bus = CommandBus(store)
    return [(await bus.dispatch(agent_command(role), ctx())).aggregate_id for role in roles]


async def shift_positions(store: SqlEventLog, after: int, by: int) -> None:
    """Renumber every event (and command row) after ``after`` by ``by``, as an attacker would
    close a gap: through negative positions, so no unique key collides on the way."""
    for table in ("kasal_events", "kasal_commands"):
        await execute_raw(store, f"UPDATE {table} SET position = -position WHERE position > :p",
                          p=after)
        await execute_raw(store, f"UPDATE {table} SET position = -position + :by "
                                 "WHERE position < 0", by=by)


def named(problems: list[str], *words: str) -> bool:
    return any(all(word in problem for word in words) for problem in problems)


async def test_an_intact_log_has_no_integrity_problems(database: Database) -> None:
    store = await database.open_store()
    await registered(store, "A", "B", "C")
    await store.append(new_events(new_id(), 3), expected_version=0)
    assert await integrity_problems(store) == []


async def test_a_cut_tail_and_a_deleted_stream_are_found(database: Database) -> None:
    store = await database.open_store()
    bus = CommandBus(store)
    kept, cut, gone = await registered(store, "Kept", "Cut", "Gone")
    await bus.dispatch(m.UpdateAgent(agent_id=cut, role="Cut again", goal="g",
                                     backstory="b"), ctx())
    await registered(store, "Last")
    await execute_raw(store, "DELETE FROM kasal_events WHERE aggregate_id = :a AND version = 2",
                      a=cut)
    await execute_raw(store, "DELETE FROM kasal_events WHERE aggregate_id = :a", a=gone)
    # the chains of what is left still verify: that is why these checks exist
    assert verify_chain(await store.read_stream(cut)) == 1
    problems = await integrity_problems(store)
    assert named(problems, f"{cut} v2", "missing")
    assert named(problems, f"{gone} v1", "missing")
    assert named(problems, "breaks the log chain")
    assert kept not in " ".join(problems)


async def test_the_tail_aggregate_deleted_with_its_command_rows_is_found(
    database: Database,
) -> None:
    store = await database.open_store()
    await registered(store, "A", "B")
    [tail] = await registered(store, "Tail")
    head = await store.head_position()
    await execute_raw(store, "DELETE FROM kasal_events WHERE aggregate_id = :a", a=tail)
    await execute_raw(store, "DELETE FROM kasal_commands WHERE aggregate_id = :a", a=tail)
    problems = await integrity_problems(store)
    assert problems == [
        f"the log ends at position {head - 1}, but its head was recorded at position {head}: "
        f"the events after {head - 1} are gone (a rollback or a truncation)"]


async def test_the_last_50_events_rolled_back_with_their_command_rows_are_found(
    database: Database,
) -> None:
    store = await database.open_store()
    await registered(store, *(f"Agent {n}" for n in range(60)))
    head = await store.head_position()
    await execute_raw(store, "DELETE FROM kasal_events WHERE position > :p", p=head - 50)
    await execute_raw(store, "DELETE FROM kasal_commands WHERE position > :p", p=head - 50)
    problems = await integrity_problems(store)
    assert named(problems, f"ends at position {head - 50}", f"recorded at position {head}")
    # and the next append does not write over the evidence: it continues the recorded head
    [later] = await registered(store, "After the rollback")
    assert (await store.stream_head(later)).version == 1
    assert await store.head_position() == head + 1
    problems = await integrity_problems(store)
    assert named(problems, f"position {head + 1}", f"after position {head - 50}",
                 "breaks the log chain")


async def test_positions_renumbered_after_a_deletion_are_found(database: Database) -> None:
    store = await database.open_store()
    await registered(store, "A")
    [middle] = await registered(store, "Middle")
    await registered(store, "C", "D")
    gap = (await store.read_stream(middle))[0].position
    await execute_raw(store, "DELETE FROM kasal_events WHERE aggregate_id = :a", a=middle)
    await execute_raw(store, "DELETE FROM kasal_commands WHERE aggregate_id = :a", a=middle)
    await shift_positions(store, gap, -1)  # gapless again, commands renumbered too
    await execute_raw(store, "UPDATE kasal_log_head SET position = position - 1")
    problems = await integrity_problems(store)
    assert named(problems, f"position {gap} ", f"after position {gap - 1}",
                 "breaks the log chain")
    assert named(problems, f"position {gap + 1} ", "breaks the log chain")


async def test_positions_swapped_inside_one_command_batch_are_found(database: Database) -> None:
    store = await database.open_store()
    await registered(store, "Before")
    aggregate = new_id()
    batch = await store.append(new_events(aggregate, 3), expected_version=0,
                               command=CommandRecord(TENANT, new_id(), "f" * 64))
    first, second = batch.position - 2, batch.position - 1
    await execute_raw(store, "UPDATE kasal_events SET position = -1 WHERE position = :p",
                      p=first)
    await execute_raw(store, "UPDATE kasal_events SET position = :a WHERE position = :b",
                      a=first, b=second)
    await execute_raw(store, "UPDATE kasal_events SET position = :p WHERE position = -1",
                      p=second)
    assert verify_chain(await store.read_stream(aggregate)) == 3  # versions, not positions
    problems = await integrity_problems(store)
    assert named(problems, f"position {first} ({aggregate} v2)", "breaks the log chain")
    assert named(problems, f"position {second} ({aggregate} v1)", "breaks the log chain")


async def test_both_tables_truncated_are_found(database: Database) -> None:
    store = await database.open_store()
    await registered(store, "A", "B", "C")
    head = await store.head_position()
    await execute_raw(store, "DELETE FROM kasal_events")
    await execute_raw(store, "DELETE FROM kasal_commands")
    assert await integrity_problems(store) == [
        f"the log is empty, but its head was recorded at position {head}: every event is gone "
        "(a truncation)"]


async def test_an_edited_payload_with_recomputed_hashes_is_found(database: Database) -> None:
    store = await database.open_store()
    bus = CommandBus(store)
    [agent] = await registered(store, "Honest")
    for n in range(2):
        await bus.dispatch(m.UpdateAgent(agent_id=agent, role=f"Honest {n}", goal="g",
                                         backstory="b"), ctx())
    await registered(store, "After")
    # rewrite v1's payload and re-seal the aggregate's whole chain, as the probe did
    events, prev = await store.read_stream(agent), GENESIS_HASH
    for event in events:
        if event.version == 1:
            event = replace(event, payload={**event.payload, "role": "Forged"})
        event = replace(event, prev_hash=prev)
        event = replace(event, hash=compute_hash(event, prev))
        await execute_raw(
            store, "UPDATE kasal_events SET payload = :p, prev_hash = :ph, hash = :h "
                   "WHERE position = :pos",
            p=json.dumps(dict(event.payload)), ph=event.prev_hash, h=event.hash,
            pos=event.position)
        prev = event.hash
    assert verify_chain(await store.read_stream(agent)) == 3
    problems = await integrity_problems(store)
    assert named(problems, f"({agent} v1) breaks the log chain")
    assert len([p for p in problems if agent in p]) == 3  # each re-sealed event


async def test_a_removed_head_record_stops_appends_until_an_operator_restores_it(
    database: Database,
) -> None:
    store = await database.open_store()
    await registered(store, "A", "B", "Tail")
    await execute_raw(store, "DELETE FROM kasal_events WHERE position = 3")
    await execute_raw(store, "DELETE FROM kasal_commands WHERE position = 3")
    await execute_raw(store, "DELETE FROM kasal_log_head")
    await store.close()
    reopened = await database.open_store()  # a restart must not bless the log again
    assert await integrity_problems(reopened) == [
        "the log's head record is missing (the log ends at position 2)"]
    # nor may the next append: it would record a head over the deletion
    with pytest.raises(LogTampered, match=r"head record \(kasal_log_head\) is gone"):
        await reopened.append(new_events(new_id(), 1), expected_version=0)
    assert await reopened.head_position() == 2
    async with reopened.writer.begin() as conn:  # kasal audit restore-head
        assert (await restore_head(conn)).position == 2
    await registered(reopened, "After the repair")
    assert await integrity_problems(reopened) == []


async def test_a_row_moved_past_the_head_record_stops_appends(database: Database) -> None:
    store = await database.open_store()
    await registered(store, "A", "B")
    await execute_raw(store, "UPDATE kasal_events SET position = 3 WHERE position = 2")
    assert named(await integrity_problems(store), "position 3 was written after the recorded "
                 "head (position 2)")
    with pytest.raises(LogTampered, match="a position after 2 is taken"):
        await store.append(new_events(new_id(), 1), expected_version=0)


async def test_a_log_from_before_the_log_chain_is_linked_at_start(database: Database) -> None:
    store = await database.open_store()
    await registered(store, "Old A", "Old B")
    await execute_raw(store, "DELETE FROM kasal_log_head")
    await execute_raw(store, "ALTER TABLE kasal_events DROP COLUMN log_hash")
    await store.close()
    upgraded = await database.open_store()
    assert await integrity_problems(upgraded) == []
    await registered(upgraded, "New C")
    assert await integrity_problems(upgraded) == []
    assert [e.position for e in await upgraded.read_all()] == [1, 2, 3]


async def test_postgres_keeps_the_position_sequence_at_the_head(
    postgres_database: Database,
) -> None:
    """A Kasal from before the log chain (a downgrade) draws positions from the sequence."""
    store = await postgres_database.open_store()
    await registered(store, "A", "B", "C")
    await store.close()
    reopened = await postgres_database.open_store()
    async with reopened.writer.begin() as conn:
        drawn = (await conn.execute(text(
            "SELECT nextval(pg_get_serial_sequence('kasal_events', 'position'))"))).scalar()
    assert drawn == 4


async def test_verify_while_appends_commit_finds_nothing(database: Database) -> None:
    """Each check reads one snapshot: an append that commits meanwhile is not half seen."""
    store = await database.open_store()
    await registered(store, "First")
    done = asyncio.Event()

    async def appending() -> None:
        while not done.is_set():
            await store.append(new_events(new_id(), 2), expected_version=0)

    writer = asyncio.create_task(appending())
    try:
        for _ in range(30):
            assert await integrity_problems(store) == []
    finally:
        done.set()
        await writer
    assert await store.head_position() > 3


@pytest.fixture(params=[*SQL_BACKENDS, KAFKA])
def sql_log_backend(request: pytest.FixtureRequest) -> tuple[str, Database | None]:
    return request.param, backend_database(request, request.param)


async def test_every_sql_log_links_its_rows(
    sql_log_backend: tuple[str, Database | None],
) -> None:
    """The embedded stores link on append, the distributed log mirror on copy."""
    store = await open_backend(*sql_log_backend)
    log = store.mirror if isinstance(store, KafkaEventStore) else store
    assert isinstance(log, SqlEventLog)
    for _ in range(3):
        await store.append(new_events(new_id(), 2), expected_version=0)
    assert await integrity_problems(log) == []
    await execute_raw(log, "DELETE FROM kasal_events WHERE position > 4")
    assert named(await integrity_problems(log), "ends at position 4",
                 "recorded at position 6")


async def test_two_writers_on_one_log_keep_one_chain(database: Database) -> None:
    """Each writer remembers the head it wrote; the other's appends make it read the record."""
    first, second = await database.open_store(), await database.open_store()

    async def appends(store: SqlEventStore, count: int) -> None:
        for _ in range(count):
            await store.append(new_events(new_id(), 2), expected_version=0)

    await asyncio.gather(appends(first, 15), appends(second, 15))
    await appends(first, 1)
    events = await first.read_all(0, 1000)
    assert [e.position for e in events] == list(range(1, 63))
    assert await integrity_problems(first) == []
