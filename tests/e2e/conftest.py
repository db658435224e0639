from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from api.auth import generate_key, hash_key, key_prefix
from commands import messages as m
from commands.context import CommandContext
from kasal.bootstrap import Kasal, bootstrap
from kasal.settings import Settings
from kasal.web import build_app
from tests.pg import create_database, drop_database


@dataclass
class App:
    kasal: Kasal
    http: httpx.AsyncClient

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


@pytest.fixture(params=["sqlite", "postgres"])
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    """Kasal over HTTP: embedded on SQLite, and with DATABASE_TYPE=postgres."""
    database_url = None
    env: dict[str, object] = {}
    if request.param == "postgres":
        database_url = await create_database()
        env = {"DATABASE_TYPE": "postgres", "DATABASE_URL": database_url}
    kasal = await bootstrap(settings_for(tmp_path, **env))
    await kasal.start()
    asgi = build_app(kasal, manage_lifecycle=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(asgi), base_url="http://kasal"
    ) as http:
        yield App(kasal, http)
    await kasal.stop()
    if database_url:
        await drop_database(database_url)


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
