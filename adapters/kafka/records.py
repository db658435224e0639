"""What travels over Kafka in the distributed deployment: events, append requests, replies.

Records are compact canonical JSON. An event record's value is the envelope exactly as
hashed plus its ``hash``; the record of a command's LAST event carries the command
(tenant, id, fingerprint) in the ``kasal-command`` header, so the log alone tells which
command produced which events (the log mirror and the writer's recovery read it).
docs/2026-11-27-kafka-event-store.md explains the design.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from commands.ports import CommandRecord
from domain.envelope import NewEvent, RecordedEvent, canonical_json, hashed_fields

COMMAND_HEADER = "kasal-command"


# --- events ----------------------------------------------------------------------------------
def encode_event(event: RecordedEvent) -> bytes:
    body = hashed_fields(event, event.prev_hash)
    body["hash"] = event.hash
    return canonical_json(body)


def decode_event(value: bytes, position: int = 0) -> RecordedEvent:
    body = json.loads(value)
    return RecordedEvent(**body, position=position)


def command_header(command: CommandRecord) -> tuple[str, bytes]:
    return COMMAND_HEADER, canonical_json(
        {"tenant_id": command.tenant_id, "command_id": command.command_id,
         "fingerprint": command.fingerprint}
    )


def command_from_headers(headers: Sequence[tuple[str, bytes]] | None) -> CommandRecord | None:
    for name, value in headers or ():
        if name == COMMAND_HEADER:
            body = json.loads(value)
            return CommandRecord(body["tenant_id"], body["command_id"], body["fingerprint"])
    return None


# --- append requests and replies ------------------------------------------------------------
@dataclass(frozen=True)
class AppendRequest:
    request_id: str
    client_id: str
    expected_version: int
    events: tuple[NewEvent, ...]
    command: CommandRecord | None = None

    @property
    def aggregate_id(self) -> str:
        return self.events[0].aggregate_id

    def encode(self) -> bytes:
        return canonical_json({
            "request_id": self.request_id,
            "client_id": self.client_id,
            "expected_version": self.expected_version,
            "events": [_new_event_fields(e) for e in self.events],
            "command": None if self.command is None else {
                "tenant_id": self.command.tenant_id, "command_id": self.command.command_id,
                "fingerprint": self.command.fingerprint},
        })

    @classmethod
    def decode(cls, value: bytes) -> AppendRequest:
        body = json.loads(value)
        command = body["command"]
        return cls(
            request_id=str(body["request_id"]),
            client_id=str(body["client_id"]),
            expected_version=int(body["expected_version"]),
            events=tuple(NewEvent(**e) for e in body["events"]),
            command=None if command is None else CommandRecord(
                command["tenant_id"], command["command_id"], command["fingerprint"]),
        )


def _new_event_fields(event: NewEvent) -> dict[str, Any]:
    return {name: getattr(event, name) if name != "payload" else dict(event.payload)
            for name in NewEvent.__dataclass_fields__}


# outcomes of an append request
APPENDED = "appended"
CONFLICT = "conflict"
DUPLICATE = "duplicate"
INVALID = "invalid"


@dataclass(frozen=True)
class AppendReply:
    request_id: str
    outcome: str
    aggregate_id: str
    version: int = 0  # appended: the last event's version; conflict: the current version
    last_event_id: str = ""  # appended/duplicate: the command's last event, to await mirrored
    message: str = ""

    def encode(self) -> bytes:
        return canonical_json(self.__dict__)

    @classmethod
    def decode(cls, value: bytes) -> AppendReply:
        body: Mapping[str, Any] = json.loads(value)
        return cls(**body)
