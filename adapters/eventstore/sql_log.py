"""The SQL event log, read: streams, the global order, accepted commands, lookups by id.

``SqlEventStore`` (the embedded store) appends to it; in the distributed deployment the
Kafka log mirror copies into it and the Kafka store reads it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.eventstore.append_rule import StreamHead
from adapters.eventstore.log_chain import LinkedAppender, keep_sequence_in_step, link_older_log
from adapters.eventstore.sql_tables import commands_table, create_log_tables, events_table, from_row
from adapters.sql.engines import is_sqlite, make_engine
from commands.errors import StoreUnavailable
from commands.ports import CommandRecord
from domain.envelope import RecordedEvent

P = ParamSpec("P")
T = TypeVar("T")


class DatabaseUnavailable(StoreUnavailable):
    """The event log's database did not answer (restarting, failing over, the network)."""


def unavailable_when_down(
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """A database that cannot be reached is ``DatabaseUnavailable`` (a ``StoreUnavailable``:
    retry), never a driver error."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except IntegrityError:
            raise
        except (DBAPIError, OSError) as error:
            raise DatabaseUnavailable(
                f"the event store's database is unavailable ({type(error).__name__}); retry "
                "shortly (a write: with the same Idempotency-Key)"
            ) from error

    return call


class SqlEventLog:
    def __init__(self, url: str, *, echo: bool = False, schema: str | None = None) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        # SQLite: one writer connection (BEGIN IMMEDIATE) and a pool of readers beside it
        self.writer: AsyncEngine = make_engine(url, echo=echo, schema=schema, immediate=True)
        self.reader: AsyncEngine = make_engine(url, echo=echo) if self.sqlite else self.writer
        self.appender = LinkedAppender()  # the SQL store's appends, the mirror's copies

    async def initialize(self) -> None:
        async with self.writer.begin() as conn:
            await create_log_tables(conn)
            await link_older_log(conn)
            await keep_sequence_in_step(conn)

    async def close(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()

    @unavailable_when_down
    async def read_stream(self, aggregate_id: str) -> list[RecordedEvent]:
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(events_table)
                .where(events_table.c.aggregate_id == aggregate_id)
                .order_by(events_table.c.version)
            )
            return [from_row(row) for row in rows]

    @unavailable_when_down
    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(events_table)
                .where(events_table.c.position > after)
                .order_by(events_table.c.position)
                .limit(limit)
            )
            return [from_row(row) for row in rows]

    @unavailable_when_down
    async def find_command(self, tenant_id: str, command_id: str) -> CommandRecord | None:
        async with self.reader.connect() as conn:
            return await command_record(conn, tenant_id, command_id)

    @unavailable_when_down
    async def head_position(self) -> int:
        async with self.reader.connect() as conn:
            value = (await conn.execute(select(func.max(events_table.c.position)))).scalar()
        return int(value or 0)

    @unavailable_when_down
    async def stream_head(self, aggregate_id: str) -> StreamHead:
        async with self.reader.connect() as conn:
            return await stream_head(conn, aggregate_id)

    @unavailable_when_down
    async def positions_of(self, event_ids: Sequence[str]) -> dict[str, int]:
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(events_table.c.event_id, events_table.c.position).where(
                    events_table.c.event_id.in_(list(event_ids))
                )
            )
            return {str(row.event_id): int(row.position) for row in rows}

    async def position_of(self, event_id: str) -> int | None:
        return (await self.positions_of([event_id])).get(event_id)


async def stream_head(conn: AsyncConnection, aggregate_id: str) -> StreamHead:
    row = (
        await conn.execute(
            select(events_table.c.version, events_table.c.hash)
            .where(events_table.c.aggregate_id == aggregate_id)
            .order_by(events_table.c.version.desc())
            .limit(1)
        )
    ).first()
    return StreamHead(int(row.version), str(row.hash)) if row else StreamHead()


async def command_record(
    conn: AsyncConnection, tenant_id: str, command_id: str
) -> CommandRecord | None:
    row = (
        await conn.execute(
            select(commands_table).where(
                commands_table.c.tenant_id == tenant_id,
                commands_table.c.command_id == command_id,
            )
        )
    ).first()
    return None if row is None else CommandRecord(**dict(row._mapping))
