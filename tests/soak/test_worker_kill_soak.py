"""Soaked (issue 11 item 8): the two-worker SIGKILL failover of
``tests/integration/test_distributed_failover.py``, ``KASAL_SOAK_ROUNDS`` times, each round
with a fresh database, topics and two workers. Every round asserts what the test asserts in
``make test``: the run resumed on the survivor, nothing lost, nothing doubled."""

from __future__ import annotations

import pytest

from tests.integration.test_distributed_failover import (
    deployment,
    test_a_killed_leader_hands_over_its_partitions_and_runs,
)

__all__ = ["deployment", "test_a_killed_leader_hands_over_its_partitions_and_runs"]

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
