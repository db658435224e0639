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
        (None, "t:\n  description: d\n  expected_output: o\n",
         "no CrewAI project here: expected config/agents.yaml and config/tasks.yaml"),
        ("a:\n  role: r\n  goal: g\n  backstory: b\n", "t:\n  description: d\n"
         "  expected_output: o\n  agent: nobody\n", "agent 'nobody' is not defined"),
        ("a:\n  role: r\n  goal: g\n  backstory: b\n", "t:\n  description: d\n"
         "  expected_output: o\n", r"config/tasks.yaml:1: task 't' has no agent, which a "
         r"sequential crew needs: bind it in config/tasks.yaml \(agent: <name>\) or in crew.py"),
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


def test_what_a_yaml_project_does_not_carry_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "agents.yaml").write_text(
        "a:\n  role: r\n  goal: g\n  backstory: b\n  verbose: true\n  max_rpm: 5\n"
        "  max_execution_time: 0\n"
        "  tools: [calculator, serper]\n")
    (tmp_path / "config" / "tasks.yaml").write_text(
        "t:\n  description: d\n  expected_output: o\n  agent: a\n  output_file: out.md\n"
        "  colour: red\n")
    project = load_project(tmp_path)
    assert project.agents["a"].tools == ["calculator"]
    assert project.agents["a"].max_rpm == 5  # carried, as CrewAI's own limit
    assert project.agents["a"].max_execution_time is None  # 0: CrewAI's "no limit"
    assert [str(d).split(":", 2)[1:] for d in project.dropped] == [
        ["8", " agent 'a': tool 'serper': Kasal has no such tool yet (it has brave_search, "
              "calculator, csv_search, current_time, directory_read, directory_search, "
              "docx_search, file_read, file_write, json_search, mdx_search, pdf_search, "
              "scrape_website, serper_search, serply_search, txt_search): the agent runs "
              "without it"],
        ["6", " task 't': colour: ignored: Kasal does not carry it over"],
    ]
    assert project.tasks[0]["output_file"] == "out.md"  # carried: the execution's artifact
    assert all(str(d).startswith("config/") for d in project.dropped)


def test_a_crew_file_reports_its_unknown_crew_fields(tmp_path: Path) -> None:
    crew = tmp_path / "crew.yaml"
    crew.write_text((EXAMPLES / "math_crew.yaml").read_text() + "planning: true\n")
    (item,) = load_project(crew).dropped
    assert (item.what, item.instead) == ("crew: planning", "the crew runs without a planning step")


def test_a_project_s_crew_yaml_reports_what_it_does_not_carry(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "agents.yaml").write_text("a:\n  role: r\n  goal: g\n  backstory: b\n")
    (tmp_path / "config" / "tasks.yaml").write_text(
        "t:\n  description: d\n  expected_output: o\n  agent: a\n")
    (tmp_path / "config" / "crew.yaml").write_text("name: planned\nplanning: true\n")
    project = load_project(tmp_path)
    assert project.name == "planned"
    assert [str(d) for d in project.dropped] == [
        "config/crew.yaml:2: crew: planning: the crew runs without a planning step"]


def test_an_output_file_kasal_cannot_keep_as_an_artifact_is_reported(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "agents.yaml").write_text("a:\n  role: r\n  goal: g\n  backstory: b\n")
    (tmp_path / "config" / "tasks.yaml").write_text(
        "t:\n  description: d\n  expected_output: o\n  agent: a\n  output_file: /report.md\n"
        "u:\n  description: d\n  expected_output: o\n  agent: a\n  output_file: ../up.md\n")
    project = load_project(tmp_path)
    assert project.tasks[0]["output_file"] == "report.md"  # CrewAI drops a leading '/' too
    assert "output_file" not in project.tasks[1]
    (item,) = project.dropped
    assert item.what == "task 'u': output_file = '../up.md'"
    assert item.instead.startswith("no artifact is kept (an artifact path must not have")
