"""Nothing a client sends produces a 500, and a refused request changes nothing: on the
embedded SQLite, the embedded PostgreSQL and the distributed deployment (issue 11 items 2
and 3). One deployment serves every example of its run; each request carries its own
``X-Correlation-ID``, and after a refusal no event in the log carries it (the runner's own
appends, of runs that other examples started, do not blur the check)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.ids import new_id
from tests.e2e.conftest import DEPLOYMENTS, App, create_agent, create_crew, open_app
from tests.waiting import until

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                 max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from([
    "role", "goal", "backstory", "llm", "tools", "max_iter", "allow_delegation", "name",
    "process", "agents", "tasks", "manager_llm", "crew_id", "inputs", "timeout_s", "reason",
    "description", "expected_output", "agent", "context",
])
raw_bodies = st.sampled_from([
    b'{"role": "R", "goal": "g", "backstory": "b", "max_iter": NaN}',
    b'{"crew_id": "KNOWN_CREW", "inputs": {"topic": Infinity}}',
    b'{"crew_id": "KNOWN_CREW", "inputs": {"topic": "x"}, "timeout_s": -Infinity}',
    b'{"role": "R", "goal": "g", "backstory": "b", "tools": ["\\ud800"]}',
    b"\xff\xfe not utf-8", b"", b"[]", b"null", b'{"a": 1e999}',
])
bodies = st.one_of(json_values, st.dictionaries(field_names, json_values, max_size=8), raw_bodies)
ids = st.sampled_from(
    ["KNOWN_AGENT", "KNOWN_CREW", "KNOWN_RUN", "nope", "0" * 36, "%00", "..", "a" * 65, "%20",
     "%2E%2E/x", "a/%2E%2E/%2E%2E/b", "%2Fetc", "a%5Cb", ".env", "x" * 300, "d/", "%ED%A0%80"]
)
headers = st.fixed_dictionaries({}, optional={
    "If-Match": st.sampled_from(['"1"', "1", "W/\"2\"", "abc", "", '"-1"', "99999999999"]),
    "Idempotency-Key": st.sampled_from(["k1", "k1", "  ", "x" * 300, "ok-key"]),
})
requests = st.tuples(
    st.sampled_from([
        ("POST", "/api/v1/agents"), ("PUT", "/api/v1/agents/{id}"),
        ("DELETE", "/api/v1/agents/{id}"), ("POST", "/api/v1/crews"),
        ("PUT", "/api/v1/crews/{id}"), ("POST", "/api/v1/executions"),
        ("POST", "/api/v1/executions/{id}/cancel"), ("POST", "/api/v1/api-keys"),
        ("GET", "/api/v1/executions"), ("GET", "/api/v1/agents/{id}"),
        ("PUT", "/api/v1/workspace/files/{id}"), ("GET", "/api/v1/workspace/files/{id}"),
        ("DELETE", "/api/v1/workspace/files/{id}"),
    ]),
    ids,
    bodies,
    headers,
    st.one_of(st.none(), st.text(max_size=10), st.integers(min_value=-1, max_value=10**20)),
)


@dataclass
class Fuzzed:
    app: App
    client: httpx.AsyncClient
    known: dict[str, str]


@pytest.fixture(params=DEPLOYMENTS)
async def fuzzed(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Fuzzed]:
    async with open_app(request.param, tmp_path) as app, await app.client("acme") as client:
        agent = await create_agent(client)
        crew = await create_crew(client, agent)
        started = await client.post("/api/v1/executions",
                                    json={"crew_id": crew, "inputs": {"topic": "owls"}})
        assert started.status_code == 202, started.text
        run = started.json()["id"]
        cancelled = await client.post(f"/api/v1/executions/{run}/cancel", json={})
        assert cancelled.status_code in (200, 202, 409), cancelled.text

        async def ended() -> bool:
            found = await client.get(f"/api/v1/executions/{run}")
            return found.json()["status"] in ("cancelled", "completed", "failed")

        await until(ended, timeout=60, what="the known run to end")
        yield Fuzzed(app, client, {"KNOWN_AGENT": agent, "KNOWN_CREW": crew, "KNOWN_RUN": run})


async def send(fuzzed: Fuzzed, request: tuple[Any, ...]) -> None:
    (method, path), id_, body, extra, limit = request
    store, known = fuzzed.app.kasal.store, fuzzed.known
    url = path.replace("{id}", known.get(id_, id_))
    params = {"limit": limit, "offset": limit} if limit is not None else None
    correlation = f"fuzz-{new_id()}"
    extra = {**extra, "X-Correlation-ID": correlation}
    head = await store.head_position()
    if isinstance(body, bytes):
        raw = body.replace(b"KNOWN_CREW", known["KNOWN_CREW"].encode())
        response = await fuzzed.client.request(
            method, url, content=raw, params=params,
            headers={**extra, "Content-Type": "application/json"})
    else:
        response = await fuzzed.client.request(method, url, json=body, headers=extra,
                                               params=params)
    assert response.status_code < 500, (method, url, body, response.text)
    if response.status_code >= 400:
        assert response.json()["message"], response.text
        appended = [e for e in await store.read_all(head, 10_000)
                    if e.correlation_id == correlation]
        assert appended == [], f"a refusal appended: {appended}"


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(batch=st.lists(requests, min_size=1, max_size=12))
async def test_no_request_gets_a_500_and_refusals_append_nothing(
    fuzzed: Fuzzed, batch: list[tuple[Any, ...]],
) -> None:
    for request in batch:
        await send(fuzzed, request)
