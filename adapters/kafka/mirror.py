"""The log mirror: copies every event from the events topics into SQL.

Kafka is the system of record; the mirror is a read model of it shaped like the embedded
event store (``kasal_events`` + ``kasal_commands`` in PostgreSQL), so the command side
can load an aggregate, find a command and tail a global order without scanning a
partition. The workers share the events partitions in the ``<prefix>-mirror`` consumer
group. The mirror's own progress is the next offset of every partition, written in the
same transaction as the copied events (``MirrorStore.copy``): on assignment it seeks
there, so nothing is skipped or copied twice whatever the group's committed offsets say,
and a dropped mirror is rebuilt from offset zero. Each copied event must continue its
aggregate's hash chain, so a mirror never silently diverges from the log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from adapters.kafka.groups import join_group, leave_group
from adapters.kafka.mirror_store import MirroredRecord, MirrorStore
from adapters.kafka.records import command_from_headers, decode_event
from adapters.kafka.topics import KafkaTopics

log = logging.getLogger(__name__)

BATCH = 500


class LogMirror:
    def __init__(self, topics: KafkaTopics, bootstrap_servers: str, store: MirrorStore, *,
                 session_timeout_s: float = 10.0) -> None:
        self.topics = topics
        self.bootstrap_servers = bootstrap_servers
        self.store = store
        self.session_timeout_s = session_timeout_s
        self.consumer: AIOKafkaConsumer | None = None
        self.task: asyncio.Task[None] | None = None
        self.working = asyncio.Lock()

    async def start(self) -> None:
        self.consumer = await join_group(
            self.bootstrap_servers, f"{self.topics.prefix}-mirror", self.topics.event_topics,
            _Seek(self), session_timeout_s=self.session_timeout_s, fetch_max_wait_ms=20,
        )
        self.task = asyncio.create_task(self._loop(), name="kasal-log-mirror")

    async def stop(self) -> None:
        task, consumer, self.task, self.consumer = self.task, self.consumer, None, None
        await leave_group(task, consumer)

    async def _loop(self) -> None:
        assert self.consumer is not None
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=BATCH)
            if not batches:
                continue
            async with self.working:
                records = [
                    MirroredRecord(decode_event(r.value), tp.topic, tp.partition, r.offset,
                                   command_from_headers(r.headers))
                    for tp, batch in batches.items() for r in batch
                ]
                await self.store.copy(records)


class _Seek(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, mirror: LogMirror) -> None:
        self.mirror = mirror

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.mirror.working:  # the batch in hand is committed first
            pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        consumer = self.mirror.consumer
        assert consumer is not None
        stored = await self.mirror.store.log_offsets()
        for tp in assigned:
            consumer.seek(TopicPartition(tp.topic, tp.partition),
                          stored.get((tp.topic, tp.partition), 0))
