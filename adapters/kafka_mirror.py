"""The log mirror: a Faust agent copying every event from the events topics into SQL.

Kafka is the system of record; the mirror is a read model of it shaped like the embedded
event store (``kasal_events`` + ``kasal_commands`` in PostgreSQL), so the command side
can load an aggregate, find a command and tail a global order without scanning a
partition. Each batch is written with the next offset of every partition it read, in one
transaction (``SqlEventStore.mirror``): a redelivered batch changes nothing, and a dropped
mirror is rebuilt from offset zero. Each copied event must continue its aggregate's
hash chain, so a mirror never silently diverges from the log.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from adapters.kafka_log import KafkaTopics, command_from_headers, decode_event
from adapters.sql_event_store import MirroredRecord, SqlEventStore

log = logging.getLogger(__name__)

BATCH = 500
WITHIN_S = 0.002  # a batch closes this long after its first event (latency vs. batching)


class LogMirror:
    def __init__(self, app: faust.App, topics: KafkaTopics, store: SqlEventStore,
                 partitions: int) -> None:
        self.store = store
        self.topics = topics
        self.source = app.topic(
            *topics.event_topics, key_serializer="raw", value_serializer="raw",
            partitions=partitions,
        )
        app.agent(self.source, name=f"{topics.prefix}-mirror")(self._agent)

    async def _agent(self, stream: Any) -> None:
        async for events in stream.take_events(BATCH, within=WITHIN_S):
            records = [
                MirroredRecord(
                    decode_event(e.value), e.message.topic, e.message.partition,
                    e.message.offset, command_from_headers(_headers(e.message.headers)),
                )
                for e in events
            ]
            await self.store.mirror(records)


def _headers(headers: Any) -> list[tuple[str, bytes]]:
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return [(str(k), bytes(v)) for k, v in headers]
