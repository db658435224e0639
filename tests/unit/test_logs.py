"""Structured logs: every line of a request or a run carries its correlation id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from commands import messages as m
from commands.context import CommandContext, correlated
from domain.agent import AgentSpec
from domain.crew import CrewSpec
from kasal.logs import CorrelationFilter, configure
from streams.engine import RunHooks, RunResult
from tests.runs import setup


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.addFilter(CorrelationFilter())

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected() -> Iterator[Collect]:
    handler = Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    level, root.level = root.level, logging.INFO
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.level = level


def test_json_lines_carry_the_correlation_id_and_the_traceback() -> None:
    out = io.StringIO()
    configure("INFO", None, log_format="json", stream=out)
    try:
        log = logging.getLogger("kasal.test")
        with correlated("req-7"):
            log.info("inside %s", "a request")
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("failed")
        log.info("outside")
    finally:
        logging.basicConfig(force=True)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["message"], x["correlation_id"]) for x in lines] == [
        ("inside a request", "req-7"), ("failed", "req-7"), ("outside", "-")]
    assert "ValueError: boom" in lines[1]["exception"]
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "kasal.test"


def test_text_lines_show_the_correlation_id() -> None:
    out = io.StringIO()
    configure("INFO", None, stream=out)
    try:
        with correlated("req-8"):
            logging.getLogger("kasal.test").warning("hello")
    finally:
        logging.basicConfig(force=True)
    assert "[req-8]: hello" in out.getvalue()


async def test_a_runs_lines_carry_its_correlation_id_even_on_the_engine_thread(
    collected: Collect,
) -> None:
    class LoggingEngine:
        def run(self, crew: CrewSpec, agents: dict[str, AgentSpec], inputs: dict[str, object],
                hooks: RunHooks) -> RunResult:
            logging.getLogger("kasal.test.engine").info("running on the engine's thread")
            for task in crew.tasks:
                hooks.task_started(task.name)
                hooks.task_completed(task.name, "done")
            return RunResult(output="done")

    bus, store, runner, crew_id = await setup(LoggingEngine())
    requested = await bus.dispatch(
        m.RequestExecution(crew_id=crew_id, inputs={"topic": "ai"}),
        CommandContext(tenant_id="t1", actor="user:x", correlation_id="ticket-9"),
    )
    await runner.handle(await store.read_all(runner.start_position))
    await runner.wait_idle()
    lines = [r for r in collected.records if r.name == "kasal.test.engine"]
    assert [getattr(r, "correlation_id", None) for r in lines] == ["ticket-9"]
    events = await store.read_stream(requested.aggregate_id)
    assert {e.correlation_id for e in events} == {"ticket-9"}
    assert events[-1].type == "ExecutionCompleted"
