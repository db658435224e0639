"""A task's output_file: the path rules, placeholders filled at request time, and the
artifact an execution stores when the task completes (issue 10 item 4)."""

from __future__ import annotations

import hashlib
import json

import pytest

from domain.artifacts import media_type, path_problem
from domain.crew import TaskSpec, check_crew_spec
from domain.errors import InvalidDefinition
from domain.execution import Execution
from tests.factories import agent_spec, crew_spec

AGENT = "01a21c3f-dc57-79a6-9a7c-b1ca4d2ea06b"


def with_files(find: str | None, write: str | None = None, **schema: object) -> object:
    return crew_spec([AGENT], tasks=(
        TaskSpec("find", "Find {topic}", "notes", agent=AGENT, output_file=find,
                 output_schema=schema or None),
        TaskSpec("write", "Write about {topic}", "prose", agent=AGENT, output_file=write),
    ))


@pytest.mark.parametrize("path", ["report.md", "out/2026/notes.txt", "a b-c_d.json", "x"])
def test_relative_paths_of_plain_parts_name_artifacts(path: str) -> None:
    assert path_problem(path) is None


@pytest.mark.parametrize(("path", "why"), [
    ("", "1 to 200"), ("x" * 201, "1 to 200"), ("/etc/passwd", "relative"),
    ("a\\b", "relative"), ("../up.md", "'..'"), ("a/./b", "'.'"), ("a//b", "empty"),
    (".hidden", "part '.hidden'"), ("-flag", "part '-flag'"), ("trailing.", "part"),
    ("a/b/c/d/e/f/g/h/i", "at most 8"), ("semi;colon", "part"), ("nul\x00", "part"),
    ("owls\n", "part"), ("a\n/b.md", "part"), ("a/b.md\n", "part"),
])
def test_other_paths_are_refused_with_the_reason(path: str, why: str) -> None:
    problem = path_problem(path)
    assert problem is not None and why in problem, problem


def test_a_crew_refuses_a_bad_output_file_and_one_shared_by_two_tasks() -> None:
    with pytest.raises(InvalidDefinition, match=r"tasks\[0\]\.output_file must be a relative"):
        check_crew_spec(with_files("/tmp/x.md"))  # type: ignore[arg-type]
    with pytest.raises(InvalidDefinition, match="is task 'find''s too"):
        check_crew_spec(with_files("same.md", "same.md"))  # type: ignore[arg-type]
    assert check_crew_spec(with_files("{topic}/find.md", "write.md"))  # type: ignore[arg-type]


def test_placeholders_in_an_output_file_are_inputs_filled_and_checked_at_request() -> None:
    crew = with_files("{topic}/{year}.md")
    with pytest.raises(InvalidDefinition, match="inputs is missing year"):
        Execution.request("t1", "c", crew, {AGENT: agent_spec()}, {"topic": "owls"})  # type: ignore[arg-type]
    with pytest.raises(InvalidDefinition, match=r"output_file is '\.\./2026\.md' with these"):
        Execution.request("t1", "c", crew, {AGENT: agent_spec()},  # type: ignore[arg-type]
                          {"topic": "..", "year": 2026})
    clash = with_files("{topic}.md", "owls.md")
    with pytest.raises(InvalidDefinition, match=r"would write 'owls\.md' and 'owls\.md'"):
        Execution.request("t1", "c", clash, {AGENT: agent_spec()},  # type: ignore[arg-type]
                          {"topic": "owls"})
    folder = with_files("{topic}", "owls/b.md")
    with pytest.raises(InvalidDefinition, match="a file is not a folder"):
        Execution.request("t1", "c", folder, {AGENT: agent_spec()},  # type: ignore[arg-type]
                          {"topic": "owls"})


def test_a_completed_task_with_an_output_file_stores_its_answer_as_an_artifact() -> None:
    execution = Execution.request("t1", "c", with_files("notes/{topic}.md"),  # type: ignore[arg-type]
                                  {AGENT: agent_spec()}, {"topic": "owls"})
    execution.start()
    execution.complete_task("find", "Owls are nocturnal. Ünïcode too.")
    execution.complete_task("write", "prose")  # no output_file: no artifact
    stored = [e for e in execution.collect_events() if type(e).__name__ == "ArtifactStored"]
    assert len(stored) == 1
    event = stored[0]
    data = "Owls are nocturnal. Ünïcode too.".encode()
    assert (event.task_name, event.path, event.media_type) == ("find", "notes/owls.md",
                                                               "text/markdown")
    assert (event.sha256, event.size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert event.content is None  # the output in TaskCompleted is the content: not copied


def test_a_task_with_an_output_schema_stores_its_validated_json() -> None:
    schema = {"type": "object"}
    execution = Execution.request("t1", "c", with_files("out.json", None, **schema),  # type: ignore[arg-type]
                                  {AGENT: agent_spec()}, {"topic": "owls"})
    execution.start()
    execution.complete_task("find", '{"a": 1}', output_json={"a": 1, "ü": "x"})
    [event] = [e for e in execution.collect_events() if type(e).__name__ == "ArtifactStored"]
    assert json.loads(event.content) == {"a": 1, "ü": "x"} and "ü" in event.content
    assert event.media_type == "application/json"


def test_media_types_follow_the_suffix() -> None:
    assert [media_type(p) for p in ("a.MD", "b.csv", "c", "d.tar.gz", "dir.v2/e")] == [
        "text/markdown", "text/csv", "text/plain", "text/plain", "text/plain"]
