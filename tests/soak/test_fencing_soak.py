"""Soaked: the writer fencing of ``tests/integration/test_writer_fencing.py`` (a writer paused
past its session, with a request in hand or with its transaction open), ``KASAL_SOAK_ROUNDS``
times for each pause point."""

from __future__ import annotations

import pytest

from tests.integration.test_writer_fencing import (
    prefix,
    test_a_writer_paused_past_its_session_cannot_append_after_its_successor,
)

__all__ = ["prefix", "test_a_writer_paused_past_its_session_cannot_append_after_its_successor"]

pytestmark = [pytest.mark.kafka]
