"""``kasal worker``: the Faust worker of the distributed deployment.

One Faust app per worker process (all workers of a deployment share its id, hence its
consumer group): the single writer of each ``<prefix>.commands`` partition and the log
mirror. Workers share the partitions; stopping one hands its partitions to the others.
The processors that follow the log's global order run on one worker at a time
(``Leadership``).
The app runs inside an asyncio loop Kasal owns (``app.start()``/``app.stop()``), so the
same code serves the CLI and the tests.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import faust

from adapters.kafka_log import KafkaTopics
from adapters.kafka_mirror import LogMirror
from adapters.kafka_writer import LogWriter
from adapters.sql_event_store import SqlEventStore
from kasal.bootstrap import Kasal, bootstrap
from kasal.settings import Settings
from streams.engine import CrewEngine

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
    data_dir: Path | None = None  # Faust's local files (default: the temp dir)
    # how soon the group notices a dead worker and hands its partitions to the others
    session_timeout_s: float = 10.0


class LogWorker:
    """The writer and the mirror on one Faust app; ``start``/``stop`` inside a running loop."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.topics = KafkaTopics(config.prefix)
        datadir = (config.data_dir or Path(tempfile.gettempdir())) / "faust"
        datadir.mkdir(parents=True, exist_ok=True)
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
            broker_session_timeout=config.session_timeout_s,
            broker_heartbeat_interval=max(config.session_timeout_s / 5, 0.5),
            datadir=str(datadir / f"{config.prefix}-worker"),
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


class Leadership:
    """One worker at a time runs the processors that follow the log's global order (the SQL
    and vector projectors, the execution runner): the holder of a PostgreSQL session
    advisory lock. The others wait on the lock, inside PostgreSQL, without polling; when
    the holder's process dies its connection closes, the lock is released and a waiting
    worker takes over (resuming the runs the first one left unfinished). A holder that
    loses its connection must stop at once: ``lost`` is set."""

    LOCK_KEY = 0x6B6173616C01  # "kasal" + 1: the processors' leader lock

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn.replace("postgresql+asyncpg://", "postgresql://")
        self.conn: Any = None
        self.lost = asyncio.Event()

    async def acquire(self) -> None:
        self.conn = await asyncpg.connect(self.dsn)
        self.conn.add_termination_listener(lambda _conn: self.lost.set())
        await self.conn.execute("SELECT pg_advisory_lock($1)", self.LOCK_KEY)

    async def release(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await conn.close()


async def run_worker(settings: Settings, stop: asyncio.Event, *,
                     engine: CrewEngine | None = None,
                     leading: asyncio.Event | None = None) -> None:
    """``kasal worker``: the partitions' writer and the log mirror (all workers share the
    partitions), and, while this worker leads, the projectors and the execution runner
    (``leading`` is set once they run)."""
    log_worker = LogWorker(WorkerConfig(
        settings.kafka_bootstrap_servers, settings.postgres_url, settings.kafka_partitions,
        settings.kafka_prefix, replication_factor=settings.kafka_replication_factor,
        data_dir=settings.data_dir, session_timeout_s=settings.kafka_session_timeout_s,
    ))
    await log_worker.start()
    leadership = Leadership(settings.postgres_url)
    kasal: Kasal | None = None
    try:
        acquire = asyncio.create_task(leadership.acquire())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({acquire, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not acquire.done():
            acquire.cancel()
            return
        await acquire
        log.info("this worker leads: starting the projectors and the execution runner")
        kasal = await bootstrap(settings, engine=engine, role="worker")
        await kasal.start()
        if leading is not None:
            leading.set()
        lost = asyncio.create_task(leadership.lost.wait())
        await asyncio.wait({stopping, lost}, return_when=asyncio.FIRST_COMPLETED)
        if leadership.lost.is_set() and not stop.is_set():
            raise RuntimeError("lost the PostgreSQL connection holding the leader lock")
    finally:
        if kasal is not None:
            await kasal.stop()
        await leadership.release()
        await log_worker.stop()
