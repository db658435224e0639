"""The Kafka broker that tests use: ``KASAL_TEST_KAFKA_BOOTSTRAP`` (``make test`` sets it),
else the local test broker's default address. A test fails loudly when nothing listens.

``distributed_store`` gives one test a private distributed deployment of the event store:
its own topic prefix (topics provisioned as ``kasal kafka init`` does), a log worker
(the partitions' single writer and the log mirror) and a client store, with the mirror
in the given PostgreSQL schema. Everything is stopped and the topics deleted afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest

from adapters.kafka_admin import KafkaAdminError, KafkaTopicAdmin, kasal_topics
from adapters.kafka_event_store import KafkaEventStore
from adapters.kafka_log import KafkaTopics
from adapters.sql_event_store import SqlEventStore
from kasal.worker import LogWorker, WorkerConfig
from tests.pg import POSTGRES_URL

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

    def worker_config(self) -> WorkerConfig:
        return WorkerConfig(BOOTSTRAP, POSTGRES_URL, PARTITIONS, self.prefix, self.schema)

    async def open_store(self) -> KafkaEventStore:
        """Another client of the same deployment (another API process, say)."""
        store = client_store(self.prefix, self.schema)
        await store.initialize()
        return store


def client_store(prefix: str, schema: str | None, **options: float) -> KafkaEventStore:
    return KafkaEventStore(
        BOOTSTRAP, SqlEventStore(POSTGRES_URL, schema=schema), topics=KafkaTopics(prefix),
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
