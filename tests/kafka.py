"""The Kafka broker that tests use: ``KASAL_TEST_KAFKA_BOOTSTRAP`` (``make test`` sets it),
else the local test broker's default address. A test fails loudly when nothing listens.

``distributed_store`` gives one test a private distributed deployment of the event store:
its own topic prefix (topics provisioned as ``kasal kafka init`` does), a log worker
(the partitions' single writer and the log mirror) and a client store, with the mirror
in the given PostgreSQL schema. Everything is stopped and the topics deleted afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

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


KASAL = str(Path(sys.executable).parent / "kasal")


@dataclass
class WorkerProcess:
    """``kasal worker`` in a process of its own (``start`` again after it ended). A thread
    copies its output to ``log`` and follows it: ``leads`` is set when it runs the
    projectors, ``owned`` holds the partitions it last said it owns."""

    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    leads: threading.Event = field(default_factory=threading.Event)
    owned: list[int] = field(default_factory=list)
    copier: threading.Thread | None = None
    ended_at: float = 0.0  # time.monotonic() when the process was seen to end

    def start(self) -> None:
        self.leads = threading.Event()
        self.process = subprocess.Popen(
            [KASAL, "worker"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.copier = threading.Thread(target=self._copy_output,
                                       args=(self.process, self.leads), daemon=True)
        self.copier.start()

    def _copy_output(self, process: subprocess.Popen[bytes], leads: threading.Event) -> None:
        assert process.stdout is not None
        with self.log.open("ab") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                if b"this worker leads" in line:
                    leads.set()
                if b"this worker owns partitions" in line:
                    text = line.decode().rsplit("partitions", 1)[1].strip(" []\n")
                    self.owned = [int(p) for p in text.split(",") if p.strip()]
        process.wait()
        self.ended_at = time.monotonic()

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None and \
            self.copier is not None and not self.copier.is_alive()

    def output(self) -> str:
        """Everything the worker wrote, once it ended."""
        if self.copier is not None:
            self.copier.join(10)
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
