"""A projector that meets an event it cannot apply does not hide: the deployment turns
not-ready naming the processor, the event and the error, an operator sees the event and sets
it aside, and the projector goes on (the audit log keeps the event)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from domain.envelope import NewEvent, utc_now
from domain.ids import new_id
from kasal.cli import main
from kasal.cli_operations import failure_reports
from projections.processor_health import quarantine_event
from tests.e2e.conftest import AGENT, App, create_agent, open_app
from tests.waiting import until

GOOD_SPEC = {"role": "R", "goal": "g", "backstory": "b", "llm": "kasal-offline/default",
             "tools": [], "allow_delegation": False, "max_iter": 5}


def registered(spec: dict[str, object]) -> NewEvent:
    """An AgentRegistered written past the API (an older Kasal, a repair script)."""
    command_id = new_id()
    return NewEvent(
        event_id=new_id(), aggregate_type="agent", aggregate_id=new_id(), version=1,
        type="AgentRegistered", schema_version=1, occurred_at=utc_now(), tenant_id="acme",
        actor="test:past-the-api", command_id=command_id, correlation_id=command_id,
        causation_id=command_id, payload={"spec": spec},
    )


POISON = {
    # a read model cannot be built from it on any store (no llm)
    "malformed": {k: v for k, v in GOOD_SPEC.items() if k != "llm"},
    # PostgreSQL refuses the NUL in agents.role (SQLite would store it)
    "nul": {**GOOD_SPEC, "role": "Re\x00searcher"},
}


@pytest.fixture(params=["postgres", pytest.param("distributed", marks=pytest.mark.kafka)])
async def postgres_app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[App]:
    """The deployments whose read models are in PostgreSQL (which refuses NUL)."""
    async with open_app(request.param, tmp_path) as opened:
        yield opened


async def test_a_malformed_event_is_reported_then_set_aside_on_every_deployment(
    app: App, acme: httpx.AsyncClient,
) -> None:
    await stuck_then_set_aside(app, acme, POISON["malformed"])


async def test_a_nul_past_the_api_is_reported_then_set_aside_on_postgresql(
    postgres_app: App,
) -> None:
    async with await postgres_app.client("acme") as acme:
        await stuck_then_set_aside(postgres_app, acme, POISON["nul"])


async def stuck_then_set_aside(app: App, acme: httpx.AsyncClient, spec: dict[str, object]
                               ) -> None:
    before = await create_agent(acme, role="Before")
    bad = await app.kasal.store.append([registered(spec)], expected_version=0)
    after = (await acme.post("/api/v1/agents", json={**AGENT, "role": "After"})).json()

    async def not_ready() -> bool:
        return (await app.http.get("/health/ready")).status_code == 503

    await until(not_ready, timeout=30, what="readiness to name the stuck projector")
    ready = (await app.http.get("/health/ready")).json()
    assert f"sql cannot get past position {bad.position}" in ready["processors"], ready
    # an unauthenticated health check names no aggregate and no error text (tenant data)
    assert bad.aggregate_id not in str(ready) and "Error" not in ready["processors"], ready
    # reads still answer what was projected before it, and say they are behind past it
    assert (await acme.get(f"/api/v1/agents/{before}")).status_code == 200
    behind = await acme.get("/api/v1/agents", params={"min_position": after["position"]})
    assert behind.status_code == 503 and behind.json()["error"] == "projection_behind"

    report = "\n".join(await failure_reports(app.kasal))
    assert f"position {bad.position}" in report and bad.aggregate_id in report
    assert "kasal projections quarantine" in report and "--payload to print it" in report

    await quarantine_event(app.kasal.projector.engine, "sql", bad.position, "test", by="test")

    async def ready_again() -> bool:
        return (await app.http.get("/health/ready")).status_code == 200

    await until(ready_again, timeout=60, what="the projector to go on")
    agents = await acme.get("/api/v1/agents", params={"min_position": after["position"]})
    assert agents.status_code == 200
    assert {a["role"] for a in agents.json()["items"]} == {"Before", "After"}
    trail = await acme.get(f"/api/v1/audit/agent/{bad.aggregate_id}")
    assert trail.status_code == 200 and trail.json()["events"][0]["type"] == "AgentRegistered"
    assert await failure_reports(app.kasal) == []


def test_the_quarantine_command_refuses_a_position_with_no_event(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["projections", "quarantine", "5", "--reason", "x",
                                       "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: there is no event at position 5"
