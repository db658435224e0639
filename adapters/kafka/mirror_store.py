"""The log mirror's database side: copies events read from Kafka into the SQL event log
(``kasal_events``, ``kasal_commands``), with each partition's next offset in the same
transaction, and checks that every copied event continues its aggregate's chain."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    String,
    Table,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.eventstore.append_rule import StreamHead
from adapters.eventstore.sql_log import SqlEventLog
from adapters.eventstore.sql_tables import (
    commands_table,
    events_table,
    metadata,
    take_append_lock,
    to_row,
)
from commands.ports import CommandRecord
from domain.envelope import RecordedEvent
from domain.errors import TamperedEvent

# The next Kafka offset to copy from each events topic partition.
log_offsets_table = Table(
    "kasal_log_offsets",
    metadata,
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)
MIRROR_CHANNEL = "kasal_log"  # PostgreSQL NOTIFY channel: the mirror committed a batch


@dataclass(frozen=True)
class MirroredRecord:
    """One Kafka event record to copy into the mirror, and where it was read."""

    event: RecordedEvent
    topic: str
    partition: int
    offset: int
    command: CommandRecord | None = None  # on the command's last event


class MirrorStore(SqlEventLog):
    async def copy(self, records: Sequence[MirroredRecord]) -> int:
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
            await take_append_lock(conn)
            keys = {(r.topic, r.partition) for r in records}
            stored = {
                (row.topic, row.partition): int(row.next_offset)
                for row in await conn.execute(
                    select(lt).where(tuple_(lt.c.topic, lt.c.partition).in_(list(keys)))
                )
            }
            fresh = [r for r in records if r.offset >= stored.get((r.topic, r.partition), 0)]
            if fresh:
                last_position = await self._insert(conn, fresh)
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
                await conn.execute(select(func.pg_notify(MIRROR_CHANNEL, str(last_position))))
        return len(fresh)

    async def _insert(self, conn: AsyncConnection, fresh: Sequence[MirroredRecord]) -> int:
        await check_links(conn, [r.event for r in fresh])
        positions = await self.appender.append(conn, [to_row(r.event) for r in fresh])
        commands = [
            {"tenant_id": r.command.tenant_id, "command_id": r.command.command_id,
             "fingerprint": r.command.fingerprint, "aggregate_id": r.event.aggregate_id,
             "version": r.event.version, "position": position}
            for r, position in zip(fresh, positions, strict=True) if r.command
        ]
        if commands:
            # One command id on two aggregates (a client reusing an Idempotency-Key while
            # the first use was not yet mirrored: the writers see one partition each): the
            # log keeps both; the mirror records the first.
            if self.sqlite:
                ignore = insert(commands_table).prefix_with("OR IGNORE")
            else:
                ignore = pg_insert(commands_table).on_conflict_do_nothing()
            await conn.execute(ignore, commands)
        return positions[-1]

    async def log_offsets(self) -> dict[tuple[str, int], int]:
        """The mirror's next offset for every events topic partition it has copied from."""
        async with self.reader.connect() as conn:
            rows = await conn.execute(select(log_offsets_table))
            return {(row.topic, row.partition): int(row.next_offset) for row in rows}


async def check_links(conn: AsyncConnection, events: Sequence[RecordedEvent]) -> None:
    """Each event continues the chain the mirror holds (or the batch's earlier events)."""
    first_of: dict[str, RecordedEvent] = {}
    for event in events:
        first_of.setdefault(event.aggregate_id, event)
    wanted = [(a, e.version - 1) for a, e in first_of.items() if e.version > 1]
    heads: dict[str, StreamHead] = {}
    if wanted:
        e = events_table
        rows = await conn.execute(
            select(e.c.aggregate_id, e.c.version, e.c.hash).where(
                tuple_(e.c.aggregate_id, e.c.version).in_(wanted)
            )
        )
        heads = {row.aggregate_id: StreamHead(int(row.version), str(row.hash)) for row in rows}
    for event in events:
        head = heads.get(event.aggregate_id, StreamHead())
        if event.version != head.version + 1 or event.prev_hash != head.hash:
            raise TamperedEvent(
                f"{event.aggregate_type} {event.aggregate_id} v{event.version} does not "
                f"continue the mirrored chain at v{head.version}: the log and the mirror disagree"
            )
        heads[event.aggregate_id] = StreamHead(event.version, event.hash)
