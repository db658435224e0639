"""The executions read model's changes per event: a task the end of its execution
interrupted reads that end, never ``running``."""

from __future__ import annotations

from typing import Any

import pytest

from domain.envelope import RecordedEvent
from domain.vocabulary import AggregateType, EventType
from projections.read_models.executions import execution_changes


def event(type_: EventType, **payload: Any) -> RecordedEvent:
    return RecordedEvent(
        event_id="e1", aggregate_type=AggregateType.EXECUTION, aggregate_id="x1", version=5,
        type=type_, schema_version=1, occurred_at="2026-12-01T00:00:00.000000Z",
        tenant_id="acme", actor="runner", command_id="c1", correlation_id="c1",
        causation_id="c1", payload=payload,
    )


ROW = {"tasks": [
    {"name": "one", "agent": "a", "status": "completed", "output": "done"},
    {"name": "two", "agent": "a", "status": "running", "output": None},
    {"name": "three", "agent": "a", "status": "pending", "output": None},
]}


@pytest.mark.parametrize(
    ("end", "payload", "status"),
    [(EventType.EXECUTION_CANCELLED, {"reason": "changed plans"}, "cancelled"),
     (EventType.EXECUTION_FAILED, {"error": "timed out after 0.5 s (timeout_s)"}, "failed")],
)
def test_the_running_task_takes_the_end_of_its_execution(
    end: EventType, payload: dict[str, Any], status: str,
) -> None:
    changes = execution_changes(ROW, event(end, **payload))
    assert changes["status"] == status
    assert [(t["name"], t["status"]) for t in changes["tasks"]] == [
        ("one", "completed"), ("two", status), ("three", "pending")]
    assert changes["tasks"][0]["output"] == "done"
