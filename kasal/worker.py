"""``kasal worker``: the Faust worker of the distributed deployment.

One Faust app per worker process (all workers of a deployment share its id, hence its
consumer group): the single writer of each ``<prefix>.commands`` partition and the log
mirror. Workers share the partitions; stopping one hands its partitions to the others.
The app runs inside an asyncio loop Kasal owns (``app.start()``/``app.stop()``), so the
same code serves the CLI and the tests.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import faust

from adapters.kafka_log import KafkaTopics
from adapters.kafka_mirror import LogMirror
from adapters.kafka_writer import LogWriter
from adapters.sql_event_store import SqlEventStore

log = logging.getLogger(__name__)


def faust_brokers(bootstrap_servers: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server]


@dataclass
class WorkerConfig:
    bootstrap_servers: str
    postgres_url: str
    partitions: int
    prefix: str = "kasal"
    schema: str | None = None  # tests isolate each deployment in its own schema
    replication_factor: int = 1


class LogWorker:
    """The writer and the mirror on one Faust app; ``start``/``stop`` inside a running loop."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.topics = KafkaTopics(config.prefix)
        self.app = faust.App(
            f"{config.prefix}-worker",
            broker=faust_brokers(config.bootstrap_servers),
            store="memory://",
            web_enabled=False,
            topic_partitions=config.partitions,
            topic_replication_factor=config.replication_factor,
            producer_acks=-1,
            consumer_auto_offset_reset="earliest",
            broker_commit_interval=0.5,
        )
        self.store = SqlEventStore(config.postgres_url, schema=config.schema)
        self.writer = LogWriter(self.app, self.topics, config.bootstrap_servers,
                                config.partitions)
        self.mirror = LogMirror(self.app, self.topics, self.store, config.partitions)

    async def start(self) -> None:
        await self.store.initialize()
        await self.writer.start()
        await self.app.start()

    async def stop(self) -> None:
        try:
            await self.app.stop()
        finally:
            await self.writer.stop()
            await self.store.close()

    async def run(self, stop: asyncio.Event) -> None:
        await self.start()
        log.info("kasal worker started (%s, %s partitions)", self.config.prefix,
                 self.config.partitions)
        try:
            await stop.wait()
        finally:
            await self.stop()
