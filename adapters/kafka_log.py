"""What travels over Kafka in the distributed deployment, and where it goes.

Topics (``kasal kafka init`` provisions them; one partition count for all that are keyed
by aggregate id, so an aggregate's commands, events and writer state share a partition
number): ``<prefix>.commands`` carries append requests to the single writer of each
partition, ``<prefix>.events.<kind>`` the sealed events (the system of record),
``<prefix>.replies`` the writer's answers, keyed by the asking client's id.

Also here: the two consumer-group helpers the writer and the mirror share, and
``read_records`` (a partition from offset 0 to its end: the writer's takeover, and tests).

Records are compact canonical JSON. An event record's value is the envelope exactly as
hashed plus its ``hash``; the record of a command's LAST event carries the command
(tenant, id, fingerprint) in the ``kasal-command`` header, so the log alone tells which
command produced which events (the log mirror and the writer's recovery read it).
docs/2026-11-27-kafka-event-store.md explains the design.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.partitioner import murmur2

from commands.ports import CommandRecord
from domain.envelope import NewEvent, RecordedEvent, canonical_json, hashed_fields

# one events topic per aggregate type (API keys are aggregates too: who may act is audited)
EVENT_KINDS = ("agent", "crew", "execution", "api_key")
COMMAND_HEADER = "kasal-command"


@dataclass(frozen=True)
class KafkaTopics:
    prefix: str = "kasal"

    @property
    def commands(self) -> str:
        return f"{self.prefix}.commands"

    @property
    def replies(self) -> str:
        return f"{self.prefix}.replies"

    @property
    def public_executions(self) -> str:
        return f"{self.prefix}.public.executions.v1"

    def events(self, aggregate_type: str) -> str:
        return f"{self.prefix}.events.{aggregate_type}"

    @property
    def event_topics(self) -> tuple[str, ...]:
        return tuple(self.events(kind) for kind in EVENT_KINDS)


async def read_records(
    bootstrap_servers: str, partitions: Sequence[TopicPartition]
) -> AsyncIterator[tuple[TopicPartition, ConsumerRecord[bytes, bytes]]]:
    """Every record of ``partitions`` from offset 0 to their end when called, in order per
    partition (a seek per partition: no offset-reset race; no consumer group)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign(list(partitions))
        ends = await consumer.end_offsets(list(partitions))
        for tp in partitions:
            if not ends[tp]:
                continue
            consumer.seek(tp, 0)
            while await consumer.position(tp) < ends[tp]:
                batch = await consumer.getmany(tp, timeout_ms=1000)
                for record in batch.get(tp, []):
                    if record.offset < ends[tp]:
                        yield tp, record
    finally:
        await consumer.stop()


async def join_group(
    bootstrap_servers: str, group: str, topics: Sequence[str], listener: Any, *,
    session_timeout_s: float, **options: Any,
) -> AIOKafkaConsumer:
    """A started member of consumer group ``group`` (manual commits, from the earliest
    offset when the group has none), subscribed to ``topics`` with a rebalance listener."""
    session_ms = int(session_timeout_s * 1000)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=group, client_id=group,
        enable_auto_commit=False, auto_offset_reset="earliest",
        session_timeout_ms=session_ms, heartbeat_interval_ms=max(session_ms // 5, 500),
        **options,
    )
    await consumer.start()
    consumer.subscribe(list(topics), listener=listener)
    return consumer


async def leave_group(task: asyncio.Task[None] | None, consumer: AIOKafkaConsumer | None) -> None:
    """Stop a member's loop, then the consumer (which leaves the group)."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if consumer is not None:
        await consumer.stop()


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as in the Java client) picks."""
    return int(murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


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
