"""The SQL event log's tables (SQLite embedded, PostgreSQL; the Kafka log mirror too), and
how an event becomes a row and back."""

from __future__ import annotations

import json
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
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.envelope import ENVELOPE_FIELDS, RecordedEvent, canonical_json

APPEND_LOCK_KEY = 0x6B6173616C  # "kasal": the advisory lock every PostgreSQL append takes
SCHEMA_LOCK_KEY = 0x6B6173616C02  # the same key as the projections' table creation

metadata = MetaData()
Position = BigInteger().with_variant(Integer, "sqlite")

events_table = Table(
    "kasal_events",
    metadata,
    Column("position", Position, primary_key=True, autoincrement=True),
    *(Column(name, String(size) if size else Integer, nullable=False, unique=name == "event_id")
      for name, size in ENVELOPE_FIELDS.items()),
    Column("payload", Text, nullable=False),
    # the log chain's link (adapters/eventstore/log_chain.py); NULL only in a log an older
    # Kasal wrote, until it is linked at start
    Column("log_hash", String(64)),
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

# The log's head as its writers left it: one row, moved in every append's transaction.
log_head_table = Table(
    "kasal_log_head",
    metadata,
    Column("id", Integer, primary_key=True),  # always 1
    Column("position", BigInteger, nullable=False),
    Column("log_hash", String(64), nullable=False),
)

STORAGE_COLUMNS = ("position", "log_hash")  # the log's, not the event's
EVENT_COLUMNS = [c.name for c in events_table.columns if c.name not in STORAGE_COLUMNS]


def to_row(event: RecordedEvent) -> dict[str, Any]:
    row = {name: getattr(event, name) for name in EVENT_COLUMNS}
    row["payload"] = canonical_json(dict(event.payload)).decode("utf-8")
    return row


def from_row(row: Any) -> RecordedEvent:
    data = dict(row._mapping)
    data.pop("log_hash", None)
    data["payload"] = json.loads(data["payload"])
    return RecordedEvent(**data)


async def take_append_lock(conn: AsyncConnection) -> None:
    """PostgreSQL: serialise appends until commit, so positions commit in order (tailing
    readers never skip). SQLite's ``BEGIN IMMEDIATE`` already does."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(APPEND_LOCK_KEY)))


async def create_log_tables(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":  # processes starting together: one at a time
        await conn.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
    await conn.run_sync(metadata.create_all)
