"""The soak's rounds: every test collected here runs ``KASAL_SOAK_ROUNDS`` times (one
parameter ``soak_round`` per run, each with fresh fixtures), and the run ends with a count
per test, printed as a table and as one JSON line (also written to ``KASAL_SOAK_REPORT``
when that is set)."""

from __future__ import annotations

import collections
import json
import os
import re
from pathlib import Path

import pytest


def rounds() -> int:
    value = os.environ.get("KASAL_SOAK_ROUNDS", "")
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise pytest.UsageError(f"KASAL_SOAK_ROUNDS must be a whole number >= 1, not {value!r}")
    return int(value)


def pytest_sessionstart(session: pytest.Session) -> None:
    if report_path := os.environ.get("KASAL_SOAK_REPORT"):
        Path(report_path).unlink(missing_ok=True)  # never an earlier run's counts


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    metafunc.fixturenames.append("soak_round")
    metafunc.parametrize("soak_round", range(1, rounds() + 1),
                         ids=lambda n: f"round{n}")


def _test_name(nodeid: str) -> str:
    """The test without its round: ``test_x[commit-round7]`` -> ``test_x[commit]``."""
    name = re.sub(r"round\d+-|-round\d+|round\d+", "", nodeid.split("::")[-1])
    return name.replace("[]", "")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # one outcome per run, the worst of its phases (an error in teardown after a pass counts
    # as an error, once)
    worst: dict[str, str] = {}
    for outcome in ("passed", "skipped", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "nodeid", None) and (report.when == "call" or outcome != "passed"):
                worst[report.nodeid] = outcome
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for nodeid, outcome in worst.items():
        counts[_test_name(nodeid)][outcome] += 1
    if not counts:
        return
    terminalreporter.section("soak")
    for name, count in sorted(counts.items()):
        terminalreporter.write_line(
            f"{name}: {count['passed']} passed, {count['failed']} failed, "
            f"{count['error']} errors, {count['skipped']} skipped, of {sum(count.values())} runs")
    outcomes = ("passed", "failed", "error", "skipped")
    summary = {"rounds": rounds(),
               "tests": {name: {outcome: count[outcome] for outcome in outcomes}
                         for name, count in sorted(counts.items())}}
    line = json.dumps(summary, sort_keys=True)
    terminalreporter.write_line(line)
    if report_path := os.environ.get("KASAL_SOAK_REPORT"):
        Path(report_path).write_text(line + "\n")
