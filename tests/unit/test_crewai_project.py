from __future__ import annotations

from pathlib import Path

import pytest

from adapters.crewai.project import ProjectError, load_project

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_a_crewai_project_directory_becomes_commands() -> None:
    project = load_project(EXAMPLES / "research_crew", "kasal-offline/default")
    assert project.name == "research_crew" and project.process == "sequential"
    assert list(project.agents) == ["researcher", "reporting_analyst"]
    assert project.agents["researcher"].role == "{topic} Senior Data Researcher"
    assert project.agents["researcher"].llm == "kasal-offline/default"
    crew = project.crew_command({"researcher": "a1", "reporting_analyst": "a2"})
    assert [t.agent for t in crew.tasks] == ["a1", "a2"]
    assert crew.tasks[1].context == ["research_task"]


def test_a_crew_file_carries_process_and_manager() -> None:
    project = load_project(EXAMPLES / "hierarchical_crew.yaml")
    assert (project.process, project.manager_llm) == ("hierarchical", "kasal-offline/default")
    assert all(task["agent"] is None for task in project.tasks)


def test_the_same_definition_has_the_same_fingerprint() -> None:
    first = load_project(EXAMPLES / "math_crew.yaml")
    assert first.fingerprint == load_project(EXAMPLES / "math_crew.yaml").fingerprint


@pytest.mark.parametrize(
    ("agents", "tasks", "message"),
    [
        (None, "t:\n  description: d\n  expected_output: o\n", "agents.yaml not found"),
        ("a:\n  role: r\n  goal: g\n  backstory: b\n", "t:\n  description: d\n"
         "  expected_output: o\n  agent: nobody\n", "agent 'nobody' is not defined"),
        ("a:\n  role: r\n  goal: g\n  backstory: b\n  colour: red\n",
         "t:\n  description: d\n  expected_output: o\n", "unknown fields colour"),
        ("a: [1, 2\n", "t: {}\n", "not valid YAML"),
        ("a:\n  goal: g\n  backstory: b\n", "t:\n  description: d\n  expected_output: o\n",
         "agent 'a'"),
    ],
)
def test_a_broken_project_says_what_is_wrong(
    tmp_path: Path, agents: str | None, tasks: str, message: str
) -> None:
    (tmp_path / "config").mkdir()
    if agents is not None:
        (tmp_path / "config" / "agents.yaml").write_text(agents)
    (tmp_path / "config" / "tasks.yaml").write_text(tasks)
    with pytest.raises(ProjectError, match=message):
        load_project(tmp_path)
