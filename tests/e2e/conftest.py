from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from commands import messages as m
from commands.context import CommandContext
from domain.api_key import generate_key, hash_key, key_prefix
from kasal.bootstrap import Kasal, bootstrap
from kasal.settings import Settings
from kasal.web import build_app
from kasal.worker import run_worker
from tests.kafka import BOOTSTRAP, PARTITIONS, delete_topics, new_prefix, provision
from tests.pg import create_database, drop_database
from tests.qdrant import QDRANT_URL, drop_collections, qdrant_env

DEPLOYMENTS = ["sqlite", "postgres", pytest.param("distributed", marks=pytest.mark.kafka)]


@dataclass
class App:
    kasal: Kasal
    http: httpx.AsyncClient
    worker: asyncio.Task[None] | None = None  # the distributed deployment's worker

    @asynccontextmanager
    async def another_api_process(self) -> AsyncIterator[httpx.AsyncClient]:
        """A second API process over the same deployment (distributed: another role=api
        process; embedded: one that reads the same files and runs no processors)."""
        settings = self.kasal.settings
        if self.worker is not None:
            other = await bootstrap(settings, role="api")
            await other.start()
        else:
            other = await bootstrap(settings, run_executions=False, with_vectors=False)
            await other.start(run_processors=False)
        try:
            asgi = build_app(other, manage_lifecycle=False)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(asgi), base_url="http://kasal"
            ) as http:
                yield http
        finally:
            await other.stop()

    async def key(self, tenant: str, role: str) -> str:
        key = generate_key()
        await self.kasal.bus.dispatch(
            m.IssueApiKey(name=f"{tenant}-{role}", role=role, key_hash=hash_key(key),
                          prefix=key_prefix(key)),
            CommandContext(tenant_id=tenant, actor="test"),
        )
        return key

    async def client(self, tenant: str, role: str = "admin") -> httpx.AsyncClient:
        key = await self.key(tenant, role)
        return httpx.AsyncClient(
            transport=self.http._transport, base_url="http://kasal",
            headers={"Authorization": f"Bearer {key}"},
        )


def settings_for(data_dir: Path, **env: object) -> Settings:
    return Settings(KASAL_DATA_DIR=data_dir, KASAL_MIN_POSITION_TIMEOUT=1.0, **env)


@asynccontextmanager
async def embedded_app(settings: Settings) -> AsyncIterator[App]:
    """Embedded Kasal over HTTP (in-process ASGI) with a test's own settings."""
    kasal = await bootstrap(settings)
    await kasal.start()
    try:
        asgi = build_app(kasal, manage_lifecycle=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(asgi),
                                     base_url="http://kasal") as http:
            yield App(kasal, http)
    finally:
        await kasal.stop()


@asynccontextmanager
async def open_app(deployment: str, data_dir: Path, **extra: object) -> AsyncIterator[App]:
    """Kasal over HTTP on one deployment.

    ``sqlite``: embedded. ``postgres``: embedded with DATABASE_TYPE=postgres.
    ``distributed``: KASAL_MODE=distributed on a private Kafka topic prefix and database:
    a ``kasal worker`` (run in this process: the partitions' writer, the log mirror, the
    projectors and the runner) and the API process's Kasal, which runs only the live feed;
    both search the test Qdrant server when there is one (collections of the prefix).
    ``extra``: more settings, for every process alike.
    """
    database_url = None
    env: dict[str, object] = {}
    prefix = None
    if deployment in ("postgres", "distributed"):
        database_url = await create_database()
        env = {"DATABASE_TYPE": "postgres", "DATABASE_URL": database_url}
    if deployment == "distributed":
        prefix = new_prefix()
        provision(prefix)
        env |= {"KASAL_MODE": "distributed", "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
                "KASAL_KAFKA_PREFIX": prefix, "KASAL_KAFKA_PARTITIONS": PARTITIONS}
        if QDRANT_URL:
            env |= qdrant_env(prefix)
    stop = asyncio.Event()
    worker: asyncio.Task[None] | None = None
    try:
        settings = settings_for(data_dir, **env, **extra)
        if deployment == "distributed":
            leading = asyncio.Event()
            worker = asyncio.create_task(run_worker(settings, stop, leading=leading))
            await asyncio.wait({worker, asyncio.create_task(leading.wait())},
                               return_when=asyncio.FIRST_COMPLETED)
            if worker.done():
                await worker  # it failed: raise its error
        kasal = await bootstrap(settings, role="api" if worker else "all")
        await kasal.start()
        try:
            asgi = build_app(kasal, manage_lifecycle=False)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(asgi), base_url="http://kasal"
            ) as http:
                yield App(kasal, http, worker)
        finally:
            await kasal.stop()
    finally:
        stop.set()
        if worker is not None:
            await worker
        if database_url:
            await drop_database(database_url)
        if prefix:
            delete_topics(prefix)
            if QDRANT_URL:
                drop_collections(prefix)


@pytest.fixture(params=DEPLOYMENTS)
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    async with open_app(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
async def acme(app: App) -> AsyncIterator[httpx.AsyncClient]:
    async with await app.client("acme") as client:
        yield client


@pytest.fixture
async def globex(app: App) -> AsyncIterator[httpx.AsyncClient]:
    async with await app.client("globex") as client:
        yield client


AGENT = {"role": "Researcher", "goal": "Find facts", "backstory": "Analyst", "tools": []}


async def create_agent(client: httpx.AsyncClient, **changes: object) -> str:
    response = await client.post("/api/v1/agents", json={**AGENT, **changes})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def create_crew(client: httpx.AsyncClient, agent_id: str) -> str:
    response = await client.post(
        "/api/v1/crews",
        json={
            "name": "research",
            "agents": [agent_id],
            "tasks": [{"name": "find", "description": "Find {topic}",
                       "expected_output": "notes", "agent": agent_id}],
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])
