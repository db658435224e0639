"""The single writer of each partition: a Faust agent that turns append requests into events.

Kafka has no conditional append, so correctness comes from ownership: the consumer group
gives each ``<prefix>.commands`` partition to exactly one worker, and only that worker
produces to the same partition number of the events topics. For every aggregate it keeps,
in a Faust table backed by a changelog topic, the version, the last hash, its most recent
event ids and the commands it accepted. A request is checked against that state exactly
as the embedded store checks an append (shape, duplicate command, expected version),
sealed onto the hash chain, produced with an idempotent ``acks=all`` producer, and only
then recorded in the table and answered.

At-least-once throughout: a request redelivered after a crash is recognised by its first
event id (or its command id) and answered with the first outcome. Events that reached
the log but not the table (a crash between the two) are folded back in when the
partition is next taken over: the writer reads the events partitions from the table's
checkpoint to their end before it answers anything on that partition.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from adapters.kafka_log import (
    APPENDED,
    CONFLICT,
    DUPLICATE,
    INVALID,
    AppendReply,
    AppendRequest,
    KafkaTopics,
    command_from_headers,
    command_header,
    decode_event,
    encode_event,
    partition_for,
)
from adapters.memory_event_store import check_batch
from commands.ports import CommandRecord
from domain.envelope import GENESIS_HASH, RecordedEvent, seal

log = logging.getLogger(__name__)

RECENT_EVENTS = 64  # event ids kept per aggregate: a redelivered request is found by them
RECENT_COMMANDS = 256  # command ids kept per aggregate (the mirror keeps every one)


def command_key(command: CommandRecord) -> str:
    return f"{command.tenant_id}\x00{command.command_id}"


def checkpoint_key(partition: int) -> str:
    return f"~checkpoint/{partition}"


def fold(state: dict[str, Any] | None, event: RecordedEvent,
         command: CommandRecord | None) -> dict[str, Any]:
    """The writer's state of one aggregate after ``event`` (pure: tests and recovery use it)."""
    state = dict(state or {"v": 0, "h": GENESIS_HASH, "e": [], "c": {}})
    state["v"], state["h"], state["t"] = event.version, event.hash, event.aggregate_type
    state["e"] = [*state["e"], [event.event_id, event.version]][-RECENT_EVENTS:]
    if command is not None:
        commands = dict(state["c"])
        commands[command_key(command)] = [command.fingerprint, event.version, event.event_id]
        if len(commands) > RECENT_COMMANDS:
            for stale in list(commands)[: len(commands) - RECENT_COMMANDS]:
                del commands[stale]
        state["c"] = commands
    return state


class LogWriter:
    """Installs the writer agent and its table on ``app``; owns the events producer."""

    def __init__(self, app: faust.App, topics: KafkaTopics, bootstrap_servers: str,
                 partitions: int) -> None:
        self.app = app
        self.topics = topics
        self.bootstrap_servers = bootstrap_servers
        self.partitions = partitions
        self.table = app.Table(
            f"{topics.prefix}-writer", partitions=partitions,
            schema=faust.Schema(key_serializer="json", value_serializer="json"),
        )
        self.producer: AIOKafkaProducer | None = None
        self.reconciled: set[int] = set()
        self.commands_topic = app.topic(
            topics.commands, key_serializer="raw", value_serializer="raw",
            partitions=partitions,
        )
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]
        app.agent(self.commands_topic, name=f"{topics.prefix}-writer")(self._agent)

    async def start(self) -> None:
        self.producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers, acks="all", enable_idempotence=True,
            linger_ms=0, client_id=f"{self.topics.prefix}-writer",
        )
        await self.producer.start()

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
            self.producer = None

    async def _on_revoked(self, _app: Any, revoked: set[Any], **_: Any) -> None:
        for tp in revoked:
            if tp.topic == self.topics.commands:
                self.reconciled.discard(tp.partition)

    async def _agent(self, stream: Any) -> None:
        async for event in stream.events():
            partition = event.message.partition
            if partition not in self.reconciled:
                await self._reconcile(partition)
                self.reconciled.add(partition)
            try:
                request = AppendRequest.decode(event.value)
            except (ValueError, KeyError, TypeError) as error:
                log.error("dropping an undecodable append request at %s/%s: %s",
                          partition, event.message.offset, error)
                continue
            reply = await self.handle(request, partition)
            await self._reply(request.client_id, reply)

    async def handle(self, request: AppendRequest, partition: int) -> AppendReply:
        assert self.producer is not None, "LogWriter.start() was not awaited"
        events = request.events
        try:
            aggregate_id = check_batch(events, request.expected_version)
        except ValueError as error:
            aggregate = events[0].aggregate_id if events else ""
            return AppendReply(request.request_id, INVALID, aggregate, message=str(error))
        state: dict[str, Any] | None = self.table.get(aggregate_id)
        if state is not None:
            # a redelivered request: its first event is already in the log
            for event_id, version in state["e"]:
                if event_id == events[0].event_id:
                    return AppendReply(request.request_id, APPENDED, aggregate_id,
                                       version + len(events) - 1, events[-1].event_id)
            if request.command is not None:
                prior = state["c"].get(command_key(request.command))
                if prior is not None:
                    return AppendReply(request.request_id, DUPLICATE, aggregate_id,
                                       prior[1], prior[2], prior[0])
        current = 0 if state is None else int(state["v"])
        if current != request.expected_version:
            return AppendReply(request.request_id, CONFLICT, aggregate_id, current)
        prev = GENESIS_HASH if state is None else str(state["h"])
        sealed: list[RecordedEvent] = []
        for new in events:
            recorded = seal(new, prev)
            sealed.append(recorded)
            prev = recorded.hash
        topic = self.topics.events(events[0].aggregate_type)
        futures = []
        for index, recorded in enumerate(sealed):
            last = index == len(sealed) - 1
            headers = [command_header(request.command)] if last and request.command else None
            futures.append(await self.producer.send(
                topic, encode_event(recorded), key=aggregate_id.encode(), partition=partition,
                headers=headers,
            ))
        offsets = [(await future).offset for future in futures]  # durable: acks=all
        for index, recorded in enumerate(sealed):
            last = index == len(sealed) - 1
            state = fold(state, recorded, request.command if last else None)
        self.table[aggregate_id] = state
        checkpoint = dict(self.table.get(checkpoint_key(partition)) or {})
        checkpoint[topic] = offsets[-1]
        self.table[checkpoint_key(partition)] = checkpoint
        return AppendReply(request.request_id, APPENDED, aggregate_id, sealed[-1].version,
                           sealed[-1].event_id)

    async def _reply(self, client_id: str, reply: AppendReply) -> None:
        assert self.producer is not None
        # not awaited to the broker's ack: a lost reply times out and the client retries
        await self.producer.send(
            self.topics.replies, reply.encode(), key=client_id.encode(),
            partition=partition_for(client_id, await self._reply_partitions()),
        )

    _reply_partition_count: int = 0

    async def _reply_partitions(self) -> int:
        if not self._reply_partition_count:
            assert self.producer is not None
            found = await self.producer.partitions_for(self.topics.replies)
            self._reply_partition_count = len(found)
        return self._reply_partition_count

    async def _reconcile(self, partition: int) -> None:
        """Fold events that reached the log after the table's checkpoint (a crash between
        producing them and recording them) into the table, before answering anything."""
        checkpoint = dict(self.table.get(checkpoint_key(partition)) or {})
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await consumer.start()
        folded = 0
        try:
            tps = [TopicPartition(t, partition) for t in self.topics.event_topics]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                start = int(checkpoint.get(tp.topic, -1)) + 1
                if start >= ends[tp]:
                    continue
                consumer.seek(tp, start)
                while await consumer.position(tp) < ends[tp]:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    for record in batch.get(tp, []):
                        if record.offset >= ends[tp]:
                            break
                        event = decode_event(record.value)
                        command = command_from_headers(record.headers)
                        self.table[event.aggregate_id] = fold(
                            self.table.get(event.aggregate_id), event, command)
                        checkpoint[tp.topic] = record.offset
                        folded += 1
            if folded:
                self.table[checkpoint_key(partition)] = checkpoint
                log.warning("writer of partition %s recovered %s events the table had missed",
                            partition, folded)
        finally:
            await consumer.stop()

