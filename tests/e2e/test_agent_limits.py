"""An agent's CrewAI limits (max_rpm, max_execution_time) are data in its events: defined,
read back, checked (422 naming the field), and absent from agents that set none."""

from __future__ import annotations

import httpx

from tests.e2e.conftest import AGENT, App


async def test_an_agents_limits_are_defined_read_back_and_checked(
    app: App, acme: httpx.AsyncClient,
) -> None:
    limited = await acme.post("/api/v1/agents", json={
        **AGENT, "max_rpm": 30, "max_execution_time": 120})
    assert limited.status_code == 201, limited.text
    plain = await acme.post("/api/v1/agents", json=AGENT)
    position = plain.json()["position"]
    read = (await acme.get(f"/api/v1/agents/{limited.json()['id']}",
                           params={"min_position": position})).json()
    assert (read["max_rpm"], read["max_execution_time"]) == (30, 120)
    other = (await acme.get(f"/api/v1/agents/{plain.json()['id']}")).json()
    assert (other["max_rpm"], other["max_execution_time"]) == (None, None)
    stored = await app.kasal.store.read_stream(plain.json()["id"])
    assert "max_rpm" not in stored[0].payload["spec"]  # unset: the payload agents always had

    head = await app.kasal.store.head_position()
    for field, value in (("max_rpm", 0), ("max_execution_time", 86_401)):
        refused = await acme.post("/api/v1/agents", json={**AGENT, field: value})
        assert refused.status_code == 422, refused.text
        assert refused.json()["details"][0]["field"] == field
    assert await app.kasal.store.head_position() == head
