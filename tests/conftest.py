"""Every test run: CrewAI and litellm told to stay offline before either is imported,
CrewAI's files in a throw-away folder, and the test models (``tests/models.py``) known to
litellm beside the offline model."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

import pytest

from adapters.crewai.offline_env import apply

apply()
_STORAGE = tempfile.mkdtemp(prefix="kasal-crewai-storage-")
os.environ["CREWAI_STORAGE_DIR"] = _STORAGE
atexit.register(shutil.rmtree, _STORAGE, ignore_errors=True)

from tests.models import register_test_models  # noqa: E402

register_test_models()

# The soak (tests/soak/, `make soak`) repeats the failover tests many times: it is collected
# only when its round count is given, never in `make test`.
collect_ignore = [] if os.environ.get("KASAL_SOAK_ROUNDS") else ["soak"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which legs could not run here (never silently: in CI they run, or fail)."""
    from tests.qdrant import NOT_RUN, left_out

    if left_out:
        terminalreporter.write_line(NOT_RUN)
