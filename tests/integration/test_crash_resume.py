"""SIGKILL a real `kasal serve` in the middle of a run; the next start resumes the run from
its last completed task, answering recorded LLM calls from the log instead of the model."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

KASAL = str(Path(sys.executable).parent / "kasal")
TASKS = 6


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)  # polling a subprocess we do not control, with a deadline
    raise AssertionError(f"timed out waiting for {what}")


class Server:
    def __init__(self, data_dir: Path, log: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "KASAL_DATA_DIR": str(self.data_dir)}
        self.process = subprocess.Popen(
            [KASAL, "serve", "--port", str(self.port)], env=env,
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT,
        )
        wait_until(self.live, 60, "kasal serve to answer")

    def live(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"kasal serve exited: {self.log.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        key = (self.data_dir / "admin.key").read_text().strip()
        return httpx.Client(base_url=f"{self.url}/api/v1", timeout=30,
                            headers={"Authorization": f"Bearer {key}"})

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    server = Server(tmp_path / "data", tmp_path / "serve.log")
    yield server
    server.stop()


def timeline(client: httpx.Client, execution_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/executions/{execution_id}/timeline")
    return list(response.json().get("items", [])) if response.status_code == 200 else []


def test_sigkill_mid_run_resumes_without_repeating_llm_calls(server: Server) -> None:
    server.start()
    with server.client() as client:
        agent = client.post("/agents", json={
            "role": "Planner", "goal": "Plan {topic}", "backstory": "Plans things.",
            "llm": "kasal-offline/slow"}).json()["id"]
        crew = client.post("/crews", json={"name": "long", "agents": [agent], "tasks": [
            {"name": f"step{i}", "description": f"Step {i} of planning {{topic}}.",
             "expected_output": "A short plan step.", "agent": agent} for i in range(TASKS)
        ]}).json()["id"]
        execution_id = client.post("/executions", json={
            "crew_id": crew, "inputs": {"topic": "a launch"}}).json()["id"]

        def two_tasks_done() -> bool:
            types = [e["type"] for e in timeline(client, execution_id)]
            return types.count("ExecutionTaskCompleted") >= 2

        wait_until(two_tasks_done, 60, "two tasks to complete")
    server.kill()  # SIGKILL: no shutdown code runs

    server.start()  # the same data dir: the runner resumes what the log left running
    with server.client() as client:
        def ended() -> dict[str, Any] | None:
            view = client.get(f"/executions/{execution_id}").json()
            return view if view["status"] in ("completed", "failed", "cancelled") else None

        view = wait_until(ended, 120, "the resumed execution to end")
        events = timeline(client, execution_id)
    assert view["status"] == "completed", view["error"]
    types = [e["type"] for e in events]
    assert types.count("ExecutionStarted") == 1
    completed = [e["task_name"] for e in events if e["type"] == "ExecutionTaskCompleted"]
    assert completed == [f"step{i}" for i in range(TASKS)]  # each task once, in order
    hashes = [e["data"]["call"]["request_hash"] for e in events
              if e["type"] == "ExecutionLlmCallCompleted"]
    assert len(hashes) == len(set(hashes)), "an LLM call recorded before the kill was made again"
    completion = events[-1]["data"]
    assert completion["usage"]["replayed_llm_calls"] >= 2  # the calls of the finished tasks
