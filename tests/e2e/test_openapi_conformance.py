"""Schemathesis over the whole OpenAPI document of a real ``kasal serve`` (issue 11 item 3):
every phase (examples, coverage, fuzzing, stateful), a bounded run with a fixed seed, and
no server error, no status code the document does not list, no body or content type that
breaks it. (Schema-valid requests that a domain rule refuses, 422 naming the rule, are not
counted against it: the document cannot say "an agent that exists".)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.processes import Server

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,response_headers_conformance")


def test_the_api_keeps_its_openapi_document(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", tmp_path / "serve.log")
    server.start()
    try:
        key = (tmp_path / "data" / "admin.key").read_text().strip()
        run = subprocess.run(
            [str(Path(sys.executable).with_name("st")), "run",
             f"{server.url}/api-openapi.json", "-H", f"Authorization: Bearer {key}",
             "--checks", CHECKS, "--phases", "examples,coverage,fuzzing,stateful",
             "--max-examples", "8", "--seed", "20261202", "--workers", "1",
             "--generation-database", "none", "--no-color"],
            capture_output=True, text=True, timeout=540, cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1"}, check=False)
    finally:
        server.stop()
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-20_000:]
    assert "API Operations" in report
