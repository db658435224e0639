"""Fixtures of the contract suite: every store and read model, each test isolated.

Backends: the in-memory store (the reference behaviour), SQLite files under pytest's
``tmp_path`` and PostgreSQL, where each test gets a fresh schema that is dropped at
teardown. PostgreSQL is named by ``KASAL_TEST_POSTGRES_URL`` (``make test`` sets it);
without it the local test cluster's default URL is used, and a test fails loudly when
nothing listens there: the contract suite never skips a backend.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from adapters.eventstore.memory import InMemoryEventStore
from adapters.eventstore.sql_log import SqlEventLog
from adapters.eventstore.sql_store import SqlEventStore
from adapters.kafka.client_store import KafkaEventStore
from adapters.sql.engines import make_engine
from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from commands.ports import AppendResult, EventStore
from domain.envelope import NewEvent, RecordedEvent, utc_now
from domain.ids import new_id
from projections import schema as s
from projections.sql_projector import SqlProjector
from tests.factories import execute_raw
from tests.kafka import distributed_store
from tests.pg import POSTGRES_URL, create_schema, drop_schema

T = TypeVar("T")

TENANT = "tenant-a"
OTHER_TENANT = "tenant-b"
ACTOR = "user:contract-tests"


@dataclass
class Database:
    """One test's private database: SQLite files, or one PostgreSQL schema.

    Every store and engine made here is closed before the schema is dropped.
    """

    kind: str  # "sqlite" | "postgres"
    store_url: str
    read_url: str
    schema: str | None = None
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def open_store(self) -> SqlEventStore:
        store = SqlEventStore(self.store_url, schema=self.schema)
        self.closers.append(store.close)
        await store.initialize()
        return store

    def engine(self, *, immediate: bool = False) -> AsyncEngine:
        engine = make_engine(self.read_url, schema=self.schema, immediate=immediate)
        self.closers.append(engine.dispose)
        return engine

    async def open_projector(self) -> SqlProjector:
        projector = SqlProjector(self.engine(immediate=True))
        await projector.initialize()
        return projector

    async def enter(self, context: AbstractAsyncContextManager[T]) -> T:
        """Enter ``context`` now and exit it when the database closes."""
        value = await context.__aenter__()

        async def leave() -> None:
            await context.__aexit__(None, None, None)

        self.closers.append(leave)
        return value

    async def close(self) -> None:
        for close in reversed(self.closers):
            await close()
        self.closers.clear()


@pytest.fixture
async def sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(
        "sqlite", f"sqlite:///{tmp_path / 'events.db'}", f"sqlite:///{tmp_path / 'kasal.db'}"
    )
    yield database
    await database.close()


@pytest.fixture
async def postgres_database() -> AsyncIterator[Database]:
    schema = await create_schema()
    database = Database("postgres", POSTGRES_URL, POSTGRES_URL, schema)
    try:
        yield database
    finally:
        try:
            await database.close()
        finally:
            await drop_schema(schema)


SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
EMBEDDED_BACKENDS = ["memory", *SQL_BACKENDS]
KAFKA = pytest.param("kafka", marks=[pytest.mark.kafka, pytest.mark.postgres])
ALL_BACKENDS = [*EMBEDDED_BACKENDS, KAFKA]


@pytest.fixture(params=SQL_BACKENDS)
def database(request: pytest.FixtureRequest) -> Database:
    """A SQL backend: both kinds, each isolated (the projection contracts run on it)."""
    fixture = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    result: Database = request.getfixturevalue(fixture)
    return result


def backend_database(request: pytest.FixtureRequest, backend: str) -> Database | None:
    """Where a store of ``backend`` lives: nowhere (memory), a SQLite file or a schema."""
    if backend == "memory":
        return None
    fixture = "sqlite_database" if backend == "sqlite" else "postgres_database"
    result: Database = request.getfixturevalue(fixture)
    return result


async def open_backend(backend: str, database: Database | None) -> EventStore:
    if database is None:
        return InMemoryEventStore()
    if backend == "kafka":
        deployment = await database.enter(distributed_store(database.schema))
        return deployment.store
    return await database.open_store()


@pytest.fixture(params=ALL_BACKENDS)
def store_backend(request: pytest.FixtureRequest) -> tuple[str, Database | None]:
    return request.param, backend_database(request, request.param)


@pytest.fixture(params=EMBEDDED_BACKENDS)
def embedded_backend(request: pytest.FixtureRequest) -> tuple[str, Database | None]:
    return request.param, backend_database(request, request.param)


@pytest.fixture
async def event_store(store_backend: tuple[str, Database | None]) -> EventStore:
    """Every EventStore implementation; the contract is the same for all of them.

    ``kafka`` is the distributed store: a client of a private deployment (topics, a log
    worker with the partitions' writer and the log mirror in a PostgreSQL schema)."""
    return await open_backend(*store_backend)


@pytest.fixture
async def embedded_event_store(embedded_backend: tuple[str, Database | None]) -> EventStore:
    """The embedded stores only: for what they promise beyond the port (see its users)."""
    return await open_backend(*embedded_backend)


# --- building events -----------------------------------------------------------------
def new_events(
    aggregate_id: str,
    count: int,
    *,
    after_version: int = 0,
    tenant_id: str = TENANT,
    aggregate_type: str = "agent",
    type_: str = "AgentNoted",
) -> list[NewEvent]:
    """``count`` envelope-complete events continuing ``aggregate_id`` from ``after_version``."""
    command_id = new_id()
    return [
        NewEvent(
            event_id=new_id(),
            aggregate_type=aggregate_type,
            aggregate_id=aggregate_id,
            version=after_version + offset,
            type=type_,
            schema_version=1,
            occurred_at=utc_now(),
            tenant_id=tenant_id,
            actor=ACTOR,
            command_id=command_id,
            correlation_id=command_id,
            causation_id=command_id,
            payload={"n": after_version + offset, "text": "héllo ✓", "nested": {"b": [1, 2.5]}},
        )
        for offset in range(1, count + 1)
    ]


async def tamper(
    store: EventStore, aggregate_id: str, version: int, payload: dict[str, Any]
) -> None:
    """Rewrite one stored event's payload behind the store's back."""
    if isinstance(store, InMemoryEventStore):
        stream = store.streams[aggregate_id]
        index = version - 1
        stream[index] = replace(stream[index], payload=payload)
        return
    if isinstance(store, KafkaEventStore):
        store = store.mirror  # the log itself is immutable: its readers read the mirror
    assert isinstance(store, SqlEventLog)
    await execute_raw(store,
        "UPDATE kasal_events SET payload = :p WHERE aggregate_id = :a AND version = :v",
        p=json.dumps(payload),
        a=aggregate_id,
        v=version,
    )


# --- realistic commands ----------------------------------------------------------------
def ctx(tenant_id: str = TENANT, **kwargs: Any) -> CommandContext:
    return CommandContext(tenant_id, ACTOR, **kwargs)


def agent_command(role: str = "Researcher", **changes: Any) -> m.RegisterAgent:
    return m.RegisterAgent(
        role=role,
        goal=f"{role}: find the facts",
        backstory="A careful analyst.",
        tools=["calculator"],
        **changes,
    )


def crew_command(agent_ids: Sequence[str], name: str = "research") -> m.DefineCrew:
    return m.DefineCrew(
        name=name,
        agents=list(agent_ids),
        tasks=[
            {
                "name": "find",
                "description": "Find {topic}",
                "expected_output": "A list of facts",
                "agent": agent_ids[0],
            },
            {
                "name": "write",
                "description": "Write about {topic}",
                "expected_output": "A short report",
                "agent": agent_ids[-1],
                "context": ["find"],
            },
        ],
    )


@dataclass
class Scenario:
    """The ids a scripted command sequence produced, and each command's result."""

    agents: list[str] = field(default_factory=list)
    crews: list[str] = field(default_factory=list)
    executions: list[str] = field(default_factory=list)
    api_keys: list[str] = field(default_factory=list)
    results: list[AppendResult] = field(default_factory=list)


async def run_scenario(bus: CommandBus, tenant_id: str = TENANT) -> Scenario:
    """Two agents, a crew, a knowledge source, an agent update naming it, an execution
    requested then cancelled, the crew and the source archived, an API key issued and
    revoked: every table the projector keeps."""
    out = Scenario()

    async def send(command: m.Command) -> AppendResult:
        result = await bus.dispatch(command, ctx(tenant_id))
        out.results.append(result)
        return result

    first = await send(agent_command("Researcher"))
    second = await send(agent_command("Writer"))
    out.agents = [first.aggregate_id, second.aggregate_id]
    crew = await send(crew_command(out.agents))
    out.crews = [crew.aggregate_id]
    knowledge = await send(m.AddKnowledgeSource(name="owls.txt", text="Owls hunt at night."))
    await send(
        m.UpdateAgent(
            agent_id=first.aggregate_id,
            role="Senior Researcher",
            goal="Find better facts",
            backstory="A careful analyst, promoted.",
            tools=["calculator", "search"],
            max_iter=7,
            knowledge_sources=[knowledge.aggregate_id],
        )
    )
    execution = await send(m.RequestExecution(crew_id=crew.aggregate_id, inputs={"topic": "owls"}))
    out.executions = [execution.aggregate_id]
    await send(m.CancelExecution(execution_id=execution.aggregate_id, reason="changed my mind"))
    await send(m.ArchiveCrew(crew_id=crew.aggregate_id))
    await send(m.ArchiveKnowledgeSource(knowledge_id=knowledge.aggregate_id))
    key = await send(
        m.IssueApiKey(
            name="ci",
            role="operator",
            key_hash=hashlib.sha256(new_id().encode()).hexdigest(),
            prefix="ksl_ci",
        )
    )
    out.api_keys = [key.aggregate_id]
    await send(m.RevokeApiKey(api_key_id=key.aggregate_id))
    return out


# --- reading read models back ------------------------------------------------------------
async def dump_tables(engine: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    """Every read-model table's rows, ordered by primary key."""
    dump: dict[str, list[dict[str, Any]]] = {}
    async with engine.connect() as conn:
        for table in [*s.read_model_tables(), s.tracking]:
            rows = await conn.execute(select(table).order_by(*table.primary_key.columns))
            dump[table.name] = [dict(row._mapping) for row in rows]
    return dump


class Progress:
    """An ``InProcessRuntime.on_progress`` listener to wait on, instead of sleeping."""

    def __init__(self) -> None:
        self.positions: list[int] = []
        self.changed = asyncio.Event()

    def __call__(self, _name: str, position: int) -> None:
        self.positions.append(position)
        self.changed.set()

    async def wait_until(
        self, condition: Callable[[], Awaitable[bool]], *, timeout: float = 15.0, what: str
    ) -> None:
        """Re-check ``condition`` after each committed batch; fail the test at the deadline.

        A batch's rows are committed before its listener runs, so a check made after
        ``clear`` never misses progress.
        """
        try:
            async with asyncio.timeout(timeout):
                while not await condition():
                    await self.changed.wait()
                    self.changed.clear()
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


def applier_of(projector: SqlProjector, event_type: str) -> dict[str, Any]:
    """The mutable applier table of the read model that projects ``event_type``, beyond the
    audit log (tests swap an applier to inject a failure)."""
    for model in projector.models:
        if event_type in model.apply_by_type and not model.reads_unreadable:
            return model.apply_by_type  # type: ignore[return-value]
    raise LookupError(event_type)


async def replayed_tables(database: Database, events: list[RecordedEvent]) -> dict[str, Any]:
    """The read models a fresh projector builds from ``events`` (the reference a live
    projection must equal)."""
    reference = await database.open_projector()
    await reference.rebuild()
    await reference.handle(events)
    return await dump_tables(reference.engine)


async def run_filed_run(bus: CommandBus, tenant_id: str = TENANT) -> str:
    """A crew whose tasks keep their answers as artifacts (text, and JSON), and a run of it
    recorded to its end: the artifacts' tables (not in ``run_scenario``, whose counts other
    tests assert)."""
    agent = await bus.dispatch(agent_command("Filer"), ctx(tenant_id))
    filed = crew_command([agent.aggregate_id], name="filed").model_dump()
    filed["tasks"][0]["output_file"] = "notes/{topic}.md"
    filed["tasks"][1] |= {"output_file": "report.json", "output_schema": {"type": "object"}}
    crew = await bus.dispatch(m.DefineCrew(**filed), ctx(tenant_id))
    run = await bus.dispatch(m.RequestExecution(crew_id=crew.aggregate_id,
                                                inputs={"topic": "owls"}), ctx(tenant_id))
    await bus.dispatch(m.RecordSteps(execution_id=run.aggregate_id, steps=[
        m.Step(kind="start"),
        m.Step(kind="task_started", task_name="find"),
        m.Step(kind="task_completed", task_name="find", output="Owls hunt at night."),
        m.Step(kind="task_started", task_name="write"),
        m.Step(kind="task_completed", task_name="write", output='{"owls": 2}',
               output_json={"owls": 2}),
        m.Step(kind="complete", output='{"owls": 2}', usage={}),
    ]), ctx(tenant_id))
    return run.aggregate_id
