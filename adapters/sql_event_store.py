"""The SQL event store: SQLite (embedded default) and PostgreSQL, one implementation.

Global order without skips: a tailing reader must never see position N+1 before N
has committed. SQLite serialises writers (``BEGIN IMMEDIATE``), so positions are
assigned in commit order. On PostgreSQL a sequence alone does not give that (a later
transaction can commit first), so each append takes one transaction-scoped advisory
lock before it draws positions and holds it until commit: appends are serialised,
and commit order equals position order. docs/2026-11-27-event-store.md has the why.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from adapters.memory_event_store import check_batch
from adapters.sql import is_sqlite, make_engine
from commands.ports import AppendResult, CommandRecord, ConcurrencyError, DuplicateCommand
from domain.envelope import GENESIS_HASH, NewEvent, RecordedEvent, canonical_json, seal
from domain.errors import TamperedEvent

APPEND_LOCK_KEY = 0x6B6173616C  # "kasal": the advisory lock every PostgreSQL append takes
SCHEMA_LOCK_KEY = 0x6B6173616C02  # the same key as the projections' table creation

metadata = MetaData()
Position = BigInteger().with_variant(Integer, "sqlite")

events_table = Table(
    "kasal_events",
    metadata,
    Column("position", Position, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("aggregate_type", String(32), nullable=False),
    Column("aggregate_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("occurred_at", String(40), nullable=False),
    Column("tenant_id", String(100), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("command_id", String(200), nullable=False),
    Column("correlation_id", String(200), nullable=False),
    Column("causation_id", String(200), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("aggregate_id", "version", name="kasal_events_aggregate_version"),
    sqlite_autoincrement=True,
)

commands_table = Table(
    "kasal_commands",
    metadata,
    Column("tenant_id", String(100), primary_key=True),
    Column("command_id", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("aggregate_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("position", BigInteger, nullable=False),
)

# The log mirror's progress (distributed deployment): the next Kafka offset to copy from
# each events topic partition, written in the same transaction as the copied events.
log_offsets_table = Table(
    "kasal_log_offsets",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)
MIRROR_CHANNEL = "kasal_log"  # PostgreSQL NOTIFY channel: the mirror committed a batch

EVENT_COLUMNS = [c.name for c in events_table.columns]


@dataclass(frozen=True)
class MirroredRecord:
    """One Kafka event record to copy into the mirror, and where it was read."""

    event: RecordedEvent
    topic: str
    partition: int
    offset: int
    command: CommandRecord | None = None  # on the command's last event


def to_row(event: RecordedEvent) -> dict[str, Any]:
    row = {name: getattr(event, name) for name in EVENT_COLUMNS if name != "position"}
    row["payload"] = canonical_json(dict(event.payload)).decode("utf-8")
    return row


def from_row(row: Any) -> RecordedEvent:
    data = dict(row._mapping)
    data["payload"] = json.loads(data["payload"])
    return RecordedEvent(**data)


class SqlEventStore:
    def __init__(self, url: str, *, echo: bool = False, schema: str | None = None) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        self.writer: AsyncEngine = make_engine(url, echo=echo, schema=schema, immediate=True)
        self.reader: AsyncEngine = make_engine(url, echo=echo) if self.sqlite else self.writer

    async def initialize(self) -> None:
        async with self.writer.begin() as conn:
            if not self.sqlite:  # processes starting together: one CREATE TABLE at a time
                await conn.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
            await conn.run_sync(metadata.create_all)

    async def close(self) -> None:
        await self.writer.dispose()
        if self.reader is not self.writer:
            await self.reader.dispose()

    async def append(
        self,
        events: Sequence[NewEvent],
        *,
        expected_version: int,
        command: CommandRecord | None = None,
    ) -> AppendResult:
        aggregate_id = check_batch(events, expected_version)
        try:
            async with self.writer.begin() as conn:
                if not self.sqlite:
                    await conn.execute(select(func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))
                # the command id first: a retry racing its first attempt is a duplicate,
                # not a conflict
                if command and await self._command_exists(conn, command):
                    raise DuplicateCommand(command.command_id)
                version, prev = await self._head_of(conn, aggregate_id)
                if version != expected_version:
                    raise ConcurrencyError(aggregate_id, expected_version, version)
                rows = []
                for event in events:
                    sealed = seal(event, prev)
                    rows.append(to_row(sealed))
                    prev = sealed.hash
                inserted = await conn.execute(  # one statement for the whole batch
                    insert(events_table).returning(
                        events_table.c.position, sort_by_parameter_order=True
                    ),
                    rows,
                )
                last_position = int(inserted.scalars().all()[-1])
                last_version = events[-1].version
                if command:
                    await conn.execute(
                        insert(commands_table),
                        {
                            "tenant_id": command.tenant_id,
                            "command_id": command.command_id,
                            "fingerprint": command.fingerprint,
                            "aggregate_id": aggregate_id,
                            "version": last_version,
                            "position": last_position,
                        },
                    )
        except IntegrityError as error:
            # Backstops for writers that bypass the lock (another Kasal version, say).
            message = str(error.orig)
            if "kasal_commands" in message or "command_id" in message:
                raise DuplicateCommand(command.command_id if command else "") from None
            current, _ = await self._head_of_fresh(aggregate_id)
            raise ConcurrencyError(aggregate_id, expected_version, current) from None
        return AppendResult(aggregate_id, last_version, last_position)

    async def _head_of(self, conn: AsyncConnection, aggregate_id: str) -> tuple[int, str]:
        row = (
            await conn.execute(
                select(events_table.c.version, events_table.c.hash)
                .where(events_table.c.aggregate_id == aggregate_id)
                .order_by(events_table.c.version.desc())
                .limit(1)
            )
        ).first()
        return (int(row.version), str(row.hash)) if row else (0, GENESIS_HASH)

    async def _head_of_fresh(self, aggregate_id: str) -> tuple[int, str]:
        async with self.reader.connect() as conn:
            return await self._head_of(conn, aggregate_id)

    async def _command_exists(self, conn: AsyncConnection, command: CommandRecord) -> bool:
        found = await conn.execute(
            select(commands_table.c.command_id).where(
                commands_table.c.tenant_id == command.tenant_id,
                commands_table.c.command_id == command.command_id,
            )
        )
        return found.first() is not None

    async def read_stream(self, aggregate_id: str) -> list[RecordedEvent]:
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(events_table)
                .where(events_table.c.aggregate_id == aggregate_id)
                .order_by(events_table.c.version)
            )
            return [from_row(row) for row in rows]

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(events_table)
                .where(events_table.c.position > after)
                .order_by(events_table.c.position)
                .limit(limit)
            )
            return [from_row(row) for row in rows]

    async def find_command(self, tenant_id: str, command_id: str) -> CommandRecord | None:
        async with self.reader.connect() as conn:
            row = (
                await conn.execute(
                    select(commands_table).where(
                        commands_table.c.tenant_id == tenant_id,
                        commands_table.c.command_id == command_id,
                    )
                )
            ).first()
        if row is None:
            return None
        return CommandRecord(**dict(row._mapping))

    async def head_position(self) -> int:
        async with self.reader.connect() as conn:
            value = (await conn.execute(select(func.max(events_table.c.position)))).scalar()
        return int(value or 0)

    async def integrity_problems(self) -> list[str]:
        """What the per-aggregate hash chains cannot see: events missing at a stream's end or
        whole streams gone. Every accepted command recorded (aggregate, version, position) in
        its own table; each of those events must still be in the log, at that position. On
        SQLite positions are also gapless (AUTOINCREMENT rolls back with its transaction)."""
        problems = []
        c, e = commands_table, events_table
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(c.c.command_id, c.c.aggregate_id, c.c.version, c.c.position,
                       e.c.position.label("found"))
                .select_from(c.outerjoin(e, (e.c.aggregate_id == c.c.aggregate_id)
                                         & (e.c.version == c.c.version)))
                .where((e.c.position.is_(None)) | (e.c.position != c.c.position))
            )
            for row in rows:
                if row.found is None:
                    problems.append(
                        f"{row.aggregate_id} v{row.version} (command {row.command_id}) is "
                        "missing from the log")
                else:
                    problems.append(
                        f"{row.aggregate_id} v{row.version} is at position {row.found}, "
                        f"recorded at {row.position}")
            if self.sqlite:
                count, top = (await conn.execute(
                    select(func.count(), func.max(e.c.position)))).one()
                if top is not None and count != top:
                    problems.append(f"{top - count} positions between 1 and {top} are missing")
        return problems

    # --- the log mirror (distributed deployment) ---------------------------------------------
    async def mirror(self, records: Sequence[MirroredRecord]) -> int:
        """Copy events read from Kafka, in partition order, with each partition's next offset.

        One transaction: the events (positions drawn under the append lock, so tailing
        readers never skip), their commands, the offsets, and a NOTIFY on PostgreSQL.
        Records below a partition's stored offset were copied before and are skipped, so a
        redelivered batch changes nothing. Each event must continue its aggregate's chain
        (version and prev_hash): anything else stops the mirror with ``TamperedEvent``.
        Returns how many events were copied.
        """
        if not records:
            return 0
        lt = log_offsets_table
        async with self.writer.begin() as conn:
            if not self.sqlite:
                await conn.execute(select(func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))
            keys = {(r.topic, r.partition) for r in records}
            stored = {
                (row.topic, row.partition): int(row.next_offset)
                for row in await conn.execute(
                    select(lt).where(tuple_(lt.c.topic, lt.c.partition).in_(list(keys)))
                )
            }
            fresh = [r for r in records if r.offset >= stored.get((r.topic, r.partition), 0)]
            if fresh:
                await self._check_links(conn, [r.event for r in fresh])
                inserted = await conn.execute(
                    insert(events_table).returning(
                        events_table.c.position, sort_by_parameter_order=True
                    ),
                    [to_row(r.event) for r in fresh],
                )
                positions = [int(p) for p in inserted.scalars().all()]
                commands = [
                    {"tenant_id": r.command.tenant_id, "command_id": r.command.command_id,
                     "fingerprint": r.command.fingerprint, "aggregate_id": r.event.aggregate_id,
                     "version": r.event.version, "position": position}
                    for r, position in zip(fresh, positions, strict=True) if r.command
                ]
                if commands:
                    # One command id on two aggregates (a client reusing an Idempotency-Key
                    # while the first use was not yet mirrored: the writers see one partition
                    # each): the log keeps both; the mirror records the first.
                    if self.sqlite:
                        ignore = insert(commands_table).prefix_with("OR IGNORE")
                    else:
                        ignore = pg_insert(commands_table).on_conflict_do_nothing()
                    await conn.execute(ignore, commands)
            next_offsets: dict[tuple[str, int], int] = defaultdict(int)
            for r in records:
                key = (r.topic, r.partition)
                next_offsets[key] = max(next_offsets[key], r.offset + 1)
            for (topic, partition), offset in next_offsets.items():
                if (topic, partition) in stored:
                    if offset > stored[(topic, partition)]:
                        await conn.execute(
                            update(lt).where(lt.c.topic == topic, lt.c.partition == partition)
                            .values(next_offset=offset)
                        )
                else:
                    await conn.execute(
                        insert(lt), {"topic": topic, "partition": partition, "next_offset": offset}
                    )
            if fresh and not self.sqlite:
                await conn.execute(
                    select(func.pg_notify(MIRROR_CHANNEL, str(positions[-1])))
                )
        return len(fresh)

    async def _check_links(self, conn: AsyncConnection, events: Sequence[RecordedEvent]) -> None:
        heads: dict[str, tuple[int, str]] = {}
        first_of: dict[str, RecordedEvent] = {}
        for event in events:
            first_of.setdefault(event.aggregate_id, event)
        wanted = [(a, e.version - 1) for a, e in first_of.items() if e.version > 1]
        if wanted:
            e = events_table
            rows = await conn.execute(
                select(e.c.aggregate_id, e.c.version, e.c.hash).where(
                    tuple_(e.c.aggregate_id, e.c.version).in_(wanted)
                )
            )
            heads = {row.aggregate_id: (int(row.version), str(row.hash)) for row in rows}
        for event in events:
            version, prev = heads.get(event.aggregate_id, (0, GENESIS_HASH))
            if event.version != version + 1 or event.prev_hash != prev:
                raise TamperedEvent(
                    f"{event.aggregate_type} {event.aggregate_id} v{event.version} does not "
                    f"continue the mirrored chain at v{version}: the log and the mirror disagree"
                )
            heads[event.aggregate_id] = (event.version, event.hash)

    async def log_offsets(self) -> dict[tuple[str, int], int]:
        """The mirror's next offset for every events topic partition it has copied from."""
        async with self.reader.connect() as conn:
            rows = await conn.execute(select(log_offsets_table))
            return {(row.topic, row.partition): int(row.next_offset) for row in rows}

    async def stream_version(self, aggregate_id: str) -> int:
        version, _ = await self._head_of_fresh(aggregate_id)
        return version

    async def positions_of(self, event_ids: Sequence[str]) -> dict[str, int]:
        async with self.reader.connect() as conn:
            rows = await conn.execute(
                select(events_table.c.event_id, events_table.c.position).where(
                    events_table.c.event_id.in_(list(event_ids))
                )
            )
            return {str(row.event_id): int(row.position) for row in rows}

    async def position_of(self, event_id: str) -> int | None:
        async with self.reader.connect() as conn:
            value = (
                await conn.execute(
                    select(events_table.c.position).where(events_table.c.event_id == event_id)
                )
            ).scalar()
        return None if value is None else int(value)

    async def execute_raw(self, sql: str, **params: Any) -> None:
        """Run raw SQL against the store (tests use it to tamper with history)."""
        async with self.writer.begin() as conn:
            await conn.execute(text(sql), params)
