from __future__ import annotations

import pytest

from domain.agent import Agent
from domain.crew import Crew, TaskSpec
from domain.errors import AlreadyArchived, InvalidDefinition
from tests.factories import agent_spec, crew_spec

A1 = "01a21c3f-dc57-79a6-9a7c-b1ca4d2ea06b"
A2 = "01a21c3f-dc57-79a6-9a7c-b1ca4d2ea06c"


def test_agent_registers_updates_and_archives() -> None:
    agent = Agent.register("t1", agent_spec())
    agent.update(agent_spec(role="Writer"))
    agent.archive()
    assert [type(e).__name__ for e in agent.collect_events()] == [
        "Registered", "Updated", "Archived"
    ]
    assert agent.spec.role == "Writer"
    with pytest.raises(AlreadyArchived):
        agent.update(agent_spec())


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"role": "  "}, "role must not be empty"),
        ({"max_iter": 0}, "max_iter must be between 1 and 100"),
        ({"tools": ("calculator", "calculator")}, "tools must not repeat"),
    ],
)
def test_agent_invariants_raise_named_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidDefinition, match=message):
        Agent.register("t1", agent_spec(**changes))


def test_crew_required_inputs_are_the_placeholders_of_its_tasks() -> None:
    crew = Crew.define("t1", crew_spec([A1, A2]))
    assert crew.spec.required_inputs() == {"topic"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"process": "parallel"}, "process must be one of"),
        ({"agents": ()}, "at least one agent"),
        ({"agents": (A1, A1)}, "same agent twice"),
        ({"tasks": ()}, "at least one task"),
        (
            {"tasks": (TaskSpec("a", "d", "o", agent=A1), TaskSpec("a", "d", "o", agent=A1))},
            "used by an earlier task",
        ),
        ({"tasks": (TaskSpec("a", "d", "o"),)}, "agent is required in a sequential crew"),
        ({"tasks": (TaskSpec("a", "d", "o", agent=A2),)}, "is not one of the crew's agents"),
        (
            {"tasks": (TaskSpec("a", "d", "o", agent=A1, context=("b",)),
                       TaskSpec("b", "d", "o", agent=A1))},
            "not an earlier task",
        ),
        ({"process": "hierarchical", "manager_llm": None}, "needs a manager_llm"),
        ({"tasks": (TaskSpec("a", "d", "o", agent=A1, human_input=True),)},
         "human_input is not supported"),
    ],
)
def test_crew_invariants_raise_named_errors(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidDefinition, match=message):
        Crew.define("t1", crew_spec([A1], **changes))


def test_hierarchical_crew_may_leave_tasks_unassigned() -> None:
    crew = Crew.define(
        "t1",
        crew_spec([A1], process="hierarchical", manager_llm="kasal-offline/default",
                  tasks=(TaskSpec("a", "d", "o"),)),
    )
    assert crew.spec.tasks[0].agent is None
