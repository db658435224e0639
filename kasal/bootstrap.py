"""The composition root: the only place that constructs adapters and wires one deployment."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.crewai import offline_env
from adapters.crewai.llm_check import credentials_problem, model_problem
from adapters.crewai.tool_names import (
    BUILTIN_TOOL_NAMES,
    tool_config_problem,
    tool_credentials_problem,
)
from adapters.eventstore.encryption import EncryptingEventStore, PayloadCipher
from adapters.eventstore.integrity import integrity_problems
from adapters.eventstore.sql_log import SqlEventLog
from adapters.eventstore.sql_store import SqlEventStore
from adapters.sql.engines import make_engine
from commands.bus import CommandBus
from commands.handlers import HandlerDeps
from commands.ports import EventStore
from kasal.data_dir_lock import DataDirLock
from kasal.processors import (
    EXECUTION_RUNNER,
    LIVE_FEED,
    SQL_PROJECTOR,
    VECTOR_PROJECTOR,
    Role,
    runs,
)
from kasal.settings import Settings, code_environment
from projections.clock import ProjectionClock
from projections.live import LiveExecutionFeed
from projections.processor_health import (
    Failure,
    clear_failure,
    current_failures,
    record_failure,
)
from projections.queries import ReadModels
from projections.search import VectorSearch
from projections.sql_projector import SqlProjector
from projections.tracking import PROJECTED_CHANNEL
from projections.vector_projector import VectorProjector
from streams.engine import CrewEngine
from streams.execution_runner import ExecutionRunner
from streams.runtime import InProcessRuntime, Processor

if TYPE_CHECKING:
    from adapters.kafka.client_store import KafkaEventStore as KafkaEventStoreT
    from api.workspace.port import WorkspaceFiles

log = logging.getLogger(__name__)


@dataclass
class Kasal:
    settings: Settings
    store: EventStore
    bus: CommandBus
    read_engine: AsyncEngine
    read_models: ReadModels
    projector: SqlProjector
    runtime: InProcessRuntime
    clock: ProjectionClock
    live: LiveExecutionFeed
    runner: ExecutionRunner | None = None
    search: VectorSearch | None = None
    running: bool = field(default=False)
    data_dir_lock: DataDirLock | None = None

    async def start(self, *, run_processors: bool = True, resume: bool = True,
                    rebuild_schema: bool | None = None) -> None:
        """Create tables if missing and (by default) start the processors, then resume the
        executions the log left unfinished (``resume=False``: the caller does, later).
        Read models of another schema are rebuilt from the log where ``rebuild_schema`` (by
        default: the one embedded process that holds the data dir), else refused."""
        rebuild = self.data_dir_lock is not None if rebuild_schema is None else rebuild_schema
        rebuilt = await self.projector.initialize(rebuild_changed=rebuild)
        self.clock.advance(await self.projector.position())
        if self.search is not None:
            await self.search.projector.initialize()
        if run_processors:
            self.live.start_at(await self.store.head_position())
            await self.runtime.start()
            self.running = True
            # nothing is served from half-replayed read models (keys revoked later included)
            while rebuilt and not await self.wait_until_projected(60.0):
                log.warning("the read models are being rebuilt from the log; still replaying")
            if self.runner is not None and resume:
                # the work list comes from the read model: it must have caught up first, or
                # executions requested just before a crash would never be resumed
                while not await self.wait_until_projected(60.0):
                    log.warning("the SQL projection is still catching up; resuming after it")
                await self.runner.resume_unfinished(
                    await self.read_models.unfinished_execution_ids()
                )

    async def catch_up(self) -> int:
        """Project everything stored so far, now (CLI commands and tests)."""
        return await self.runtime.catch_up()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.stop()
        await self.runtime.stop()
        self.running = False
        await self.store.close()
        await self.read_engine.dispose()
        await self.projector.engine.dispose()
        if self.search is not None:
            await self.search.index.close()
        if self.data_dir_lock is not None:
            self.data_dir_lock.release()

    async def processor_failures(self) -> list[Failure]:
        """Processors (of any process) that cannot get past an event, as they reported it."""
        return await current_failures(self.read_engine)

    def sql_log(self) -> SqlEventLog | None:
        """The SQL event log: the embedded store, or the distributed store's log mirror."""
        store: Any = self.store.inner if isinstance(self.store, EncryptingEventStore) \
            else self.store
        log = getattr(store, "mirror", store)
        return log if isinstance(log, SqlEventLog) else None

    async def integrity_problems(self) -> list[str]:
        """The SQL log's own checks (``adapters/eventstore/integrity.py``)."""
        log = self.sql_log()
        return [] if log is None else await integrity_problems(log)

    async def wait_until_projected(self, timeout: float) -> bool:
        """Wake the processors and wait until the SQL projection reaches the store's head."""
        head = await self.store.head_position()
        self.runtime.notify()
        return await self.clock.wait_for(head, timeout) >= head


class FailureReports:
    """Writes a processor's failure (and its end) where every process can read it."""

    def __init__(self, engine: AsyncEngine, processors: set[str]) -> None:
        self.engine = engine
        self.processors = processors
        self.writing: set[asyncio.Task[None]] = set()
        self.order = asyncio.Lock()  # FIFO: reports are written in the order they were made

    def report(self, processor: str, failure: Failure | None) -> None:
        if processor not in self.processors:
            return
        write = record_failure(self.engine, failure) if failure is not None \
            else clear_failure(self.engine, processor)
        task = asyncio.get_running_loop().create_task(self._write(write))
        self.writing.add(task)
        task.add_done_callback(self.writing.discard)

    async def _write(self, write: Coroutine[Any, Any, None]) -> None:
        try:
            async with self.order:
                await write
        except Exception:  # the database is away too: the log line above says why
            log.warning("could not record a processor's failure", exc_info=True)


async def build_event_store(settings: Settings) -> EventStore:
    store: EventStore
    if settings.mode == "distributed":
        from adapters.kafka.client_store import KafkaEventStore
        from adapters.kafka.topics import KafkaTopics

        mirror = SqlEventLog(settings.postgres_url, echo=settings.sql_debug)
        store = KafkaEventStore(
            settings.kafka_bootstrap_servers, mirror, topics=KafkaTopics(settings.kafka_prefix),
            postgres_dsn=settings.postgres_url,
        )
        await store.initialize()
    else:
        store = SqlEventStore(settings.event_store_url, echo=settings.sql_debug)
        await store.initialize()
    if settings.encryption_key:
        return EncryptingEventStore(store, PayloadCipher(settings.encryption_key))
    return store


def kafka_store(store: EventStore) -> KafkaEventStoreT | None:
    from adapters.kafka.client_store import KafkaEventStore

    inner = store.inner if isinstance(store, EncryptingEventStore) else store
    return inner if isinstance(inner, KafkaEventStore) else None


def prepare_offline_environment(settings: Settings) -> None:
    """CrewAI and litellm reach for the network unless told not to; and keep their files
    in the data dir. Must run before either is imported."""
    offline_env.apply()
    os.environ.setdefault("CREWAI_STORAGE_DIR", str((settings.data_dir / "crewai").resolve()))


def build_engine(settings: Settings) -> CrewEngine:
    prepare_offline_environment(settings)
    from adapters.crewai.engine import CrewAIEngine
    from adapters.crewai.offline_llm import register_offline_provider

    register_offline_provider()
    return CrewAIEngine(max_retries=settings.llm_max_retries,
                        workspaces=settings.workspace_dir,
                        project_code=settings.allow_project_code,
                        project_tool_timeout_s=settings.project_tool_timeout_s,
                        code_env=code_environment())


def build_workspace_files(settings: Settings) -> WorkspaceFiles:
    """The tenants' workspaces for the API's workspace routes: the directory the runners'
    file tools use, so distributed it must be storage the API and every worker share."""
    from adapters.crewai.workspace_files import DirectoryWorkspaceFiles

    return DirectoryWorkspaceFiles(settings.workspace_dir)


def build_search(settings: Settings, engine: AsyncEngine, reader: AsyncEngine) -> VectorSearch:
    from adapters.vectors.embeddings import build_embedder
    from adapters.vectors.qdrant_index import QdrantVectorIndex

    embedder = build_embedder(settings.embedding_model, settings.data_dir / "models")
    if settings.qdrant_url:
        index = QdrantVectorIndex(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
    else:  # local mode: one process at a time may open this folder
        index = QdrantVectorIndex(path=settings.data_dir / "qdrant")
    projector = VectorProjector(embedder, index, engine, reader,
                                collection_prefix=settings.qdrant_collection_prefix)
    return VectorSearch(embedder, index, projector)


async def bootstrap(
    settings: Settings,
    *,
    store: EventStore | None = None,
    engine: CrewEngine | None = None,
    run_executions: bool = True,
    with_vectors: bool | None = None,
    role: Role = "all",
    owns: Callable[[str], bool] | None = None,
) -> Kasal:
    """Wire one Kasal process. ``run_executions=False`` leaves out the execution runner
    (CLI commands that only write or rebuild, and do not want CrewAI's import time);
    ``with_vectors`` (default: with the runner, when ``KASAL_VECTOR_SEARCH``) the vector
    projector and search, which hold the Qdrant folder open.

    ``role`` says which processors this process runs (``kasal.processors``); a process
    that runs no projector learns their progress from PostgreSQL NOTIFY. The runner
    drives the executions ``owns`` accepts (a worker: those of its partitions)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    prepare_offline_environment(settings)
    if with_vectors is None:
        with_vectors = run_executions
    if settings.mode == "distributed" or not (run_executions or with_vectors):
        return await _wire(settings, store, engine, run_executions, with_vectors, role, owns)
    lock = DataDirLock(settings.data_dir)
    lock.acquire()  # before anything opens the data dir's Qdrant folder
    try:
        kasal = await _wire(settings, store, engine, run_executions, with_vectors, role, owns)
    except BaseException:
        lock.release()
        raise
    kasal.data_dir_lock = lock
    return kasal


async def _wire(
    settings: Settings, store: EventStore | None, engine: CrewEngine | None,
    run_executions: bool, with_vectors: bool, role: Role, owns: Callable[[str], bool] | None,
) -> Kasal:
    """``bootstrap``, its arguments resolved."""
    store = store or await build_event_store(settings)
    deps = HandlerDeps(default_llm=settings.default_llm, known_tools=BUILTIN_TOOL_NAMES,
                       tool_config_problem=tool_config_problem, llm_problem=model_problem,
                       llm_credentials_problem=credentials_problem
                       if settings.check_llm_credentials else None,
                       tool_credentials_problem=tool_credentials_problem
                       if settings.check_tool_credentials else None,
                       allow_project_code=settings.allow_project_code)
    bus = CommandBus(store, deps)
    read_engine = make_engine(settings.read_model_url, echo=settings.sql_debug, durable=False)
    # the projector writes through its own engine: on SQLite it takes the write lock up front
    projector_engine = make_engine(
        settings.read_model_url, echo=settings.sql_debug, immediate=True, durable=False
    )
    projector = SqlProjector(projector_engine)
    read_models = ReadModels(read_engine)
    live = LiveExecutionFeed()
    search = None
    distributed = settings.mode == "distributed"
    if with_vectors and settings.vector_search and (settings.qdrant_url or not distributed):
        search = build_search(settings, projector_engine, read_engine)
    elif with_vectors and distributed and settings.vector_search:
        log.warning("distributed Kasal searches a Qdrant server: set QDRANT_URL (search is off)")
    runner = None
    if run_executions and runs(role, EXECUTION_RUNNER):
        runner = ExecutionRunner(
            store,
            bus,
            engine or build_engine(settings),
            max_concurrency=settings.max_concurrent_executions,
            default_timeout_s=settings.execution_timeout_s,
            memory=search,  # crew memory is recalled from the vector index
            owns=owns,
        )
    built: dict[str, Processor | None] = {
        LIVE_FEED: live, SQL_PROJECTOR: projector, EXECUTION_RUNNER: runner,
        VECTOR_PROJECTOR: search.projector if search is not None else None,
    }
    runtime = InProcessRuntime(store, [
        processor for name, processor in built.items()
        if processor is not None and runs(role, name)
    ])
    clock = ProjectionClock(projector.position)
    bus.subscribe(runtime.notify)

    def progress(name: str, position: int) -> None:
        if name == projector.name:
            clock.advance(position)
        elif search is not None and name == search.projector.name:
            search.clock.advance(position)

    runtime.on_progress(progress)
    # the projectors' failures, for every process to read (the live feed and the runner run
    # in many processes under one name: their failures are in their own logs)
    projectors = {projector.name, *([search.projector.name] if search is not None else [])}
    runtime.on_failure(FailureReports(projector_engine, projectors).report)
    distributed_store = kafka_store(store)
    if distributed_store is not None:
        # other processes append (runner steps) and project (the worker): wake on their
        # commits, through the store's own LISTEN connection, instead of polling
        distributed_store.subscribe(runtime.notify)

        def projected(payload: str) -> None:  # another process's projector committed
            if payload:  # empty: reconnected; the clocks re-read positions when waited on
                name, _, position = payload.rpartition(":")
                progress(name, int(position))

        assert distributed_store.listener is not None
        await distributed_store.listener.listen(PROJECTED_CHANNEL, projected)
    return Kasal(
        settings, store, bus, read_engine, read_models, projector, runtime, clock, live, runner,
        search,
    )
