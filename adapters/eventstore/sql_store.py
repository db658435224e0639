"""The SQL event store: SQLite (embedded default) and PostgreSQL, one implementation.

Global order without skips: a tailing reader must never see position N+1 before N
has committed. SQLite serialises writers (``BEGIN IMMEDIATE``), so positions are
assigned in commit order. On PostgreSQL a sequence alone does not give that (a later
transaction can commit first), so each append takes one transaction-scoped advisory
lock before it draws positions and holds it until commit: appends are serialised,
and commit order equals position order. docs/2026-11-27-event-store.md has the why.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from adapters.eventstore.append_rule import check_batch, seal_append
from adapters.eventstore.log_chain import position_taken
from adapters.eventstore.sql_log import (
    SqlEventLog,
    command_record,
    stream_head,
    unavailable_when_down,
)
from adapters.eventstore.sql_tables import commands_table, take_append_lock, to_row
from commands.errors import ConcurrencyError, DuplicateCommand
from commands.ports import AppendResult, CommandRecord
from domain.envelope import NewEvent


class SqlEventStore(SqlEventLog):
    @unavailable_when_down
    async def append(self, events: Sequence[NewEvent], *, expected_version: int,
                     command: CommandRecord | None = None) -> AppendResult:
        aggregate_id = check_batch(events, expected_version)
        try:
            async with self.writer.begin() as conn:
                await take_append_lock(conn)
                seen = command is not None and (
                    await command_record(conn, command.tenant_id, command.command_id)
                ) is not None
                head = await stream_head(conn, aggregate_id)
                sealed = seal_append(events, expected_version, head, command=command,
                                     command_seen=seen)
                last_position = (await self.appender.append(conn, [to_row(e) for e in sealed]))[-1]
                last_version = sealed[-1].version
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
            if "kasal_events_pkey" in message or "kasal_events.position" in message:
                known = self.appender.head
                raise position_taken(known.position if known else 0) from None
            current = await self.stream_head(aggregate_id)
            raise ConcurrencyError(aggregate_id, expected_version, current.version) from None
        return AppendResult(aggregate_id, last_version, last_position)
