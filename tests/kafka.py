"""The Kafka broker that tests use: ``KASAL_TEST_KAFKA_BOOTSTRAP`` (``make test`` sets it),
else the local test broker's default address. A test fails loudly when nothing listens.

``distributed_store`` gives one test a private distributed deployment of the event store:
its own topic prefix (topics provisioned as ``kasal kafka init`` does), a log worker
(the partitions' single writer and the log mirror) and a client store, with the mirror
in the given PostgreSQL schema. Everything is stopped and the topics deleted afterwards.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.eventstore.sql_log import SqlEventLog
from adapters.kafka.admin import KafkaAdminError, KafkaTopicAdmin, kasal_topics
from adapters.kafka.client_store import KafkaEventStore
from adapters.kafka.log_worker import LogWorker, WorkerConfig
from adapters.kafka.topics import KafkaTopics
from tests.pg import POSTGRES_URL
from tests.processes import KasalProcess

BOOTSTRAP = os.environ.get("KASAL_TEST_KAFKA_BOOTSTRAP") or "127.0.0.1:59092"
PARTITIONS = 2


def admin() -> KafkaTopicAdmin:
    try:
        return KafkaTopicAdmin(BOOTSTRAP, bootstrap_timeout_ms=10_000)
    except KafkaAdminError as error:
        pytest.fail(
            f"Kafka at {BOOTSTRAP} is not reachable ({error}); start it with "
            "`make services-up` (or `bash scripts/kafka.sh up`) or set KASAL_TEST_KAFKA_BOOTSTRAP",
            pytrace=False,
        )


def new_prefix() -> str:
    return "t" + uuid.uuid4().hex[:10]


def provision(prefix: str, partitions: int = PARTITIONS) -> None:
    with admin() as client:
        client.ensure_topics(kasal_topics(prefix=prefix, partitions=partitions))


def delete_topics(prefix: str) -> None:
    """The deployment's topics (prefix match)."""
    with admin() as client:
        client.delete_topics([t for t in client.list_topics() if t.startswith(prefix)])


@dataclass
class Distributed:
    prefix: str
    schema: str | None
    store: KafkaEventStore
    worker: LogWorker



def client_store(prefix: str, schema: str | None, **options: float) -> KafkaEventStore:
    return KafkaEventStore(
        BOOTSTRAP, SqlEventLog(POSTGRES_URL, schema=schema), topics=KafkaTopics(prefix),
        postgres_dsn=POSTGRES_URL, **options,
    )


@asynccontextmanager
async def distributed_store(schema: str | None) -> AsyncIterator[Distributed]:
    prefix = new_prefix()
    provision(prefix)
    worker = LogWorker(WorkerConfig(BOOTSTRAP, POSTGRES_URL, PARTITIONS, prefix, schema))
    try:
        await worker.start()
        store = client_store(prefix, schema)
        await store.initialize()
        try:
            yield Distributed(prefix, schema, store, worker)
        finally:
            await store.close()
    finally:
        await worker.stop()
        delete_topics(prefix)


class WorkerProcess(KasalProcess):
    """``kasal worker`` in a process of its own (``start`` again after it ended): ``leads``
    is set when it runs the projectors, ``owned`` holds the partitions it last said it owns."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        super().__init__(["worker"], env, log)
        self.leads = threading.Event()
        self.owned: list[int] = []

    def start(self) -> None:
        self.leads = threading.Event()
        super().start()

    def on_line(self, line: bytes) -> None:
        if b"this worker leads" in line:
            self.leads.set()
        if b"this worker owns partitions" in line:
            text = line.decode().rsplit("partitions", 1)[1].strip(" []\n")
            self.owned = [int(p) for p in text.split(",") if p.strip()]
