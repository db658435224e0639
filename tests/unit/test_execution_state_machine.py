from __future__ import annotations

import pytest

from domain.errors import ExecutionFinished, InvalidDefinition, InvalidTransition
from domain.execution import Execution
from tests.factories import agent_spec, crew_spec

AGENT = "01a21c3f-dc57-79a6-9a7c-b1ca4d2ea06b"


def requested(**inputs: str) -> Execution:
    return Execution.request(
        "t1", "crew-1", crew_spec([AGENT]), {AGENT: agent_spec()}, inputs or {"topic": "ai"}
    )


def running() -> Execution:
    execution = requested()
    execution.start()
    return execution


def test_request_pins_the_crew_and_agent_snapshot() -> None:
    execution = requested()
    assert execution.status == "requested"
    assert execution.crew.name == "research"
    assert execution.agents[AGENT].role == "Researcher"
    assert execution.version == 1


def test_request_missing_an_input_names_the_placeholder() -> None:
    with pytest.raises(InvalidDefinition, match=r"inputs is missing topic.*\{topic\}"):
        Execution.request("t1", "crew-1", crew_spec([AGENT]), {AGENT: agent_spec()}, {})


def test_placeholders_in_agents_are_required_inputs_too() -> None:
    agents = {AGENT: agent_spec(goal="Serve {customer}")}
    with pytest.raises(InvalidDefinition, match="inputs is missing customer"):
        Execution.request("t1", "crew-1", crew_spec([AGENT]), agents, {"topic": "ai"})


def test_request_rejects_a_snapshot_without_the_crews_agents() -> None:
    with pytest.raises(InvalidDefinition, match="snapshot lacks agents"):
        Execution.request("t1", "crew-1", crew_spec([AGENT]), {}, {"topic": "x"})


def test_a_full_run_reaches_completed_through_every_step() -> None:
    execution = running()
    execution.start_task("find")
    execution.record_llm_call({"model": "kasal-offline/default", "prompt_tokens": 3})
    execution.record_tool_use("find", "calculator", "1+1", "2")
    execution.complete_task("find", "notes")
    execution.start_task("write")
    execution.complete_task("write", "prose")
    execution.complete("prose", {"total_tokens": 3})
    assert execution.status == "completed"
    assert execution.completed_tasks == {"find": "notes", "write": "prose"}
    assert execution.version == 9


def test_progress_before_start_is_rejected() -> None:
    execution = requested()
    with pytest.raises(InvalidTransition, match="is requested"):
        execution.start_task("find")


def test_cancelled_execution_accepts_no_more_progress() -> None:
    execution = running()
    execution.request_cancel("user")
    execution.confirm_cancel("user")
    pending_before = len(execution.pending_events)
    for step in (
        lambda: execution.start_task("find"),
        lambda: execution.complete("x", {}),
        lambda: execution.fail("boom"),
        lambda: execution.request_cancel("again"),
        lambda: execution.start(),
    ):
        with pytest.raises(ExecutionFinished):
            step()
    assert execution.status == "cancelled"
    assert len(execution.pending_events) == pending_before


def test_cancelling_a_finished_run_is_refused() -> None:
    execution = running()
    execution.complete("done", {})
    with pytest.raises(ExecutionFinished, match="is completed"):
        execution.request_cancel("too late")


def test_cancelling_before_start_cancels_at_once() -> None:
    execution = requested()
    execution.request_cancel("changed my mind")
    assert execution.status == "cancelled"


def test_cancelling_a_running_run_waits_for_the_runner() -> None:
    execution = running()
    execution.request_cancel("stop")
    assert execution.status == "cancel_requested"
    execution.complete_task("find", "partial")  # the in-flight step may still finish
    with pytest.raises(InvalidTransition, match="already requested"):
        execution.request_cancel("stop again")
    execution.confirm_cancel("stop")
    assert execution.status == "cancelled"


def test_a_task_completes_only_once_and_must_exist() -> None:
    execution = running()
    execution.complete_task("find", "notes")
    with pytest.raises(InvalidTransition, match="already completed"):
        execution.complete_task("find", "again")
    with pytest.raises(InvalidDefinition, match="no task 'nope'"):
        execution.start_task("nope")


def test_starting_twice_is_refused() -> None:
    execution = running()
    with pytest.raises(InvalidTransition, match="not requested"):
        execution.start()


def test_failure_is_terminal_and_keeps_the_cause() -> None:
    execution = running()
    execution.fail("LLM timed out")
    assert (execution.status, execution.error) == ("failed", "LLM timed out")
    with pytest.raises(ExecutionFinished):
        execution.complete("x", {})
