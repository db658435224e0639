"""The SQL read models' schema: one ``MetaData`` that every read model's table joins, and the
projectors' tracking table. Everything here is rebuildable from the log at any time."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, String, Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

metadata = MetaData()

tracking = Table(
    "projection_tracking",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

SCHEMA_LOCK_KEY = 0x6B6173616C02  # serialises CREATE TABLE of processes starting together


async def create_tables(conn: AsyncConnection) -> None:
    """``metadata.create_all`` that two processes may run at once (PostgreSQL's
    CREATE TABLE IF NOT EXISTS races on its catalog)."""
    # every read model's table joins metadata when its module is imported; so do the
    # processors' health tables
    import projections.processor_health
    import projections.read_models  # noqa: F401

    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(SCHEMA_LOCK_KEY)))
    await conn.run_sync(metadata.create_all)
