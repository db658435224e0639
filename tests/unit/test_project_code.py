"""A project's own tool as pinned data (``domain.project_code``): the pin is the content's
hash, an agent's pins and bundles agree, bundles keep to their limits; and the offline model
calls a tool a task names."""

from __future__ import annotations

import pytest

from adapters.crewai.offline_tools import named_action
from commands.messages import fingerprint_source
from domain.agent import AgentSpec, check_agent_spec
from domain.crew import CrewSpec, TaskSpec
from domain.errors import InvalidDefinition
from domain.execution import Execution
from domain.project_code import MAX_RUN_CODE_CHARS, ProjectTool, check_project_tool

TOOL = ProjectTool(name="Echo", description="Echoes.", args_schema={"type": "object"},
                   module="pkg.echo", attribute="Echo", kind="class",
                   files={"pkg/__init__.py": "", "pkg/echo.py": "x = 1\n"}, config={"a": 1})


def agent(*tools: ProjectTool, names: tuple[str, ...] | None = None) -> AgentSpec:
    return AgentSpec(role="r", goal="g", backstory="b", llm="kasal-offline/default",
                     tools=names if names is not None else tuple(t.ref for t in tools),
                     project_tools={t.sha256: t for t in tools})


def test_the_pin_is_the_hash_of_everything_that_runs() -> None:
    same = ProjectTool.from_payload(TOOL.as_payload())
    assert same.sha256 == TOOL.sha256 and TOOL.ref == f"project:{TOOL.sha256}"
    for change in ({"files": {**TOOL.files, "pkg/echo.py": "x = 2\n"}}, {"config": {"a": 2}},
                   {"attribute": "Other"}, {"description": "Echoes twice."}):
        assert ProjectTool(**{**TOOL.__dict__, **change}).sha256 != TOOL.sha256


def test_an_agents_pins_and_bundles_must_agree() -> None:
    assert check_agent_spec(agent(TOOL)).project_tools == {TOOL.sha256: TOOL}
    with pytest.raises(InvalidDefinition, match="has no bundle"):
        check_agent_spec(agent(names=(TOOL.ref,)))
    with pytest.raises(InvalidDefinition, match="do not name it"):
        check_agent_spec(agent(TOOL, names=()))
    edited = ProjectTool(**{**TOOL.__dict__, "config": {"a": 3}})
    forged = AgentSpec(**{**agent(TOOL).__dict__, "project_tools": {TOOL.sha256: edited}})
    with pytest.raises(InvalidDefinition, match="hashes to"):
        check_agent_spec(forged)
    spec = check_agent_spec(agent(TOOL))
    assert AgentSpec.from_payload(spec.as_payload()) == spec
    assert "project_tools" not in check_agent_spec(agent()).as_payload()  # older payloads


@pytest.mark.parametrize(("change", "message"), [
    ({"module": "pkg.missing"}, "must hold module pkg.missing"),
    ({"module": "not a module"}, "dotted Python module name"),
    ({"files": {"../evil.py": "", "pkg/echo.py": ""}}, "relative path of a .py file"),
    ({"files": {"pkg/.hidden.py": "", "pkg/echo.py": ""}}, "relative path of a .py file"),
    ({"files": {"pkg/echo.py": "#" * 100_001}}, "carries at most 100,000"),
    ({"kind": "function"}, "kind must be one of"),
    ({"kind": "object"}, "takes no arguments"),
    ({"args_schema": {"type": "string"}}, "JSON Schema of an object"),
])
def test_a_bundle_out_of_bounds_is_refused_naming_the_bound(
    change: dict[str, object], message: str,
) -> None:
    with pytest.raises(InvalidDefinition, match=message):
        check_project_tool("tool", ProjectTool(**{**TOOL.__dict__, **change}))


def test_a_run_carries_a_bounded_amount_of_code() -> None:
    big = {f"pkg/m{i}.py": "#" * 90_000 for i in range(4)}
    agents = {}
    for i in range(4):
        tool = ProjectTool(**{**TOOL.__dict__, "files": {"pkg/echo.py": f"# {i}\n",
                                                          **dict(list(big.items())[i:i + 1])}})
        agents[f"a{i}"] = agent(tool)
    crew = CrewSpec(name="c", process="sequential", agents=tuple(agents), tasks=tuple(
        TaskSpec(name=f"t{i}", description="d", expected_output="e", agent=f"a{i}")
        for i in range(4)))
    with pytest.raises(InvalidDefinition, match=f"at most {MAX_RUN_CODE_CHARS:,}"):
        Execution.request("acme", "crew", crew, agents, {})
    assert Execution.request("acme", "crew", crew.__class__(**{
        **crew.__dict__, "agents": ("a0", "a1"), "tasks": crew.tasks[:2]}), agents, {})


def test_the_offline_model_calls_the_tool_a_task_names_with_its_quoted_text() -> None:
    arguments = {"word_reverser": ["text"], "letter_counter": ["text", "extra"]}.get
    assert named_action("Use the Word Reverser on 'kasal'.", ("letter_counter", "word_reverser"),
                        lambda t: arguments(t) or []) == (
        "I will use the word_reverser.", "word_reverser", {"text": "kasal"})
    assert named_action('Call letter_counter with "a b".', ("letter_counter",),
                        lambda t: arguments(t) or [])[2] == {"text": "a b"}
    assert named_action("Reverse 'kasal'.", ("word_reverser",), lambda t: ["text"]) is None
    # a task that only speaks of a tool does not call it
    assert named_action("Explain what a word reverser does.", ("word_reverser",),
                        lambda t: ["text"]) is None


@pytest.mark.parametrize(("change", "message"), [
    ({"config": {"a": float("nan")}}, "must be a finite number"),
    ({"config": {"a": "x\x00y"}}, "NUL"),
    ({"config": {"a": "\ud800"}}, "config.a"),
    ({"args_schema": {"type": "object", "properties": "x"}}, "mapping of argument names"),
    ({"args_schema": {"type": "object", "properties": {"a": {"type": "weird"}}}},
     "type must be one of"),
    ({"args_schema": {"type": "object", "properties": {}, "required": ["b"]}},
     "must name some of its properties"),
])
def test_data_no_store_holds_or_crewai_cannot_model_is_refused(
    change: dict[str, object], message: str,
) -> None:
    with pytest.raises(InvalidDefinition, match=message):
        check_project_tool("tool", ProjectTool(**{**TOOL.__dict__, **change}))


def test_an_agent_command_without_project_tools_keeps_its_idempotency_fingerprint() -> None:
    from commands import messages as m

    command = m.RegisterAgent(role="r", goal="g", backstory="b")
    assert "project_tools" not in fingerprint_source(command)["body"]
    tool = m.ProjectToolFields(**{**TOOL.as_payload(), "name": " Echo "})
    assert tool.name == " Echo "  # the hash covers the name exactly as the tool has it
    with_tool = m.RegisterAgent(role="r", goal="g", backstory="b",
                                project_tools={TOOL.sha256: tool})
    assert "project_tools" in fingerprint_source(with_tool)["body"]


def test_a_project_tools_process_gets_no_kasal_setting_whatever_its_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kasal.settings import code_environment

    for name, value in (("DATABASE_URL", "postgresql://secret"), ("kasal_encryption_key", "k"),
                        ("Qdrant_Api_Key", "q"), ("KASAL_ANYTHING", "x"),
                        ("OPENAI_API_KEY", "sk-kept")):
        monkeypatch.setenv(name, value)
    env = code_environment()
    assert env["OPENAI_API_KEY"] == "sk-kept"
    assert not {"DATABASE_URL", "kasal_encryption_key", "Qdrant_Api_Key",
                "KASAL_ANYTHING"} & set(env)
