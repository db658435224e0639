"""What the per-aggregate hash chains cannot see (``kasal audit verify``): events removed,
moved or renumbered in the global order, a log rolled back or truncated, commands whose
events are gone. Each check reads in pages, so a long log is checked in constant memory."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.eventstore.log_chain import last_link, recorded_head
from adapters.eventstore.sql_log import SqlEventLog
from adapters.eventstore.sql_tables import commands_table, events_table
from domain.envelope import GENESIS_HASH, log_link

PAGE = 5000
SHOWN = 20  # problems named one by one per check; the rest are counted


async def integrity_problems(log: SqlEventLog) -> list[str]:
    """Every check, in one snapshot of the log: appends that commit meanwhile are not seen
    half (PostgreSQL's default isolation would read the head record and the last row at two
    moments; SQLite's read transaction is one snapshot already)."""
    async with log.reader.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            return [*await command_problems(conn), *await chain_problems(conn),
                    *await head_problems(conn)]


async def command_problems(conn: AsyncConnection) -> list[str]:
    """Every accepted command recorded (aggregate, version, position) in its own table; each
    of those events must still be in the log, at that position."""
    c, e = commands_table, events_table
    rows = await conn.execute(
        select(c.c.command_id, c.c.aggregate_id, c.c.version, c.c.position,
               e.c.position.label("found"))
        .select_from(c.outerjoin(e, (e.c.aggregate_id == c.c.aggregate_id)
                                 & (e.c.version == c.c.version)))
        .where((e.c.position.is_(None)) | (e.c.position != c.c.position))
    )
    problems: list[str] = []
    more = 0
    for row in rows:
        if len(problems) == SHOWN:
            more += 1
        elif row.found is None:
            problems.append(f"{row.aggregate_id} v{row.version} (command {row.command_id}) is "
                            "missing from the log")
        else:
            problems.append(f"{row.aggregate_id} v{row.version} is at position {row.found}, "
                            f"recorded at {row.position}")
    if more:
        problems.append(f"... and {more} more commands' events are missing or moved")
    return problems


async def chain_problems(conn: AsyncConnection) -> list[str]:
    """Walk the log chain in position order: each row's link must follow the row before it.
    After a broken link the walk goes on from the stored one, so each break is named once
    (a renumbering breaks every renumbered row)."""
    e = events_table
    problems: list[str] = []
    broken, before, link = 0, 0, GENESIS_HASH
    while page := (await conn.execute(
        select(e.c.position, e.c.aggregate_id, e.c.version, e.c.hash, e.c.log_hash)
        .where(e.c.position > before).order_by(e.c.position).limit(PAGE)
    )).all():
        for row in page:
            expected = log_link(link, int(row.position), str(row.hash))
            broken += row.log_hash != expected
            if broken > SHOWN or row.log_hash == expected:
                pass
            elif row.log_hash is None:
                problems.append(f"position {row.position} ({row.aggregate_id} v{row.version}) "
                                "has no log link: it was written behind the store's back")
            elif row.log_hash != expected:
                after = f"after position {before}" if before else "at the log's start"
                problems.append(
                    f"position {row.position} ({row.aggregate_id} v{row.version}) breaks the "
                    f"log chain {after}: an event before it was removed, moved or "
                    "renumbered, or this one was changed")
            link, before = row.log_hash or expected, int(row.position)
    if broken > SHOWN:
        problems.append(f"... and {broken - SHOWN} more positions break the log chain")
    return problems


async def head_problems(conn: AsyncConnection) -> list[str]:
    """The log must end where its writers recorded its head."""
    head, last = await recorded_head(conn), await last_link(conn)
    if head is None:  # every log has one from its start
        return [f"the log's head record is missing (the log ends at position {last.position})"]
    if last.position == 0:
        return [f"the log is empty, but its head was recorded at position {head.position}: "
                "every event is gone (a truncation)"] if head.position else []
    if last.position < head.position:
        return [f"the log ends at position {last.position}, but its head was recorded at "
                f"position {head.position}: the events after {last.position} are gone (a "
                "rollback or a truncation)"]
    if last.position > head.position:
        written = (f"position {last.position} was" if last.position == head.position + 1
                   else f"positions {head.position + 1} to {last.position} were")
        return [f"{written} written after the recorded head (position {head.position}), "
                "behind the store's back"]
    if last.log_hash != head.log_hash:
        return [f"the event at position {last.position} is not the one the head record names: "
                "it was replaced"]
    return []
