"""The Kafka side of one ``kasal worker``: the single writer of the ``<prefix>.commands``
partitions the group gives it, and the log mirror of the events partitions.

Workers share the partitions through two Kafka consumer groups: ``<prefix>-writers``
and ``<prefix>-mirror``. Stopping or losing one hands its partitions to the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from adapters.kafka.admin import KafkaAdminError, KafkaTopicAdmin
from adapters.kafka.mirror import LogMirror
from adapters.kafka.mirror_store import MirrorStore
from adapters.kafka.topics import KafkaTopics
from adapters.kafka.writer import LogWriter

log = logging.getLogger(__name__)


class WorkerError(Exception):
    """The worker cannot run as configured (topics missing, broker unreachable)."""


@dataclass
class WorkerConfig:
    bootstrap_servers: str
    postgres_url: str
    partitions: int
    prefix: str = "kasal"
    schema: str | None = None  # tests isolate each deployment in its own schema
    # how soon the group notices a dead worker and hands its partitions to the others
    session_timeout_s: float = 10.0


class LogWorker:
    """The writer and the mirror of this worker's partitions; ``start``/``stop`` in a loop."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.topics = KafkaTopics(config.prefix)
        self.store = MirrorStore(config.postgres_url, schema=config.schema)
        self.writer = LogWriter(self.topics, config.bootstrap_servers, config.partitions,
                                session_timeout_s=config.session_timeout_s)
        self.mirror = LogMirror(self.topics, config.bootstrap_servers, self.store,
                                session_timeout_s=config.session_timeout_s)
        self.crashed: asyncio.Future[None]  # set with the error of a writer or mirror loop

    @property
    def owned(self) -> frozenset[int]:
        """The ``<prefix>.commands`` partitions this worker writes (and runs)."""
        return self.writer.owned

    @property
    def assignment_listeners(self) -> list[Callable[[], None]]:
        return self.writer.on_assignment

    def owns(self, aggregate_id: str) -> bool:
        """Whether ``aggregate_id``'s partition is this worker's (its writer runs here)."""
        return self.writer.owns(aggregate_id)

    async def start(self) -> None:
        self.crashed = asyncio.get_running_loop().create_future()
        await asyncio.to_thread(self.check_topics)
        await self.store.initialize()
        await self.writer.start()
        await self.mirror.start()
        for task in (self.writer.task, self.mirror.task):
            assert task is not None
            task.add_done_callback(self._on_loop_end)

    def check_topics(self) -> None:
        """The topics must exist (``kasal kafka init``): say so rather than wait on them."""
        wanted = {self.topics.commands, self.topics.replies, *self.topics.event_topics}
        try:
            with KafkaTopicAdmin(self.config.bootstrap_servers) as admin:
                missing = sorted(wanted - admin.list_topics())
                found = {} if missing else admin.describe([self.topics.commands])
        except KafkaAdminError as error:
            raise WorkerError(str(error)) from None
        if missing:
            raise WorkerError(
                f"topics {', '.join(missing)} do not exist on {self.config.bootstrap_servers}: "
                f"run 'kasal kafka init' (prefix {self.config.prefix!r}) first"
            )
        actual = found[self.topics.commands].partitions
        if actual != self.config.partitions:
            # partitions decide which worker writes and runs what: they must agree
            raise WorkerError(
                f"{self.topics.commands} has {actual} partitions but KASAL_KAFKA_PARTITIONS "
                f"is {self.config.partitions}: set it to {actual}"
            )

    def _on_loop_end(self, task: asyncio.Task[None]) -> None:
        """A writer or mirror loop that ends on an error ends the worker (crash-only: the
        supervisor restarts it and the partitions are rebuilt from the log), never silently."""
        if task.cancelled() or self.crashed.done():
            return
        error = task.exception()
        if error is not None:
            log.error("%s stopped: %r", task.get_name(), error, exc_info=error)
            self.crashed.set_exception(error)

    async def stop(self) -> None:
        try:
            await self.mirror.stop()
            await self.writer.stop()
        finally:
            await self.store.close()
