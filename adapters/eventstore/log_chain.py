"""The log chain and the log's head record: what the aggregates' hash chains cannot see.

An aggregate's chain proves its own events intact, but not where they stand in the global
order, nor that the log still ends where it ended. So every row of ``kasal_events`` also
carries ``log_hash``, a link over the previous row's link, its position and its event's
hash (``domain.envelope.log_link``), and ``kasal_log_head`` keeps the last position and
link. Each writer (the SQL store's append, the Kafka log mirror's copy) holds the append
lock, draws positions after the head record, links its rows and moves the head record in
one transaction. ``kasal audit verify`` walks the chain in position order and compares its
end with the head record (``adapters/eventstore/integrity.py``): a removed, moved,
renumbered or edited event breaks a link; a rollback or a truncation leaves the head record
ahead of the log. Someone who rewrites the chain and the head record too is caught by the
read side's copy of the trail, and in the end only by a signed checkpoint kept elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, insert, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.eventstore.sql_tables import events_table, log_head_table, take_append_lock
from commands.errors import StoreUnavailable
from domain.envelope import GENESIS_HASH, log_link

HEAD_ID = 1
LINK_BATCH = 2000


class LogTampered(StoreUnavailable):
    """The log was changed behind the store's back so that an append cannot continue it (the
    head record is gone, or a row sits where the next position goes): refused, not hidden."""


def position_taken(head: int) -> LogTampered:
    return LogTampered(
        f"a position after {head} is taken by a row written past the log's head record, "
        "behind the store's back; nothing is appended until an operator has looked ('kasal "
        "audit verify')")


@dataclass(frozen=True)
class LogHead:
    """The last position and its link (``0`` and the genesis hash: an empty log)."""

    position: int = 0
    log_hash: str = GENESIS_HASH


async def recorded_head(conn: AsyncConnection) -> LogHead | None:
    """The head record, or ``None`` when there is none (a new log, or a removed record)."""
    row = (await conn.execute(
        select(log_head_table.c.position, log_head_table.c.log_hash)
        .where(log_head_table.c.id == HEAD_ID)
    )).first()
    return None if row is None else LogHead(int(row.position), str(row.log_hash))


async def last_link(conn: AsyncConnection) -> LogHead:
    """The log's last row, as the chain has it."""
    e = events_table
    row = (await conn.execute(
        select(e.c.position, e.c.log_hash).order_by(e.c.position.desc()).limit(1)
    )).first()
    return LogHead() if row is None else LogHead(int(row.position), str(row.log_hash))


class LinkedAppender:
    """Inserts event rows after the log's head, linked, and moves the head record; one per
    writer. It remembers the head it last wrote, so an append costs one statement more than
    the insert: the head record is moved only where it still holds that head (the update's
    condition), which is also what proves the memory right. Another process's append, or a
    transaction that did not commit, makes the update miss: it reads the record then."""

    def __init__(self) -> None:
        self.head: LogHead | None = None

    async def append(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert ``rows`` (``sql_tables.to_row``); returns their positions. The caller holds
        the append lock.

        Positions continue the head record, not the table: after a rollback behind the
        store's back the next append leaves the gap in place, so the evidence is not
        written over. A missing record is ``LogTampered``, for the same reason."""
        remembered = self.head
        if remembered is not None:
            linked, head = _linked(remembered, rows)
            if await _move_head(conn, remembered, head):
                return await self._insert(conn, linked, head)
        recorded = await recorded_head(conn)
        if recorded is None:  # every log has one from its start (link_older_log)
            raise LogTampered(
                "the log's head record (kasal_log_head) is gone: the log was changed behind "
                "the store's back, and nothing is appended until an operator has looked "
                "('kasal audit verify', then 'kasal audit restore-head')")
        self.head = recorded  # what the record held: right again if this append rolls back
        linked, head = _linked(recorded, rows)
        await _move_head(conn, recorded, head)
        return await self._insert(conn, linked, head)

    async def _insert(self, conn: AsyncConnection, linked: list[dict[str, Any]],
                      head: LogHead) -> list[int]:
        await conn.execute(insert(events_table), linked)
        self.head = head  # checked by the next append's update: right even if this rolls back
        return [row["position"] for row in linked]


def _linked(head: LogHead, rows: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                                   LogHead]:
    position, link = head.position, head.log_hash
    linked = []
    for row in rows:
        position += 1
        link = log_link(link, position, row["hash"])
        linked.append({**row, "position": position, "log_hash": link})
    return linked, LogHead(position, link)


def _values(head: LogHead) -> dict[str, Any]:
    return {"position": head.position, "log_hash": head.log_hash}


async def _move_head(conn: AsyncConnection, was: LogHead, head: LogHead) -> bool:
    """Move the head record from ``was`` to ``head``; False if it does not hold ``was``."""
    h = log_head_table
    moved = await conn.execute(
        update(h).where(h.c.id == HEAD_ID, h.c.position == was.position,
                        h.c.log_hash == was.log_hash).values(**_values(head)))
    return bool(moved.rowcount == 1)


async def link_older_log(conn: AsyncConnection) -> int:
    """A log written before the log chain gets its column and its links, in position order,
    and its head record (at start, once). Returns how many rows were linked.

    Only a log none of whose rows is linked (a new log gets its record at position 0): one
    that has links but no head record lost the record (``kasal audit verify`` says so), and
    relinking it would hide what happened. Linking holds the log's locks: an older log of
    many rows makes this first start (only) an outage while it lasts."""
    columns = await conn.run_sync(
        lambda sync: {c["name"] for c in inspect(sync).get_columns(events_table.name)})
    if "log_hash" not in columns:
        await conn.execute(text(f"ALTER TABLE {events_table.name} ADD COLUMN log_hash "
                                "VARCHAR(64)"))
    if await recorded_head(conn) is not None:
        return 0
    await take_append_lock(conn)
    e = events_table
    if await recorded_head(conn) is not None or (await conn.execute(  # linked meanwhile
        select(e.c.position).where(e.c.log_hash.is_not(None)).limit(1)
    )).first() is not None:
        return 0
    head, linked = LogHead(), 0
    while batch := (await conn.execute(
        select(e.c.position, e.c.hash).where(e.c.position > head.position)
        .order_by(e.c.position).limit(LINK_BATCH)
    )).all():
        links: list[dict[str, Any]] = []
        link, at = head.log_hash, head.position
        for row in batch:
            at = int(row.position)
            link = log_link(link, at, str(row.hash))
            links.append({"at": at, "link": link})
        await conn.execute(
            update(e).where(e.c.position == bindparam("at")).values(log_hash=bindparam("link")),
            links,
        )
        head, linked = LogHead(at, link), linked + len(links)
    await conn.execute(insert(log_head_table), {"id": HEAD_ID, **_values(head)})
    return linked


async def keep_sequence_in_step(conn: AsyncConnection) -> None:
    """PostgreSQL: positions come from the head record, not the column's sequence; keep the
    sequence at the head, so that a Kasal from before the log chain (a downgrade) appends
    after it instead of colliding with positions the sequence would hand out again."""
    if conn.dialect.name != "postgresql":
        return
    head = await recorded_head(conn) or await last_link(conn)
    if head.position:
        await conn.execute(select(func.setval(
            func.pg_get_serial_sequence(events_table.name, "position"), head.position)))


async def restore_head(conn: AsyncConnection) -> LogHead:
    """Record the head where the log now ends (an operator's repair after ``LogTampered``
    for a missing record: ``kasal audit restore-head``). Refused while a record exists."""
    await take_append_lock(conn)
    if (recorded := await recorded_head(conn)) is not None:
        raise ValueError(f"the log's head record is there (position {recorded.position}): "
                         "nothing to restore")
    head = await last_link(conn)
    await conn.execute(insert(log_head_table), {"id": HEAD_ID, **_values(head)})
    return head
