"""Nothing a client sends produces a 500, and a refused request changes nothing."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import messages as m
from commands.context import CommandContext
from domain.api_key import generate_key, hash_key, key_prefix
from kasal.bootstrap import bootstrap
from kasal.settings import Settings
from kasal.web import build_app

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
    ["KNOWN_AGENT", "KNOWN_CREW", "KNOWN_RUN", "nope", "0" * 36, "%00", "..", "a" * 65, "%20"]
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
    ]),
    ids,
    bodies,
    headers,
    st.one_of(st.none(), st.text(max_size=10), st.integers(min_value=-1, max_value=10**20)),
)


def ctx() -> CommandContext:
    return CommandContext(tenant_id="acme", actor="test")


async def exercise(batch: list[tuple[Any, ...]], directory: Path) -> None:
    # no runner: its own appends would blur "a refusal appends nothing"
    kasal = await bootstrap(
        Settings(KASAL_DATA_DIR=directory, KASAL_MIN_POSITION_TIMEOUT=0.2), run_executions=False
    )
    await kasal.start()
    key = generate_key()
    await kasal.bus.dispatch(
        m.IssueApiKey(name="a", role="admin", key_hash=hash_key(key), prefix=key_prefix(key)), ctx()
    )
    agent = await kasal.bus.dispatch(m.RegisterAgent(role="R", goal="g", backstory="b"), ctx())
    crew = await kasal.bus.dispatch(m.DefineCrew(
        name="c", agents=[agent.aggregate_id],
        tasks=[m.TaskFields(name="t", description="d", expected_output="o",
                            agent=agent.aggregate_id)]), ctx())
    run = await kasal.bus.dispatch(m.RequestExecution(crew_id=crew.aggregate_id), ctx())
    known = {"KNOWN_AGENT": agent.aggregate_id, "KNOWN_CREW": crew.aggregate_id,
             "KNOWN_RUN": run.aggregate_id}
    app = build_app(kasal, manage_lifecycle=False)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://kasal",
            headers={"Authorization": f"Bearer {key}"},
        ) as client:
            for (method, path), id_, body, extra, limit in batch:
                url = path.replace("{id}", known.get(id_, id_))
                params = {"limit": limit, "offset": limit} if limit is not None else None
                head = await kasal.store.head_position()
                if isinstance(body, bytes):
                    raw = body.replace(b"KNOWN_CREW", known["KNOWN_CREW"].encode())
                    response = await client.request(
                        method, url, content=raw, params=params,
                        headers={**extra, "Content-Type": "application/json"},
                    )
                else:
                    response = await client.request(method, url, json=body, headers=extra,
                                                    params=params)
                assert response.status_code < 500, (method, url, body, response.text)
                if response.status_code >= 400:
                    assert response.json()["message"], response.text
                    assert await kasal.store.head_position() == head, "a refusal appended"
    finally:
        await kasal.stop()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batch=st.lists(requests, min_size=1, max_size=12))
def test_no_request_gets_a_500_and_refusals_append_nothing(batch: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(exercise(batch, Path(directory)))
