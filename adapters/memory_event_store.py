"""An in-memory event store: the reference behaviour, for unit tests of the layers above."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace

from commands.ports import AppendResult, CommandRecord, ConcurrencyError, DuplicateCommand
from domain.envelope import GENESIS_HASH, NewEvent, RecordedEvent, canonical_json, seal


def check_batch(events: Sequence[NewEvent], expected_version: int) -> str:
    """Every store's precondition: one aggregate, versions continuing expected_version."""
    if not events:
        raise ValueError("append needs at least one event")
    aggregate_id = events[0].aggregate_id
    for offset, event in enumerate(events, start=1):
        if event.aggregate_id != aggregate_id:
            raise ValueError("one append holds the events of one aggregate")
        if event.version != expected_version + offset:
            raise ValueError(f"event versions must continue from {expected_version} without gaps")
    return aggregate_id


class InMemoryEventStore:
    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []
        self.streams: dict[str, list[RecordedEvent]] = {}
        self.commands: dict[tuple[str, str], CommandRecord] = {}
        self.lock = asyncio.Lock()

    async def append(
        self,
        events: Sequence[NewEvent],
        *,
        expected_version: int,
        command: CommandRecord | None = None,
    ) -> AppendResult:
        aggregate_id = check_batch(events, expected_version)
        async with self.lock:
            if command and (command.tenant_id, command.command_id) in self.commands:
                raise DuplicateCommand(command.command_id)
            stream = self.streams.get(aggregate_id, [])
            if len(stream) != expected_version:
                raise ConcurrencyError(aggregate_id, expected_version, len(stream))
            prev = stream[-1].hash if stream else GENESIS_HASH
            sealed: list[RecordedEvent] = []
            for event in events:
                # a private copy: callers mutating their dicts must not edit history
                event = replace(event, payload=json.loads(canonical_json(dict(event.payload))))
                recorded = seal(event, prev, position=len(self.events) + len(sealed) + 1)
                sealed.append(recorded)
                prev = recorded.hash
            self.events.extend(sealed)
            self.streams[aggregate_id] = stream + sealed
            last = sealed[-1]
            result = AppendResult(aggregate_id, last.version, last.position)
            if command:
                self.commands[(command.tenant_id, command.command_id)] = replace(
                    command, aggregate_id=aggregate_id, version=last.version, position=last.position
                )
            return result

    async def read_stream(self, aggregate_id: str) -> list[RecordedEvent]:
        return [_copy(e) for e in self.streams.get(aggregate_id, [])]

    async def read_all(self, after: int = 0, limit: int = 1000) -> list[RecordedEvent]:
        return [_copy(e) for e in self.events[after : after + limit]]

    async def find_command(self, tenant_id: str, command_id: str) -> CommandRecord | None:
        return self.commands.get((tenant_id, command_id))

    async def head_position(self) -> int:
        return len(self.events)

    async def close(self) -> None:
        return None


def _copy(event: RecordedEvent) -> RecordedEvent:
    return replace(event, payload=json.loads(canonical_json(dict(event.payload))))
