"""The EventStore contract (commands/ports.py), for every implementation.

The in-memory store is the reference behaviour; the SQL store must behave the same on
SQLite and on PostgreSQL. Each test runs once per store (ids: memory, sqlite, postgres).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from itertools import pairwise

import pytest

from commands.errors import ConcurrencyError, DuplicateCommand
from commands.ports import AppendResult, CommandRecord, EventStore
from domain.envelope import GENESIS_HASH, compute_hash, verify_chain
from domain.errors import TamperedEvent
from domain.ids import new_id

from .conftest import OTHER_TENANT, TENANT, new_events, tamper

FINGERPRINT = "f" * 64


async def snapshot(store: EventStore) -> tuple[int, list[str]]:
    """The store's head and every event id, in global order."""
    events = await store.read_all(0, 100_000)
    return await store.head_position(), [e.event_id for e in events]


# --- 1. atomic appends, reading back ----------------------------------------------------
async def test_empty_store_has_head_zero_and_reads_nothing(event_store: EventStore) -> None:
    assert await event_store.head_position() == 0
    assert await event_store.read_all(0, 10) == []
    assert await event_store.read_stream(new_id()) == []
    assert await event_store.find_command(TENANT, new_id()) is None


async def test_appended_events_read_back_in_version_order_and_global_order(
    event_store: EventStore,
) -> None:
    a, b = new_id(), new_id()
    first = new_events(a, 3)
    other = new_events(b, 2)
    more = new_events(a, 2, after_version=3)

    r1 = await event_store.append(first, expected_version=0)
    r2 = await event_store.append(other, expected_version=0)
    r3 = await event_store.append(more, expected_version=3)

    stream = await event_store.read_stream(a)
    assert [e.version for e in stream] == [1, 2, 3, 4, 5]
    assert [e.event_id for e in stream] == [e.event_id for e in first + more]
    positions = [e.position for e in stream]
    assert positions == sorted(set(positions)), "positions must increase along a stream"

    everything = await event_store.read_all(0, 1000)
    assert [e.event_id for e in everything] == [e.event_id for e in first + other + more]
    global_positions = [e.position for e in everything]
    assert all(p > 0 for p in global_positions)
    assert all(x < y for x, y in pairwise(global_positions))

    head = await event_store.head_position()
    assert head == global_positions[-1]
    assert r1 == AppendResult(a, 3, everything[2].position)
    assert r2 == AppendResult(b, 2, everything[4].position)
    assert r3 == AppendResult(a, 5, head)


async def test_envelope_and_payload_survive_the_round_trip(event_store: EventStore) -> None:
    aggregate_id = new_id()
    sent = new_events(aggregate_id, 2)
    await event_store.append(sent, expected_version=0)

    for original, stored in zip(sent, await event_store.read_stream(aggregate_id), strict=True):
        for name in type(original).__dataclass_fields__:
            assert getattr(stored, name) == getattr(original, name), name
        assert stored.payload == {
            "n": original.version,
            "text": "héllo ✓",
            "nested": {"b": [1, 2.5]},
        }


async def test_read_all_pages_by_position_after_and_limit(event_store: EventStore) -> None:
    for _ in range(4):
        await event_store.append(new_events(new_id(), 2), expected_version=0)
    everything = await event_store.read_all(0, 1000)
    assert len(everything) == 8

    page = await event_store.read_all(everything[2].position, 3)
    assert [e.event_id for e in page] == [e.event_id for e in everything[3:6]]
    assert await event_store.read_all(everything[-1].position, 10) == []

    paged: list[str] = []
    after = 0
    while batch := await event_store.read_all(after, 3):
        paged.extend(e.event_id for e in batch)
        after = batch[-1].position
    assert paged == [e.event_id for e in everything]


# --- 2. versions and optimistic concurrency -------------------------------------------------
async def test_stale_expected_version_raises_concurrency_error_with_current_version(
    event_store: EventStore,
) -> None:
    aggregate_id = new_id()
    await event_store.append(new_events(aggregate_id, 3), expected_version=0)
    before = await snapshot(event_store)

    for expected in (0, 1, 2, 4, 7):
        with pytest.raises(ConcurrencyError) as caught:
            await event_store.append(
                new_events(aggregate_id, 2, after_version=expected), expected_version=expected
            )
        assert caught.value.aggregate_id == aggregate_id
        assert caught.value.expected == expected
        assert caught.value.current == 3

    assert await snapshot(event_store) == before
    assert [e.version for e in await event_store.read_stream(aggregate_id)] == [1, 2, 3]


async def test_versions_continue_without_gaps_across_appends(event_store: EventStore) -> None:
    aggregate_id = new_id()
    version = 0
    for size in (1, 3, 2, 1):
        result = await event_store.append(
            new_events(aggregate_id, size, after_version=version), expected_version=version
        )
        version += size
        assert result.version == version
    stream = await event_store.read_stream(aggregate_id)
    assert [e.version for e in stream] == list(range(1, version + 1))


# --- 3. the hash chain ---------------------------------------------------------------------
async def test_each_event_is_chained_to_its_predecessor_from_genesis(
    event_store: EventStore,
) -> None:
    a, b = new_id(), new_id()
    await event_store.append(new_events(a, 2), expected_version=0)
    await event_store.append(new_events(b, 1), expected_version=0)
    await event_store.append(new_events(a, 3, after_version=2), expected_version=2)

    stream = await event_store.read_stream(a)
    assert verify_chain(stream) == 5
    assert stream[0].prev_hash == GENESIS_HASH
    for previous, event in pairwise(stream):
        assert event.prev_hash == previous.hash
    for event in stream:
        assert len(event.hash) == 64
        assert event.hash == compute_hash(event, event.prev_hash)
    # chains are per aggregate: b's first event starts from genesis, not from a's head
    other = await event_store.read_stream(b)
    assert other[0].prev_hash == GENESIS_HASH
    assert verify_chain(other) == 1


async def test_an_edited_payload_is_detected_as_tampering(event_store: EventStore) -> None:
    aggregate_id = new_id()
    await event_store.append(new_events(aggregate_id, 4), expected_version=0)
    assert verify_chain(await event_store.read_stream(aggregate_id)) == 4

    await tamper(event_store, aggregate_id, 2, {"n": 2, "text": "forged", "nested": {"b": []}})

    stream = await event_store.read_stream(aggregate_id)
    assert stream[1].payload["text"] == "forged"  # the edit really reached the store
    with pytest.raises(TamperedEvent, match="v2"):
        verify_chain(stream)


async def test_dropping_or_reordering_events_is_detected(event_store: EventStore) -> None:
    aggregate_id = new_id()
    await event_store.append(new_events(aggregate_id, 3), expected_version=0)
    stream = await event_store.read_stream(aggregate_id)

    with pytest.raises(TamperedEvent):
        verify_chain([stream[0], stream[2]])
    with pytest.raises(TamperedEvent):
        verify_chain([stream[0], replace(stream[2], version=2)])
    with pytest.raises(TamperedEvent):
        verify_chain([replace(stream[0], actor="user:mallory"), *stream[1:]])


# --- 4. idempotency at the store -----------------------------------------------------------
async def test_append_records_the_command_with_its_result(event_store: EventStore) -> None:
    aggregate_id, command_id = new_id(), new_id()
    result = await event_store.append(
        new_events(aggregate_id, 2),
        expected_version=0,
        command=CommandRecord(TENANT, command_id, FINGERPRINT),
    )
    found = await event_store.find_command(TENANT, command_id)
    assert found == CommandRecord(TENANT, command_id, FINGERPRINT, aggregate_id, 2, result.position)
    assert result.position == await event_store.head_position()


async def test_a_recorded_command_id_raises_duplicate_command_and_appends_nothing(
    event_store: EventStore,
) -> None:
    aggregate_id, command_id = new_id(), new_id()
    record = CommandRecord(TENANT, command_id, FINGERPRINT)
    await event_store.append(new_events(aggregate_id, 1), expected_version=0, command=record)
    first = await event_store.find_command(TENANT, command_id)
    before = await snapshot(event_store)

    with pytest.raises(DuplicateCommand):  # same aggregate, next version
        await event_store.append(
            new_events(aggregate_id, 1, after_version=1), expected_version=1, command=record
        )
    with pytest.raises(DuplicateCommand):  # same aggregate, other fingerprint
        await event_store.append(
            new_events(aggregate_id, 1, after_version=1),
            expected_version=1,
            command=CommandRecord(TENANT, command_id, "0" * 64),
        )
    with pytest.raises(DuplicateCommand):  # a retry that re-creates the aggregate
        await event_store.append(new_events(aggregate_id, 1), expected_version=0, command=record)

    assert await snapshot(event_store) == before
    assert await event_store.find_command(TENANT, command_id) == first


# A command id is refused on ANY aggregate. The embedded stores keep one command table; the
# Kafka store's writers see one partition each, so its client checks the log mirror first
# (two concurrent uses on two aggregates within the mirror's lag both pass there: the
# mirror then keeps the first). The bus derives a created aggregate's id from the command
# id, so a retry lands on the same aggregate, where every store refuses it atomically.
async def test_a_recorded_command_id_is_refused_on_any_other_aggregate(
    event_store: EventStore,
) -> None:
    command_id = new_id()
    record = CommandRecord(TENANT, command_id, FINGERPRINT)
    await event_store.append(new_events(new_id(), 1), expected_version=0, command=record)
    first = await event_store.find_command(TENANT, command_id)
    before = await snapshot(event_store)

    with pytest.raises(DuplicateCommand):  # another aggregate, other fingerprint
        await event_store.append(
            new_events(new_id(), 2),
            expected_version=0,
            command=CommandRecord(TENANT, command_id, "0" * 64),
        )

    assert await snapshot(event_store) == before
    assert await event_store.find_command(TENANT, command_id) == first


async def test_the_same_command_id_in_another_tenant_is_a_different_command(
    event_store: EventStore,
) -> None:
    command_id = new_id()
    a, b = new_id(), new_id()
    ra = await event_store.append(
        new_events(a, 1), expected_version=0, command=CommandRecord(TENANT, command_id, "a" * 64)
    )
    rb = await event_store.append(
        new_events(b, 2, tenant_id=OTHER_TENANT),
        expected_version=0,
        command=CommandRecord(OTHER_TENANT, command_id, "b" * 64),
    )
    assert await event_store.find_command(TENANT, command_id) == CommandRecord(
        TENANT, command_id, "a" * 64, a, 1, ra.position
    )
    assert await event_store.find_command(OTHER_TENANT, command_id) == CommandRecord(
        OTHER_TENANT, command_id, "b" * 64, b, 2, rb.position
    )
    assert await event_store.find_command("tenant-c", command_id) is None


# --- 5. malformed batches --------------------------------------------------------------------
@pytest.mark.parametrize(
    "shape", ["two aggregates", "version gap", "not after expected", "repeated version", "empty"]
)
async def test_a_malformed_batch_raises_value_error_and_appends_nothing(
    event_store: EventStore, shape: str
) -> None:
    a = new_id()
    await event_store.append(new_events(a, 1), expected_version=0)
    before = await snapshot(event_store)

    follow = new_events(a, 3, after_version=1)  # versions 2, 3, 4: a valid continuation
    batches = {
        "two aggregates": [follow[0], *new_events(new_id(), 1, after_version=2)],
        "version gap": [follow[0], follow[2]],
        "not after expected": follow[1:],
        "repeated version": [follow[0], replace(follow[1], version=2)],
        "empty": [],
    }
    with pytest.raises(ValueError):
        await event_store.append(batches[shape], expected_version=1)

    assert await snapshot(event_store) == before
    assert [e.version for e in await event_store.read_stream(a)] == [1]


# --- 6. concurrent writers -------------------------------------------------------------------
async def test_concurrent_appends_at_the_same_version_let_exactly_one_win(
    event_store: EventStore,
) -> None:
    aggregate_id = new_id()
    await event_store.append(new_events(aggregate_id, 1), expected_version=0)
    contenders = [new_events(aggregate_id, 2, after_version=1) for _ in range(20)]

    outcomes = await asyncio.gather(
        *(event_store.append(batch, expected_version=1) for batch in contenders),
        return_exceptions=True,
    )

    winners = [i for i, o in enumerate(outcomes) if isinstance(o, AppendResult)]
    losers = [o for o in outcomes if isinstance(o, ConcurrencyError)]
    assert len(winners) == 1, outcomes
    assert len(losers) == 19, outcomes
    assert all(error.current == 3 for error in losers)

    stream = await event_store.read_stream(aggregate_id)
    assert [e.version for e in stream] == [1, 2, 3]
    assert [e.event_id for e in stream[1:]] == [e.event_id for e in contenders[winners[0]]]
    assert verify_chain(stream) == 3
    assert len(await event_store.read_all(0, 1000)) == 3


async def test_concurrent_retries_of_one_command_append_it_once(event_store: EventStore) -> None:
    command_id, aggregate_id = new_id(), new_id()
    outcomes = await asyncio.gather(
        *(
            event_store.append(
                new_events(aggregate_id, 1),
                expected_version=0,
                command=CommandRecord(TENANT, command_id, FINGERPRINT),
            )
            for _ in range(10)
        ),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if isinstance(o, AppendResult)]
    assert len(winners) == 1, outcomes
    assert all(isinstance(o, DuplicateCommand) for o in outcomes if o is not winners[0]), outcomes
    assert len(await event_store.read_all(0, 1000)) == 1
    found = await event_store.find_command(TENANT, command_id)
    assert found is not None
    assert (found.aggregate_id, found.version, found.position) == (
        winners[0].aggregate_id,
        winners[0].version,
        winners[0].position,
    )
