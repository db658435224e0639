"""``kasal worker``: a worker of the distributed deployment.

Workers share the partitions through two Kafka consumer groups: ``<prefix>-writers``
(the single writer of each ``<prefix>.commands`` partition) and ``<prefix>-mirror`` (the
log mirror). Stopping or losing one hands its partitions to the others. Each worker runs
the executions of the partitions it writes; the projectors, which follow the log's
global order, run on one worker at a time (``Leadership``). Everything runs inside an
asyncio loop Kasal owns, so the same code serves the CLI and the tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.exc import DBAPIError

from adapters.kafka_admin import KafkaAdminError, KafkaTopicAdmin
from adapters.kafka_log import KafkaTopics
from adapters.kafka_mirror import LogMirror
from adapters.kafka_writer import LogWriter
from adapters.sql_event_store import SqlEventStore
from kasal.bootstrap import Kasal, bootstrap
from kasal.settings import Settings
from streams.engine import CrewEngine

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
        self.store = SqlEventStore(config.postgres_url, schema=config.schema)
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


class Leadership:
    """One worker at a time runs the processors that follow the log's global order (the SQL
    and vector projectors): the holder of a PostgreSQL session advisory lock. The others
    wait on the lock, inside PostgreSQL, without polling; when the holder's process dies
    its connection closes, the lock is released and a waiting worker takes over. A holder
    that loses its connection must stop at once: ``lost`` is set."""

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
    """``kasal worker``. Every worker: the single writer of the partitions the group gives
    it, the log mirror, and the execution runner for the executions of those partitions
    (when partitions move, runs move: the new owner resumes them from the log). The
    worker holding the leader lock also runs the SQL and vector projectors (``leading``
    is set once they run)."""
    log_worker = LogWorker(WorkerConfig(
        settings.kafka_bootstrap_servers, settings.postgres_url, settings.kafka_partitions,
        settings.kafka_prefix, session_timeout_s=settings.kafka_session_timeout_s,
    ))
    runs: Kasal | None = None
    projectors: Kasal | None = None
    leadership = Leadership(settings.postgres_url)
    tasks: list[asyncio.Task[Any]] = []
    takeovers: list[asyncio.Task[None]] = []
    await asyncio.to_thread(log_worker.check_topics)  # a clear error before anything else
    # CrewAI's import blocks the loop for seconds: do it before joining the group
    try:
        runs = await bootstrap(settings, engine=engine, role="runner", owns=log_worker.owns)
    except (OSError, DBAPIError) as error:
        raise WorkerError(f"cannot reach PostgreSQL for the read models ({error})") from None
    try:
        await log_worker.start()
        await runs.start(resume=False)
        runs_ = runs

        async def take_over() -> None:
            assert runs_.runner is not None
            released = runs_.runner.release_unowned()
            if released:
                log.info("handing %s runs to their partitions' new owner", len(released))
            # the work list comes from the read model: wait until it has caught up
            while not await runs_.wait_until_projected(60.0):
                log.warning("the SQL projection is still catching up; taking over after it")
            launched = await runs_.runner.resume_unfinished(
                await runs_.read_models.unfinished_execution_ids()
            )
            if launched:
                log.info("resumed %s unfinished runs of this worker's partitions", launched)

        def assigned() -> None:
            for task in takeovers:
                task.cancel()
            takeovers[:] = [asyncio.create_task(take_over(), name="kasal-takeover")]

        log_worker.assignment_listeners.append(assigned)
        if log_worker.owned:
            assigned()

        async def lead() -> None:
            nonlocal projectors
            await leadership.acquire()
            log.info("this worker leads: starting the projectors")
            projectors = await bootstrap(settings, role="projectors", run_executions=False,
                                         with_vectors=True)
            await projectors.start()
            if leading is not None:
                leading.set()
            await leadership.lost.wait()
            if not stop.is_set():
                raise RuntimeError("lost the PostgreSQL connection holding the leader lock")

        tasks = [asyncio.create_task(lead(), name="kasal-lead"),
                 asyncio.create_task(stop.wait(), name="kasal-stop"),
                 asyncio.ensure_future(log_worker.crashed)]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()  # the leader task's error ends the worker
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if projectors is not None:
            await projectors.stop()
        if runs is not None:
            for takeover in takeovers:
                takeover.cancel()
            await runs.stop()
        await leadership.release()
        await log_worker.stop()
