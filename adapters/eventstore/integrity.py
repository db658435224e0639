"""What the per-aggregate hash chains cannot see: events missing at a stream's end, or whole
streams gone (``kasal audit verify``)."""

from __future__ import annotations

from sqlalchemy import func, select

from adapters.eventstore.sql_log import SqlEventLog
from adapters.eventstore.sql_tables import commands_table, events_table


async def integrity_problems(log: SqlEventLog) -> list[str]:
    """Every accepted command recorded (aggregate, version, position) in its own table; each
    of those events must still be in the log, at that position. On SQLite positions are also
    gapless (AUTOINCREMENT rolls back with its transaction)."""
    problems = []
    c, e = commands_table, events_table
    async with log.reader.connect() as conn:
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
        if log.sqlite:
            count, top = (await conn.execute(select(func.count(), func.max(e.c.position)))).one()
            if top is not None and count != top:
                problems.append(f"{top - count} positions between 1 and {top} are missing")
    return problems
