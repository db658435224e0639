from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from commands.errors import StoreUnavailable
from kasal.bootstrap import bootstrap
from kasal.web import build_app
from tests.e2e.conftest import AGENT, App, create_agent, create_crew, open_app, settings_for


async def test_a_write_is_readable_at_the_position_it_returns(acme: httpx.AsyncClient) -> None:
    created = await acme.post("/api/v1/agents", json=AGENT)
    body = created.json()
    assert created.status_code == 201
    assert created.headers["Location"] == f"/api/v1/agents/{body['id']}"
    assert body["version"] == 1 and body["position"] > 0
    read = await acme.get(f"/api/v1/agents/{body['id']}",
                          params={"min_position": body["position"]})
    assert read.status_code == 200
    assert read.json()["role"] == "Researcher"
    assert read.headers["ETag"] == '"1"'
    assert int(read.headers["X-Kasal-Position"]) >= body["position"]


async def test_a_position_past_the_logs_head_is_refused_at_once(
    acme: httpx.AsyncClient,
) -> None:
    """No write answered with a position past the head: waiting the whole timeout for it
    would only tie up the request. The answer names the head (every deployment)."""
    written = await acme.post("/api/v1/agents", json=AGENT)
    head = written.json()["position"]
    response = await acme.get("/api/v1/agents", params={"min_position": 10**9})
    assert response.status_code == 422
    assert response.json()["error"] == "min_position_ahead"
    assert "min_position 1000000000 is past the log's head" in response.json()["message"]
    assert int(response.json()["message"].split("head (")[1].split(")")[0]) >= head
    assert (await acme.get("/api/v1/agents", params={"min_position": head})).status_code == 200


async def test_lists_filter_archived_agents_and_paginate(acme: httpx.AsyncClient) -> None:
    ids = [await create_agent(acme, role=f"R{i}") for i in range(3)]
    archived = await acme.delete(f"/api/v1/agents/{ids[0]}")
    page = await acme.get("/api/v1/agents", params={
        "min_position": archived.json()["position"], "limit": 1})
    assert page.json()["total"] == 2
    assert len(page.json()["items"]) == 1
    everything = await acme.get("/api/v1/agents", params={"include_archived": True})
    assert everything.json()["total"] == 3


async def test_requests_without_a_valid_key_are_401(app: App) -> None:
    missing = await app.http.get("/api/v1/agents")
    wrong = await app.http.get("/api/v1/agents", headers={"Authorization": "Bearer kasal_nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization: Bearer" in missing.json()["message"]


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("viewer", {"read"}),
        ("operator", {"read", "run"}),
        ("editor", {"read", "run", "define"}),
        ("admin", {"read", "run", "define", "keys"}),
    ],
)
async def test_roles_grant_what_they_name(app: App, role: str, allowed: set[str]) -> None:
    async with await app.client("acme", "admin") as admin:
        agent_id = await create_agent(admin)
        crew_id = await create_crew(admin, agent_id)
    async with await app.client("acme", role) as client:
        outcomes = {
            "read": await client.get("/api/v1/crews"),
            "run": await client.post("/api/v1/executions",
                                     json={"crew_id": crew_id, "inputs": {"topic": "x"}}),
            "define": await client.post("/api/v1/agents", json=AGENT),
            "keys": await client.get("/api/v1/api-keys"),
        }
    granted = {name for name, r in outcomes.items() if r.status_code < 300}
    assert granted == allowed
    for name in outcomes.keys() - allowed:
        assert outcomes[name].status_code == 403
        assert f"your key has {role}" in outcomes[name].json()["message"]


async def test_an_admin_issues_a_key_that_works_at_once_and_revokes_it(
    app: App, acme: httpx.AsyncClient
) -> None:
    issued = await acme.post("/api/v1/api-keys", json={"name": "ci", "role": "viewer"})
    assert issued.status_code == 201
    key = issued.json()["key"]
    headers = {"Authorization": f"Bearer {key}"}
    assert (await app.http.get("/api/v1/agents", headers=headers)).status_code == 200
    listed = await acme.get("/api/v1/api-keys")
    assert key not in listed.text and "key_hash" not in listed.text
    revoked = await acme.delete(f"/api/v1/api-keys/{issued.json()['id']}")
    await acme.get("/api/v1/api-keys", params={"min_position": revoked.json()["position"]})
    assert (await app.http.get("/api/v1/agents", headers=headers)).status_code == 401


async def test_another_tenants_resources_are_404(
    acme: httpx.AsyncClient, globex: httpx.AsyncClient
) -> None:
    agent_id = await create_agent(acme)
    crew_id = await create_crew(acme, agent_id)
    await acme.get("/api/v1/crews", params={"min_position": 3})
    assert (await globex.get(f"/api/v1/agents/{agent_id}")).status_code == 404
    assert (await globex.get(f"/api/v1/crews/{crew_id}")).status_code == 404
    assert (await globex.put(f"/api/v1/agents/{agent_id}", json=AGENT)).status_code == 404
    assert (await globex.delete(f"/api/v1/crews/{crew_id}")).status_code == 404
    assert (await globex.get(f"/api/v1/audit/agent/{agent_id}")).status_code == 404
    assert (await globex.get("/api/v1/agents")).json()["total"] == 0
    borrowed = await globex.post("/api/v1/executions", json={"crew_id": crew_id})
    assert borrowed.status_code == 422
    assert "not found" in borrowed.json()["message"]


async def test_a_stale_if_match_is_409_and_changes_nothing(acme: httpx.AsyncClient) -> None:
    agent_id = await create_agent(acme)
    first = await acme.put(f"/api/v1/agents/{agent_id}", json={**AGENT, "role": "Writer"},
                           headers={"If-Match": '"1"'})
    assert first.status_code == 200 and first.json()["version"] == 2
    stale = await acme.put(f"/api/v1/agents/{agent_id}", json={**AGENT, "role": "Editor"},
                           headers={"If-Match": '"1"'})
    assert stale.status_code == 409
    assert "at version 2, not 1" in stale.json()["message"]
    now = await acme.get(f"/api/v1/agents/{agent_id}",
                         params={"min_position": first.json()["position"]})
    assert (now.json()["role"], now.json()["version"]) == ("Writer", 2)


async def test_cancelling_twice_is_409(acme: httpx.AsyncClient) -> None:
    crew_id = await create_crew(acme, await create_agent(acme, llm="kasal-test/slow"))
    run = await acme.post("/api/v1/executions", json={"crew_id": crew_id,
                                                      "inputs": {"topic": "x"}})
    assert run.status_code == 202
    run_id = run.json()["id"]
    cancel = await acme.post(f"/api/v1/executions/{run_id}/cancel", json={"reason": "no"})
    assert cancel.status_code == 202
    events = await acme.get(f"/api/v1/executions/{run_id}/events")  # ends when the run does
    assert "event: ExecutionCancelled" in events.text
    again = await acme.post(f"/api/v1/executions/{run_id}/cancel")
    assert again.status_code == 409
    assert "is cancelled" in again.json()["message"]
    view = await acme.get(f"/api/v1/executions/{run_id}")
    assert (view.json()["status"], view.json()["cancel_reason"]) == ("cancelled", "no")
    timeline = await acme.get(f"/api/v1/executions/{run_id}/timeline")
    types = [i["type"] for i in timeline.json()["items"]]
    assert types[0] == "ExecutionRequested" and types[-1] == "ExecutionCancelled"


async def test_an_idempotency_key_makes_a_retry_safe(acme: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "create-researcher-1"}
    first = await acme.post("/api/v1/agents", json=AGENT, headers=headers)
    retry = await acme.post("/api/v1/agents", json=AGENT, headers=headers)
    assert (first.status_code, retry.status_code) == (201, 201)
    assert first.json() == retry.json()
    listed = await acme.get("/api/v1/agents", params={"min_position": first.json()["position"]})
    assert listed.json()["total"] == 1
    reused = await acme.post("/api/v1/agents", json={**AGENT, "role": "Other"}, headers=headers)
    assert reused.status_code == 422
    assert "already used for a different request" in reused.json()["message"]


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/api/v1/agents", {"goal": "g", "backstory": "b"}, "role: Field required"),
        ("/api/v1/agents", {**AGENT, "role": ""}, "role: String should have at least 1"),
        ("/api/v1/agents", {**AGENT, "max_iter": 0}, "max_iter"),
        ("/api/v1/agents", {**AGENT, "colour": "red"}, "colour: Extra inputs are not permitted"),
        ("/api/v1/agents", {**AGENT, "tools": "calculator"}, "tools: Input should be a valid list"),
        ("/api/v1/agents", [1, 2], "valid dictionary"),
        ("/api/v1/crews", {"name": "c", "agents": [], "tasks": []}, "agents: List should have"),
        ("/api/v1/crews", {"name": "c", "agents": ["x"], "process": "parallel",
                           "tasks": [{"name": "t", "description": "d",
                                      "expected_output": "o"}]}, "process"),
        ("/api/v1/executions", {"crew_id": "x", "inputs": {"a": [1]}}, "inputs.a"),
        ("/api/v1/executions", {"crew_id": "x", "timeout_s": -1}, "timeout_s"),
    ],
)
async def test_malformed_input_is_422_with_what_to_fix(
    acme: httpx.AsyncClient, path: str, body: object, needle: str
) -> None:
    response = await acme.post(path, json=body)
    assert response.status_code == 422, response.text
    assert needle in response.json()["message"]


async def test_broken_json_and_bad_headers_are_422(acme: httpx.AsyncClient) -> None:
    broken = await acme.post("/api/v1/agents", content=b'{"role": ',
                             headers={"Content-Type": "application/json"})
    assert broken.status_code == 422
    assert "JSON" in broken.json()["message"]
    agent_id = await create_agent(acme)
    bad_if_match = await acme.put(f"/api/v1/agents/{agent_id}", json=AGENT,
                                  headers={"If-Match": "yesterday"})
    assert bad_if_match.status_code == 422
    assert "If-Match must be a version number" in bad_if_match.json()["message"]
    bad_key = await acme.post("/api/v1/agents", json=AGENT, headers={"Idempotency-Key": "a b"})
    assert bad_key.status_code == 422
    bad_limit = await acme.get("/api/v1/agents", params={"limit": 0})
    assert bad_limit.status_code == 422 and "limit" in bad_limit.json()["message"]
    huge_offset = await acme.get("/api/v1/agents", params={"offset": 10**20})
    assert huge_offset.status_code == 422 and "offset" in huge_offset.json()["message"]
    for path in (f"/api/v1/agents/{'a' * 65}", "/api/v1/agents/%20", f"/api/v1/crews/{'c' * 70}"):
        refused = await acme.delete(path)
        assert refused.status_code == 422, (path, refused.text)
        assert "agent_id" in refused.json()["message"] or "crew_id" in refused.json()["message"]
    long_cancel = await acme.post(f"/api/v1/executions/{'x' * 70}/cancel")
    assert long_cancel.status_code == 422


async def test_a_crew_must_be_valid_as_a_whole(acme: httpx.AsyncClient) -> None:
    agent_id = await create_agent(acme)
    response = await acme.post("/api/v1/crews", json={
        "name": "c", "agents": [agent_id],
        "tasks": [{"name": "a", "description": "d", "expected_output": "o", "agent": agent_id,
                   "context": ["b"]}],
    })
    assert response.status_code == 422
    assert "tasks[0].context names 'b'" in response.json()["message"]


async def test_a_run_missing_an_input_is_422_at_request_time(acme: httpx.AsyncClient) -> None:
    crew_id = await create_crew(acme, await create_agent(acme))
    response = await acme.post("/api/v1/executions", json={"crew_id": crew_id})
    assert response.status_code == 422
    assert "inputs is missing topic" in response.json()["message"]


async def test_the_audit_trail_shows_who_did_what_with_a_valid_chain(
    acme: httpx.AsyncClient,
) -> None:
    agent_id = await create_agent(acme)
    update = await acme.put(f"/api/v1/agents/{agent_id}", json={**AGENT, "role": "Writer"},
                            headers={"X-Correlation-ID": "ticket-42"})
    trail = await acme.get(f"/api/v1/audit/agent/{agent_id}",
                           params={"min_position": update.json()["position"]})
    body = trail.json()
    assert body["chain_valid"] is True
    assert [e["type"] for e in body["events"]] == ["AgentRegistered", "AgentUpdated"]
    assert body["events"][1]["correlation_id"] == "ticket-42"
    assert all(e["actor"].startswith("api_key:") for e in body["events"])
    assert body["events"][1]["prev_hash"] == body["events"][0]["hash"]


async def test_health_and_docs_routes(app: App) -> None:
    assert (await app.http.get("/health/live")).json() == {"status": "ok"}
    ready = await app.http.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["processors"] == "ok"
    for path in ("/api-docs", "/api-redoc", "/api-openapi.json"):
        assert (await app.http.get(path)).status_code == 200


async def test_docs_routes_are_absent_when_disabled(tmp_path: Path) -> None:
    kasal = await bootstrap(settings_for(tmp_path, DOCS_ENABLED=False))
    asgi = build_app(kasal, manage_lifecycle=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(asgi), base_url="http://k") as c:
        assert (await c.get("/api-docs")).status_code == 404
        assert (await c.get("/api-openapi.json")).status_code == 404
    await kasal.stop()


async def test_a_restart_resumes_projections_with_nothing_lost_or_doubled(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    first = await bootstrap(settings)
    await first.start()
    app = App(first, httpx.AsyncClient(transport=httpx.ASGITransport(
        build_app(first, manage_lifecycle=False)), base_url="http://kasal"))
    async with await app.client("acme") as client:
        for i in range(5):
            await create_agent(client, role=f"R{i}")
    await first.stop()  # stopped at whatever point the projector had reached

    second = await bootstrap(settings)
    await second.start()
    assert await second.wait_until_projected(5.0)
    page = await second.read_models.list_agents("acme")
    assert page.total == 5
    assert sorted(i["role"] for i in page.items) == [f"R{i}" for i in range(5)]
    await second.stop()


@pytest.mark.parametrize("failure", [
    StoreUnavailable("the outcome is unknown; retry with the same Idempotency-Key"),
    ConnectionRefusedError(111, "Connect call failed"),
], ids=["store-unavailable", "connection-refused"])
async def test_a_store_that_cannot_be_reached_is_503_with_retry_advice(
    app: App, acme: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, failure: Exception,
) -> None:
    async def unreachable(*_: object, **__: object) -> None:
        raise failure

    monkeypatch.setattr(app.kasal.bus.store, "append", unreachable)
    response = await acme.post("/api/v1/agents", json=AGENT)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "2"
    assert "retry" in response.json()["message"]


async def test_a_revoked_key_is_refused_by_every_api_process_once_the_revocation_answers(
    app: App, acme: httpx.AsyncClient
) -> None:
    """The race a probe won 30/30 times: the revocation answered, the projection had not yet
    applied it, and the next request with the key (even one issuing itself a new admin key)
    was let in. Now the answer waits until authentication refuses the key."""
    async with app.another_api_process() as other:
        for attempt in range(10):
            issued = await acme.post("/api/v1/api-keys",
                                     json={"name": f"doomed-{attempt}", "role": "admin"})
            assert issued.status_code == 201, issued.text
            headers = {"Authorization": f"Bearer {issued.json()['key']}"}
            assert (await app.http.get("/api/v1/agents", headers=headers)).status_code == 200
            revoked = await acme.delete(f"/api/v1/api-keys/{issued.json()['id']}")
            assert revoked.status_code == 200, revoked.text
            # at once, with no min_position: on this process, on another one, for a write
            assert (await app.http.get("/api/v1/agents", headers=headers)).status_code == 401
            assert (await other.get("/api/v1/agents", headers=headers)).status_code == 401
            itself = await app.http.post("/api/v1/api-keys", headers=headers,
                                         json={"name": "escape", "role": "admin"})
            assert itself.status_code == 401
        # revoking again is refused as before, and the key stays refused
        again = await acme.delete(f"/api/v1/api-keys/{issued.json()['id']}")
        assert again.status_code == 409 and again.json()["error"] == "already_archived"


async def test_a_revocation_the_read_model_has_not_applied_is_503_until_it_has(
    tmp_path: Path,
) -> None:
    """With the projector stopped the key stays accepted, so the DELETE must not say 200:
    it answers 503 revocation_pending; the same request retried once the projection runs
    answers 200, and from then on the key is refused."""
    async with open_app("sqlite", tmp_path) as app, await app.client("acme") as admin:
        issued = (await admin.post("/api/v1/api-keys", json={"name": "k", "role": "viewer"}))
        headers = {"Authorization": f"Bearer {issued.json()['key']}"}
        assert (await app.http.get("/api/v1/agents", headers=headers)).status_code == 200
        await app.kasal.runtime.stop()
        url, retry = f"/api/v1/api-keys/{issued.json()['id']}", {"Idempotency-Key": "rvk-1"}
        pending = await admin.delete(url, headers=retry)
        assert pending.status_code == 503, pending.text
        assert pending.json()["error"] == "revocation_pending"
        assert pending.headers["Retry-After"] == "1"
        await app.kasal.runtime.start()
        done = await admin.delete(url, headers=retry)
        assert done.status_code == 200, done.text
        assert done.json()["id"] == issued.json()["id"]
        assert (await app.http.get("/api/v1/agents", headers=headers)).status_code == 401


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v1/agents", {**AGENT, "role": "Re\x00searcher"}, "role"),
    ("/api/v1/agents", {**AGENT, "backstory": "half a pair \udfff"}, "backstory"),
    ("/api/v1/executions", {"crew_id": "c", "inputs": {"topic": "lone \ud800"}}, "inputs.topic"),
    ("/api/v1/executions", {"crew_id": "c", "inputs": {"to\x00pic": "x"}}, "inputs"),
], ids=["nul-in-role", "surrogate-in-backstory", "surrogate-in-input", "nul-in-input-key"])
async def test_text_no_store_can_hold_is_422_naming_the_field_and_appends_nothing(
    app: App, acme: httpx.AsyncClient, path: str, body: dict[str, object], field: str,
) -> None:
    """A NUL stalled the PostgreSQL projector for every tenant; a lone surrogate was a 500
    (the fingerprint's UTF-8). Both are refused where they enter, on every deployment."""
    head = await app.kasal.store.head_position()
    # JSON escapes (\\u0000, \\udfff), as a client's encoder sends them
    response = await acme.post(path, content=json.dumps(body),
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"
    assert any(d["field"].startswith(field) for d in response.json()["details"]), response.text
    assert any(why in response.text for why in ("NUL", "surrogate", "unicode")), response.text
    assert await app.kasal.store.head_position() == head


@pytest.mark.parametrize(("url", "where"), [
    ("/api/v1/agents/ab%00cd", "the path"),
    ("/api/v1/executions/%00/events", "the path"),
    ("/api/v1/search?q=owls%00", "query parameter 'q'"),
    ("/api/v1/agents?limit=5&x%00=1", "query parameter"),
], ids=["nul-in-an-id", "nul-alone", "nul-in-a-query", "nul-in-a-parameter-name"])
async def test_a_nul_in_the_url_is_422_before_it_reaches_a_store(
    acme: httpx.AsyncClient, url: str, where: str,
) -> None:
    """The HTTP fuzz on the distributed deployment found ``GET /agents/%00`` answered 503
    ("the read models' database is unavailable"): PostgreSQL refuses a NUL in a query too."""
    response = await acme.get(url)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"
    assert where in response.json()["message"] and "NUL" in response.json()["message"]
