"""An in-memory event store: the reference behaviour, for unit tests of the layers above."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import replace

from adapters.eventstore.append_rule import StreamHead, check_batch, seal_append
from commands.ports import AppendResult, CommandRecord
from domain.envelope import NewEvent, RecordedEvent, canonical_json


class InMemoryEventStore:
    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []
        self.streams: dict[str, list[RecordedEvent]] = {}
        self.commands: dict[tuple[str, str], CommandRecord] = {}
        self.lock = asyncio.Lock()

    async def append(self, events: Sequence[NewEvent], *, expected_version: int,
                     command: CommandRecord | None = None) -> AppendResult:
        aggregate_id = check_batch(events, expected_version)
        # a private copy: callers mutating their dicts must not edit history
        events = [replace(e, payload=json.loads(canonical_json(dict(e.payload)))) for e in events]
        async with self.lock:
            stream = self.streams.get(aggregate_id, [])
            head = StreamHead(len(stream), stream[-1].hash) if stream else StreamHead()
            seen = command is not None and (command.tenant_id, command.command_id) in self.commands
            sealed = [
                replace(e, position=len(self.events) + index)
                for index, e in enumerate(
                    seal_append(events, expected_version, head, command=command,
                                command_seen=seen),
                    start=1,
                )
            ]
            self.events.extend(sealed)
            self.streams[aggregate_id] = stream + sealed
            last = sealed[-1]
            if command:
                self.commands[(command.tenant_id, command.command_id)] = replace(
                    command, aggregate_id=aggregate_id, version=last.version, position=last.position
                )
            return AppendResult(aggregate_id, last.version, last.position)

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
