"""Live SSE over a real HTTP server: disconnect in the middle of a run, reconnect with
Last-Event-ID, and get exactly the events missed, then the rest live."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path

import httpx
import pytest
import uvicorn

from kasal.bootstrap import bootstrap
from kasal.web import build_app
from tests.e2e.conftest import AGENT, App, settings_for
from tests.waiting import until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def read_events(response: httpx.Response, stop_after: int | None = None) -> list[dict]:
    events: list[dict] = []
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            continue
        if line:
            key, _, value = line.partition(": ")
            fields[key] = value
            continue
        if fields:
            events.append({"id": int(fields["id"]), "event": fields["event"],
                           "data": json.loads(fields["data"])})
            fields = {}
            if stop_after is not None and len(events) >= stop_after:
                break
    return events


async def test_a_client_that_disconnects_mid_run_resumes_with_last_event_id(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    kasal = await bootstrap(settings_for(tmp_path))
    await kasal.start()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(build_app(kasal, manage_lifecycle=False),
                                           host="127.0.0.1", port=port, log_config=None))
    serving = asyncio.create_task(server.serve())
    try:
        await until(lambda: server.started, what="uvicorn to start")
        key = await App(kasal, httpx.AsyncClient()).key("acme", "admin")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=60,
                                     headers={"Authorization": f"Bearer {key}"}) as client:
            agent = (await client.post("/agents", json={
                **AGENT, "llm": "kasal-test/slow"})).json()["id"]
            crew = (await client.post("/crews", json={"name": "slow", "agents": [agent],
                    "tasks": [{"name": f"t{i}", "description": f"Part {i} of {{topic}}.",
                               "expected_output": "Text.", "agent": agent}
                              for i in range(4)]})).json()["id"]
            run = (await client.post("/executions", json={
                "crew_id": crew, "inputs": {"topic": "x"}})).json()
            url = f"/executions/{run['id']}/events"
            params = {"min_position": run["position"]}
            async with client.stream("GET", url, params=params) as response:
                first = await read_events(response, stop_after=3)  # then hang up
            assert [e["id"] for e in first] == [1, 2, 3]
            async with client.stream("GET", url, headers={"Last-Event-ID": "3"}) as response:
                rest = await read_events(response)
            # what a browser's EventSource sends when the finished stream closes: it must
            # close at once (not hang on keep-alives)
            last = str(rest[-1]["id"])
            async with client.stream("GET", url, headers={"Last-Event-ID": last}) as response:
                after_the_end = await asyncio.wait_for(read_events(response), timeout=10)
    finally:
        server.should_exit = True
        await serving
        await kasal.stop()
    ids = [e["id"] for e in first + rest]
    assert ids == list(range(1, len(ids) + 1)), "an event was lost or repeated"
    assert rest[-1]["event"] == "ExecutionCompleted"
    assert sum(e["event"] == "ExecutionTaskCompleted" for e in rest) == 4
    assert after_the_end == []
    # hanging up mid-stream is what clients do: nothing above DEBUG about it
    loud = [r for r in caplog.records if r.levelno > logging.DEBUG
            and (r.levelno >= logging.WARNING or r.exc_info or "disconnect" in r.getMessage())]
    assert not loud, [f"{r.name}: {r.getMessage()}" for r in loud]
