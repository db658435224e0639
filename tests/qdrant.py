"""The Qdrant server the distributed tests search (``scripts/qdrant.sh``, started by
``make services-up`` / ``make test``, or one named by ``KASAL_TEST_QDRANT_URL``). Each
deployment a test makes has collections of its own prefix, dropped at its end."""

from __future__ import annotations

import os

import pytest
from qdrant_client import QdrantClient

QDRANT_URL = os.environ.get("KASAL_TEST_QDRANT_URL") or ""
left_out: list[str] = []  # the modules whose server legs this run left out (no server)
NOT_RUN = ("the distributed search and memory legs did not run: no Qdrant server "
           "(KASAL_TEST_QDRANT_URL unset; `bash scripts/qdrant.sh up` found no binary)")


def search_deployments() -> list[object]:
    """The deployments vector search is tested on: the distributed one needs the server. In
    CI it is always a leg (it fails without a server); elsewhere it is left out, and the run's
    summary says so (tests/conftest.py)."""
    legs: list[object] = ["sqlite", "postgres"]
    if server_legs_run():
        legs.append(pytest.param("distributed", marks=pytest.mark.kafka))
    return legs


def server_legs_run() -> bool:
    """Whether the legs that need the Qdrant server are collected (else noted as left out)."""
    if QDRANT_URL or os.environ.get("CI"):
        return True
    left_out.append("left out")
    return False


def qdrant_env(prefix: str) -> dict[str, str]:
    """What a distributed deployment needs to search the test server, under ``prefix``."""
    if not QDRANT_URL:
        pytest.fail(NOT_RUN, pytrace=False)
    return {"QDRANT_URL": QDRANT_URL, "KASAL_QDRANT_COLLECTION_PREFIX": prefix.lower()}


def drop_collections(prefix: str) -> None:
    client = QdrantClient(url=QDRANT_URL, check_compatibility=False)
    try:
        for collection in client.get_collections().collections:
            if collection.name.startswith(prefix.lower() + "_"):
                client.delete_collection(collection.name)
    finally:
        client.close()
