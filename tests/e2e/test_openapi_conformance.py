"""Schemathesis over the whole OpenAPI document of a real ``kasal serve`` (issue 11 item 3):
every phase (examples, coverage, fuzzing, stateful), a bounded run with a fixed seed, on the
embedded SQLite, the embedded PostgreSQL and the distributed deployment (a ``kasal worker``
beside the API process, searching the test Qdrant server), and no server error, no status code
the document does not list, no body or content type that breaks it. (Schema-valid requests
that a domain rule refuses, 422 naming the rule, are not counted against it: the document
cannot say "an agent that exists".)"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.kafka import BOOTSTRAP, PARTITIONS, WorkerProcess, delete_topics, new_prefix, provision
from tests.pg import create_database, drop_database
from tests.processes import Server
from tests.qdrant import drop_collections, qdrant_env, search_deployments

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,response_headers_conformance")


@pytest.fixture(params=search_deployments())  # /search needs Qdrant when distributed
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    with ExitStack() as cleanup:
        env: dict[str, str] = {}
        if request.param in ("postgres", "distributed"):
            database_url = asyncio.run(create_database())
            cleanup.callback(lambda: asyncio.run(drop_database(database_url)))
            env = {"DATABASE_TYPE": "postgres", "DATABASE_URL": database_url}
        if request.param == "distributed":
            prefix = new_prefix()
            provision(prefix)
            cleanup.callback(delete_topics, prefix)
            env |= {"KASAL_MODE": "distributed", "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
                    "KASAL_KAFKA_PREFIX": prefix, "KASAL_KAFKA_PARTITIONS": str(PARTITIONS),
                    **qdrant_env(prefix)}
            cleanup.callback(drop_collections, prefix)
            worker = WorkerProcess({**os.environ, **env, "KASAL_DATA_DIR": str(tmp_path / "w")},
                                   tmp_path / "worker.log")
            worker.start()
            cleanup.callback(worker.stop)
            assert worker.leads.wait(90), worker.log.read_text()[-3000:]
        served = Server(tmp_path / "data", tmp_path / "serve.log", env)
        served.start()
        cleanup.callback(served.stop)
        yield served


def test_the_api_keeps_its_openapi_document(server: Server, tmp_path: Path) -> None:
    key = (tmp_path / "data" / "admin.key").read_text().strip()
    run = subprocess.run(
        [str(Path(sys.executable).with_name("st")), "run",
         f"{server.url}/api-openapi.json", "-H", f"Authorization: Bearer {key}",
         "--checks", CHECKS, "--phases", "examples,coverage,fuzzing,stateful",
         "--max-examples", "8", "--seed", "20261202", "--workers", "1",
         "--generation-database", "none", "--no-color"],
        capture_output=True, text=True, timeout=540, cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"}, check=False)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-20_000:]
    assert "API Operations" in report
