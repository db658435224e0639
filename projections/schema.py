"""The SQL read models' schema: one ``MetaData`` that every read model's table joins, and the
projectors' tracking table. Everything here is rebuildable from the log at any time.

The read models' schema is fingerprinted (tables, columns, types, and ``PROJECTION_VERSION``
for what the appliers write) in ``projection_schema``. When the code's fingerprint differs
from the database's (a new version of Kasal, or a database from before the fingerprint),
only a process allowed to (``rebuild_changed``: the one embedded process, or ``kasal
projections rebuild``) drops the read models' tables, creates them anew and forgets the SQL
projector's position, which then replays the log; any other process refuses to start with
``ReadModelSchemaChanged``, which says what to do. A process that never projects must not
drop tables under a projector that is running.
"""

from __future__ import annotations

import hashlib
import json
import logging

from sqlalchemy import BigInteger, Column, MetaData, String, Table, delete, func, insert, select
from sqlalchemy import inspect as inspect_schema
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

log = logging.getLogger(__name__)

metadata = MetaData()
SQL_PROJECTION = "sql"  # the SQL projector's tracking name
# bump when an applier writes differently (the tables may be the same): the read models are
# rebuilt from the log
PROJECTION_VERSION = 2


class ReadModelSchemaChanged(RuntimeError):
    """The database's read models were built by another version of Kasal."""

tracking = Table(
    "projection_tracking",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

schema_versions = Table(
    "projection_schema",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
)

SCHEMA_LOCK_KEY = 0x6B6173616C02  # serialises CREATE TABLE of processes starting together


def read_model_tables() -> list[Table]:
    from projections.processor_health import KEPT_ON_REBUILD

    kept = {tracking.name, schema_versions.name, *KEPT_ON_REBUILD}
    return [t for t in metadata.sorted_tables if t.name not in kept]


def fingerprint(tables: list[Table]) -> str:
    shape = [[t.name, [[c.name, str(c.type), c.nullable, c.primary_key] for c in t.columns]]
             for t in sorted(tables, key=lambda t: t.name)]
    return hashlib.sha256(json.dumps([PROJECTION_VERSION, shape]).encode()).hexdigest()


def _create_missing_indexes(sync: Connection, tables: list[Table]) -> None:
    """An index added to a read model that already exists (no data changes: no rebuild)."""
    for table in tables:
        for index in table.indexes:
            index.create(sync, checkfirst=True)


def _existing(sync: Connection) -> set[str]:
    return set(inspect_schema(sync).get_table_names())


async def create_tables(conn: AsyncConnection, *, rebuild_changed: bool = False) -> bool:
    """``metadata.create_all`` that two processes may run at once (PostgreSQL's
    CREATE TABLE IF NOT EXISTS races on its catalog); True when it dropped read models whose
    schema changed (their projector replays the log)."""
    # every read model's table joins metadata when its module is imported; so do the
    # processors' health tables
    import projections.processor_health
    import projections.read_models  # noqa: F401

    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
    tables = read_model_tables()
    wanted = fingerprint(tables)
    existing = await conn.run_sync(_existing)
    stored = None
    if schema_versions.name in existing:
        stored = (await conn.execute(select(schema_versions.c.fingerprint).where(
            schema_versions.c.name == SQL_PROJECTION))).scalar()
    present = [t for t in tables if t.name in existing]
    rebuilt = bool(present) and stored != wanted
    if rebuilt and not rebuild_changed:
        raise ReadModelSchemaChanged(
            "the read models were built by another version of Kasal: stop every Kasal "
            "process on this database, run 'kasal projections rebuild', then start them")
    if rebuilt:
        log.warning("the read models' schema changed (%s -> %s): dropping them; the SQL "
                    "projector rebuilds them from the log", (stored or "unknown")[:12],
                    wanted[:12])
        await conn.run_sync(lambda sync: metadata.drop_all(sync, tables=present))
        if tracking.name in existing:
            await conn.execute(delete(tracking).where(tracking.c.name == SQL_PROJECTION))
    await conn.run_sync(metadata.create_all)
    await conn.run_sync(_create_missing_indexes, tables)
    if stored != wanted:
        await conn.execute(delete(schema_versions).where(schema_versions.c.name == SQL_PROJECTION))
        await conn.execute(insert(schema_versions), {"name": SQL_PROJECTION, "fingerprint": wanted})
    return rebuilt
