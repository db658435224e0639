"""Soaked (issue 11 item 8): the broker SIGKILL under load of
``tests/integration/test_broker_restart.py``, ``KASAL_SOAK_ROUNDS`` times, each round with its
own private broker, a fresh schema and topics. Every round asserts what the test asserts in
``make test``: every acknowledged command once in the log and the mirror, every request in
the topic appended, the rest failed with a clear error."""

from __future__ import annotations

import pytest

from tests.integration.test_broker_restart import (
    deployment,
    test_every_acknowledged_command_survives_a_broker_restart_once,
)

__all__ = ["deployment", "test_every_acknowledged_command_survives_a_broker_restart_once"]

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]
