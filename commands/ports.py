"""Ports the command side depends on. Adapters implement them; kasal/ wires them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from domain.envelope import NewEvent, RecordedEvent


@dataclass(frozen=True)
class CommandRecord:
    """What the store keeps of an accepted command, for idempotent retries."""

    tenant_id: str
    command_id: str
    fingerprint: str
    aggregate_id: str = ""
    version: int = 0
    position: int = 0


@dataclass(frozen=True)
class AppendResult:
    aggregate_id: str
    version: int
    position: int


class EventStore(Protocol):
    async def append(self, events: Sequence[NewEvent], *, expected_version: int,
                     command: CommandRecord | None = None) -> AppendResult:
        """Append events of ONE aggregate atomically, chained and placed in the global order.

        Raises ``ConcurrencyError`` when the aggregate is not at ``expected_version`` and
        ``DuplicateCommand`` when ``command`` was recorded before.
        """
        ...

    async def read_stream(self, aggregate_id: str) -> list[RecordedEvent]: ...

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        """Events with position > ``after`` in commit order, never skipping a committed one."""
        ...

    async def find_command(self, tenant_id: str, command_id: str) -> CommandRecord | None: ...

    async def head_position(self) -> int: ...

    async def close(self) -> None: ...
