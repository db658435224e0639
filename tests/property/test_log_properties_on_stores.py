"""The log and read-model properties of ``test_log_properties.py`` on the stores of every
deployment (issue 11 item 2): the embedded SQLite store with SQLite read models, the
embedded PostgreSQL store and the distributed Kafka store (partition writers and the log
mirror on the real broker), both with PostgreSQL read models. One store serves every
example of a run (each example has tenants of its own); each example projects into fresh
read models."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.sql_store import SqlEventStore
from adapters.sql.engines import make_engine
from commands.ports import EventStore
from tests.kafka import distributed_store
from tests.pg import POSTGRES_URL, create_schema, drop_schema
from tests.property.test_log_properties import check_on, operation

# a pair of fresh read-model databases (live, rebuilt), closed and dropped by the stack
ReadModels = Callable[[AsyncExitStack], Awaitable[tuple[AsyncEngine, AsyncEngine]]]


async def sqlite_read_models(stack: AsyncExitStack) -> tuple[AsyncEngine, AsyncEngine]:
    directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    engines = tuple(make_engine(f"sqlite:///{directory / name}", immediate=True)
                    for name in ("live.db", "rebuilt.db"))
    for engine in engines:
        stack.push_async_callback(engine.dispose)
    return engines[0], engines[1]


async def postgres_read_models(stack: AsyncExitStack) -> tuple[AsyncEngine, AsyncEngine]:
    engines = []
    for _ in range(2):
        name = await create_schema()
        stack.push_async_callback(drop_schema, name)
        engine = make_engine(POSTGRES_URL, schema=name, immediate=True)
        stack.push_async_callback(engine.dispose)
        engines.append(engine)
    return engines[0], engines[1]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("distributed", marks=[pytest.mark.kafka,
                                                           pytest.mark.postgres])])
async def deployment(request: pytest.FixtureRequest,
                     tmp_path: Path) -> AsyncIterator[tuple[EventStore, ReadModels]]:
    async with AsyncExitStack() as stack:
        store: EventStore
        if request.param == "sqlite":
            sql = SqlEventStore(f"sqlite:///{tmp_path / 'events.db'}")
            stack.push_async_callback(sql.close)
            await sql.initialize()
            yield sql, sqlite_read_models
            return
        name = await create_schema()
        stack.push_async_callback(drop_schema, name)
        if request.param == "postgres":
            sql = SqlEventStore(POSTGRES_URL, schema=name)
            stack.push_async_callback(sql.close)
            await sql.initialize()
            store = sql
        else:
            store = (await stack.enter_async_context(distributed_store(name))).store
        yield store, postgres_read_models


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=30), tamper_index=st.integers(0, 1000))
async def test_random_command_sequences_keep_every_store_and_its_projections_consistent(
    deployment: tuple[EventStore, ReadModels], ops: list[tuple[Any, ...]], tamper_index: int,
) -> None:
    store, read_models = deployment
    async with AsyncExitStack() as stack:
        live, rebuilt = await read_models(stack)
        await check_on(store, ops, tamper_index, live, rebuilt,
                       suffix="-" + uuid.uuid4().hex[:8])
