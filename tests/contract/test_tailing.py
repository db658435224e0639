"""Tailing the global order: a live reader never skips a committed event.

A reader that loops ``read_all(after=last_seen)`` while writers append must see every
event exactly once, in strictly increasing position order. On PostgreSQL a later
transaction can commit before an earlier one; the store's append lock must hide that.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from itertools import pairwise

import pytest

from commands.ports import EventStore
from domain.ids import new_id

from .conftest import Database, new_events

WRITERS = 4
APPENDS_PER_WRITER = 50


async def write_many(store: EventStore, count: int, seed: int) -> int:
    """``count`` appends of 1 to 3 events to a few aggregates; returns the events written."""
    rng = random.Random(seed)
    versions = {new_id(): 0 for _ in range(3)}
    written = 0
    for _ in range(count):
        aggregate_id = rng.choice(list(versions))
        size = rng.randint(1, 3)
        await store.append(
            new_events(aggregate_id, size, after_version=versions[aggregate_id]),
            expected_version=versions[aggregate_id],
        )
        versions[aggregate_id] += size
        written += size
    return written


async def tail_while_writing(
    reader: EventStore, writers: Sequence[EventStore]
) -> tuple[list[int], list[str], int]:
    """Run the writers concurrently while one reader tails; return what it saw."""
    positions: list[int] = []
    event_ids: list[str] = []
    writers_done = asyncio.Event()

    async def tail() -> None:
        after = 0
        while True:
            finished = writers_done.is_set()  # read before the query: nothing commits later
            batch = await reader.read_all(after, 37)
            for event in batch:
                positions.append(event.position)
                event_ids.append(event.event_id)
            if batch:
                after = batch[-1].position
            elif finished:
                return
            await asyncio.sleep(0)

    async def write_all() -> int:
        try:
            counts = await asyncio.gather(
                *(
                    write_many(store, APPENDS_PER_WRITER, seed)
                    for seed, store in enumerate(
                        [writers[i % len(writers)] for i in range(WRITERS)]
                    )
                )
            )
        finally:
            writers_done.set()
        return sum(counts)

    async with asyncio.timeout(45):
        _, written = await asyncio.gather(tail(), write_all())
    return positions, event_ids, written


async def assert_saw_everything(
    store: EventStore, positions: list[int], event_ids: list[str], written: int
) -> None:
    assert all(x < y for x, y in pairwise(positions)), (
        "the tailing reader saw positions out of order"
    )
    stored = await store.read_all(0, 1_000_000)
    assert len(stored) == written
    missed = {e.event_id for e in stored} - set(event_ids)
    assert not missed, f"the tailing reader skipped {len(missed)} committed events"
    assert event_ids == [e.event_id for e in stored]
    assert positions[-1] == await store.head_position()


async def test_a_live_reader_sees_every_event_once_and_in_order(event_store: EventStore) -> None:
    positions, event_ids, written = await tail_while_writing(event_store, [event_store])
    await assert_saw_everything(event_store, positions, event_ids, written)


@pytest.mark.postgres
async def test_a_live_reader_on_postgres_misses_nothing_from_writers_on_separate_engines(
    postgres_database: Database,
) -> None:
    writers = [await postgres_database.open_store() for _ in range(WRITERS)]
    reader = await postgres_database.open_store()
    assert len({id(store.writer) for store in [*writers, reader]}) == WRITERS + 1

    positions, event_ids, written = await tail_while_writing(reader, writers)

    await assert_saw_everything(reader, positions, event_ids, written)
