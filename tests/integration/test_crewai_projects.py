"""Real CrewAI projects, in the layouts users have (``tests/projects/``): the ``crewai create
crew`` template, a crew that binds its tasks in ``crew.py``, a crew led by a manager agent.
Each is read the way CrewAI reads it (its ``@CrewBase`` class built in a subprocess), from
its root, its package or its ``config/`` folder; what Kasal does not carry over is named
with its file and line; ``kasal run`` runs it from the root with the offline model."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import adapters.crewai.project as project_module
from adapters.crewai.project import CrewProject, ProjectError, load_project
from adapters.crewai.workspace import Workspace
from kasal.bootstrap import bootstrap
from kasal.projects import INTERRUPTED
from kasal.settings import Settings
from tests.processes import KASAL, REPO, Server

PROJECTS = Path(__file__).parents[1] / "projects"
LLM = "kasal-offline/default"


@pytest.fixture(scope="module")
def project() -> Callable[[str], CrewProject]:
    """Each project read once per module (reading builds the crew in a subprocess)."""
    cache: dict[str, CrewProject] = {}

    def read(relative: str) -> CrewProject:
        if relative not in cache:
            with pytest.MonkeyPatch.context() as patch:  # keep what the fingerprint covers
                original = project_module._Builder.definition

                def kept(self: Any, crew: dict[str, Any]) -> dict[str, Any]:
                    DEFINITIONS[relative] = original(self, crew)
                    return DEFINITIONS[relative]

                patch.setattr(project_module._Builder, "definition", kept)
                cache[relative] = load_project(PROJECTS / relative, LLM)
        return cache[relative]

    return read


DEFINITIONS: dict[str, dict[str, Any]] = {}  # what each project's fingerprint covered


def dropped(project: CrewProject) -> dict[str, str]:
    """What was not carried over, as {what: where}."""
    return {item.what: item.where for item in project.dropped}


def test_the_crewai_template_reads_the_same_from_its_root_and_its_config_folder(
    project: Callable[[str], CrewProject],
) -> None:
    root = project("latest_ai")
    assert project("latest_ai/src/latest_ai/config").fingerprint == root.fingerprint
    assert (root.name, root.process) == ("latest_ai", "sequential")
    assert list(root.agents) == ["researcher", "reporting_analyst"]
    assert root.agents["researcher"].role == "{topic} Senior Data Researcher"
    assert root.agents["researcher"].llm == LLM  # no llm in the project: Kasal's default
    assert [(t["name"], t["agent"]) for t in root.tasks] == [
        ("research_task", "researcher"), ("reporting_task", "reporting_analyst")]
    assert root.default_inputs == {"topic": "AI LLMs"}  # main.py's literal inputs
    # verbose=True (what CrewAI prints) is not reported; these two are, with file and line
    assert dropped(root) == {"input 'current_year'": "src/latest_ai/main.py:18"}
    assert root.tasks[1]["output_file"] == "report.md"  # the execution's artifact


def test_tasks_bound_in_crew_py_run_with_their_agents_and_the_rest_is_named(
    project: Callable[[str], CrewProject],
) -> None:
    bound = project("bound_in_code")
    assert [(t["name"], t["agent"], t["context"]) for t in bound.tasks] == [
        ("research_task", "researcher", []), ("summary_task", "writer", ["research_task"])]
    assert bound.agents["writer"].llm == LLM and bound.agents["researcher"].tools == []
    assert bound.agents["researcher"].max_rpm == 10  # Agent(..., max_rpm=10) in crew.py
    assert bound.agents["writer"].max_rpm is None
    assert dropped(bound) == {
        "agent 'researcher': tool WordCountTool (bound_in_code.tools.word_count)":
            "src/bound_in_code/tools/word_count.py:4",
        "agent 'researcher': reasoning = True": "src/bound_in_code/config/agents.yaml:8",
        "agent 'researcher': colour": "src/bound_in_code/config/agents.yaml:9",
        "task 'summary_task': human_input = True": "src/bound_in_code/config/tasks.yaml:12",
        "crew: planning = True": "src/bound_in_code/crew.py:14",
        "crew: kickoff hook prepare": "src/bound_in_code/crew.py:18",
        "input 'year'": "src/bound_in_code/main.py:10",
    }
    # output_pydantic=Summary is carried as Summary's JSON Schema
    schema = bound.tasks[1]["output_schema"]
    assert schema["type"] == "object" and schema["required"] == ["title", "points"]
    assert schema["properties"]["points"]["type"] == "array"
    assert "output_schema" not in bound.tasks[0]
    assert bound.tasks[1]["output_file"] == "summary.md" and "output_file" not in bound.tasks[0]
    reasons = {item.what: item.instead for item in bound.dropped}
    assert "runs without it" in reasons[
        "agent 'researcher': tool WordCountTool (bound_in_code.tools.word_count)"]
    assert "not a CrewAI agent field" in reasons["agent 'researcher': colour"]


def test_a_manager_agent_leads_through_its_llm(project: Callable[[str], CrewProject]) -> None:
    managed = project("manager_crew/src/manager_crew")
    assert (managed.process, managed.manager_llm) == ("hierarchical", LLM)
    assert list(managed.agents) == ["planner", "writer"]  # the manager is not a crew member
    assert dropped(managed) == {
        "crew: manager_agent 'Launch Manager'": "src/manager_crew/crew.py:24"}


def test_a_project_with_several_crews_names_them_and_crew_chooses(tmp_path: Path) -> None:
    config = PROJECTS / "latest_ai" / "src" / "latest_ai" / "config"
    for name in ("poem_crew", "summary_crew"):
        shutil.copytree(config, tmp_path / "src" / "flow" / "crews" / name / "config")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "flow"\n')
    with pytest.raises(ProjectError, match=r"holds 2 crews \(poem_crew, summary_crew\): choose "
                                           "one with --crew NAME"):
        load_project(tmp_path)
    assert load_project(tmp_path, crew="summary_crew").name == "summary_crew"
    with pytest.raises(ProjectError, match="no crew named 'nope'; the crews here: poem_crew"):
        load_project(tmp_path, crew="nope")


CREW_PY = '''from crewai import Agent, Crew, Task
from crewai.project import CrewBase, agent, crew, task
{extra}

@CrewBase
class Broken:
    @agent
    def researcher(self) -> Agent:
        {agent_body}

    @task
    def research_task(self) -> Task:
        return Task(config=self.tasks_config["research_task"])

    @crew
    def crew(self) -> Crew:
        return Crew(agents=self.agents, tasks=self.tasks)
'''


@pytest.mark.parametrize(
    ("extra", "agent_body", "message"),
    [
        ("import kasal_no_such_package", 'return Agent(config=self.agents_config["researcher"])',
         r"src/broken/crew\.py:3: the project imports 'kasal_no_such_package', which is not "
         r"installed beside Kasal: install it \(pip install kasal-no-such-package\)"),
        ("def (:", 'return Agent(config=self.agents_config["researcher"])',
         r"src/broken/crew\.py:3: SyntaxError"),
        ("", 'raise RuntimeError("no key for the search tool")',
         r"src/broken/crew\.py:9: RuntimeError: no key for the search tool"),
    ],
    ids=["missing-package", "syntax-error", "raises"],
)
def test_code_that_does_not_load_is_named_by_file_and_line(
    tmp_path: Path, extra: str, agent_body: str, message: str,
) -> None:
    with pytest.raises(ProjectError, match=message):
        load_project(broken_project(tmp_path, extra, agent_body))


def kasal(*args: str, data_dir: Path, vectors: bool = False,
          **more: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KASAL_DATA_DIR": str(data_dir),
           "KASAL_VECTOR_SEARCH": "true" if vectors else "false", **more}
    return subprocess.run([*KASAL, *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


async def crews_and_runs(data_dir: Path) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    settings = Settings(KASAL_DATA_DIR=data_dir, KASAL_VECTOR_SEARCH=False)  # type: ignore[call-arg]
    app = await bootstrap(settings)
    await app.start()
    try:
        await app.wait_until_projected(10.0)
        crews = (await app.read_models.list_crews("default")).items
        runs = []
        for e in (await app.read_models.list_executions("default")).items:
            run = (await app.read_models.get_execution("default", str(e["id"]))).item or {}
            artifacts = (await app.read_models.execution_artifacts("default", e["id"])).items
            run["artifacts"] = [
                (await app.read_models.artifact_content("default", e["id"], a["path"])).item
                for a in artifacts]
            runs.append(run)
        return crews, runs
    finally:
        await app.stop()


def test_kasal_run_runs_a_project_from_its_root_with_main_py_inputs(tmp_path: Path) -> None:
    done = kasal("run", str(PROJECTS / "bound_in_code"), "--input", "year=2026",
                 data_dir=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not carried over (7):" in done.stdout
    crews, runs = asyncio.run(crews_and_runs(tmp_path))
    assert [c["name"] for c in crews] == ["bound_in_code"]
    (run,) = runs
    assert run["status"] == "completed" and run["inputs"] == {"topic": "owls", "year": "2026"}
    assert [(t["name"], t["status"]) for t in run["tasks"]] == [  # type: ignore[union-attr]
        ("research_task", "completed"), ("summary_task", "completed")]
    assert "owls" in str(run["result"])
    # output_pydantic=Summary: the offline model answered in JSON that Summary accepts
    research, summary = run["tasks"]  # type: ignore[misc]
    assert "output_json" not in research  # no schema: nothing checked
    assert summary["output_problem"] is None, summary["output"]
    assert set(summary["output_json"]) == {"title", "points"}
    assert isinstance(summary["output_json"]["points"], list)
    # output_file="summary.md": the validated JSON is the run's artifact
    (artifact,) = run["artifacts"]  # type: ignore[misc]
    assert (artifact["path"], artifact["task_name"]) == ("summary.md", "summary_task")
    assert summary["artifact"] == "summary.md"
    assert json.loads(artifact["content"]) == summary["output_json"]
    assert artifact["sha256"] == hashlib.sha256(artifact["content"]).hexdigest()
    assert artifact["size"] == len(artifact["content"])
    assert artifact["media_type"] == "text/markdown"


def test_strict_refuses_a_project_with_anything_dropped_and_defines_nothing(
    tmp_path: Path,
) -> None:
    refused = kasal("import", "--strict", str(PROJECTS / "latest_ai"), data_dir=tmp_path)
    assert refused.returncode == 1
    assert "--strict: 1 thing" in refused.stderr and "nothing was defined" in refused.stderr
    assert "src/latest_ai/main.py:18: input 'current_year'" in refused.stderr
    assert asyncio.run(crews_and_runs(tmp_path)) == ([], [])


def test_a_projects_own_tools_are_reported_unless_project_code_is_allowed_then_run(
    project: Callable[[str], CrewProject], tmp_path: Path,
) -> None:
    """tools/ holds a BaseTool subclass and a @tool function: by default each is named as not
    carried over (why, and the setting that carries it) and --strict refuses the import; with
    KASAL_ALLOW_PROJECT_CODE=true ``kasal run`` runs both from their pinned source."""
    read = project("own_tools_crew")
    assert read.agents["wordsmith"].tools == []
    assert dropped(read) == {
        "agent 'wordsmith': tool WordReverser (own_tools_crew.tools.text_tools)":
            "src/own_tools_crew/tools/text_tools.py:18",
        "agent 'wordsmith': tool 'Letter Counter' (own_tools_crew.tools.text_tools)":
            "src/own_tools_crew/tools/text_tools.py:33",
    }
    assert all("KASAL_ALLOW_PROJECT_CODE=true" in item.instead for item in read.dropped)
    refused = kasal("import", "--strict", str(PROJECTS / "own_tools_crew"), data_dir=tmp_path)
    assert refused.returncode == 1 and "--strict: 2 things" in refused.stderr, refused.stderr

    done = kasal("run", str(PROJECTS / "own_tools_crew"), data_dir=tmp_path,
                 KASAL_ALLOW_PROJECT_CODE="true")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not carried over" not in done.stdout
    _, runs = asyncio.run(crews_and_runs(tmp_path))
    (run,) = runs
    assert run["status"] == "completed", run.get("error")
    assert [t["output"] for t in run["tasks"]][1].endswith("is: 13 letters")
    assert "lasak?!" in run["tasks"][0]["output"]  # main.py's input, reversed by the tool
    # this run's environment had KASAL_DATA_DIR, KASAL_ALLOW_PROJECT_CODE...: the tool had none
    assert "kasal settings [])" in run["tasks"][0]["output"], run["tasks"][0]["output"]


SLOW_CREW = """name: slow
agents:
  analyst: {role: Analyst, goal: Write notes, backstory: Careful., llm: kasal-test/slow}
tasks:
""" + "".join(f"""  step{i}:
    description: Note {i} about {{topic}}.
    expected_output: A note.
    agent: analyst
""" for i in range(8))


def test_ctrl_c_in_kasal_run_cancels_the_execution_and_waits_for_it(tmp_path: Path) -> None:
    crew = tmp_path / "slow.yaml"
    crew.write_text(SLOW_CREW)
    data_dir = tmp_path / "data"
    env = {**os.environ, "KASAL_DATA_DIR": str(data_dir), "KASAL_VECTOR_SEARCH": "false"}
    process = subprocess.Popen([*KASAL, "run", str(crew), "--input", "topic=owls"], cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # until the first task is under way
        seen.append(line)
        if "task 'step0' started" in line:
            break
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=120)
    output = "".join(seen) + rest
    assert process.returncode == 1, output  # the run did not complete
    assert "interrupted: cancelling the execution" in output
    assert "cancelled: interrupted: Ctrl-C in kasal run" in output
    _, runs = asyncio.run(crews_and_runs(data_dir))
    (run,) = runs
    assert (run["status"], run["cancel_reason"]) == ("cancelled", INTERRUPTED)
    statuses = [t["status"] for t in run["tasks"]]  # type: ignore[union-attr]
    assert "running" not in statuses and statuses.count("completed") < 8, statuses


def test_beside_a_running_server_commands_that_would_run_crews_stop_with_one_line(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    server = Server(data_dir, tmp_path / "serve.log")
    server.start()
    try:
        for args in (["run", "examples/math_crew.yaml", "--input", "units=2", "--input",
                      "price=3"], ["projections", "rebuild"]):
            refused = kasal(*args, data_dir=data_dir)
            assert refused.returncode == 1, refused.stdout + refused.stderr
            (line,) = refused.stderr.strip().splitlines()  # one line, no traceback
            assert server.process is not None
            assert line == (f"Error: {data_dir} is in use by kasal serve (pid "
                            f"{server.process.pid}): stop it first, or give this command its "
                            "own --data-dir")
        # defining goes through the log beside the server: the server's projector shows it
        defined = kasal("import", str(PROJECTS / "latest_ai"), data_dir=data_dir)
        assert defined.returncode == 0, defined.stderr
        with server.client() as client:
            names = [c["name"] for c in client.get("/crews?min_position=1").json()["items"]]
        assert "latest_ai" in names
    finally:
        server.stop()


def broken_project(tmp_path: Path, extra: str, agent_body: str) -> Path:
    package = tmp_path / "src" / "broken"
    shutil.copytree(PROJECTS / "latest_ai" / "src" / "latest_ai" / "config", package / "config")
    (package / "__init__.py").write_text("")
    (package / "config" / "tasks.yaml").write_text(
        "research_task:\n  description: d\n  expected_output: o\n  agent: researcher\n")
    (package / "crew.py").write_text(CREW_PY.format(extra=extra, agent_body=agent_body))
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "broken"\n')
    return tmp_path


def test_the_project_code_runs_without_kasal_s_settings_and_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KASAL_ENCRYPTION_KEY", "secret-probe")
    monkeypatch.setenv("DATABASE_URL", "postgresql://kasal:secret-probe@db/kasal")
    root = broken_project(tmp_path, "import os", 'raise RuntimeError("seen: " + ",".join('
                          'sorted(k for k in os.environ if "secret-probe" in os.environ[k])))')
    with pytest.raises(ProjectError, match=r"RuntimeError: seen: $"):
        load_project(root)


def test_an_llm_endpoint_that_cannot_be_carried_refuses_the_import(tmp_path: Path) -> None:
    root = broken_project(
        tmp_path, "from crewai import LLM",
        'return Agent(config=self.agents_config["researcher"], '
        'llm=LLM(model="openai/gpt-4o-mini", base_url="http://127.0.0.1:9/v1"))')
    with pytest.raises(ProjectError, match=r"crew\.py:8: agent 'researcher': its llm sets "
                                           r"base_url, which Kasal cannot carry over yet"):
        load_project(root)


def test_a_project_with_crewai_tools_file_tools_runs_in_the_tenant_workspace(
    project: Callable[[str], CrewProject], tmp_path: Path,
) -> None:
    files = project("file_crew")
    assert files.agents["librarian"].tools == ["file_read", "file_write", "scrape_website"]
    assert files.agents["librarian"].tool_config == {
        "file_read": {"file_path": "knowledge/facts.txt"}}
    assert dropped(files) == {
        "agent 'librarian': tool FileWriterTool (crewai_tools.tools.file_writer_tool."
        "file_writer_tool) option base_dir": "src/file_crew/crew.py:11",
    }
    # a tool's options count in the fingerprint only when set: projects imported before
    # tool options existed keep theirs (their re-import stays a no-op)
    assert "tool_config" in json.dumps(DEFINITIONS["file_crew"])
    project("latest_ai")
    assert "tool_config" not in json.dumps(DEFINITIONS["latest_ai"])
    done = kasal("run", str(PROJECTS / "file_crew"), data_dir=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "copied knowledge/facts.txt into the workspace of tenant default" in done.stdout
    _, runs = asyncio.run(crews_and_runs(tmp_path))
    (run,) = runs
    assert run["status"] == "completed", run.get("error")
    space = Workspace(tmp_path / "workspaces", "default")
    assert (space.root / "knowledge" / "facts.txt").read_text().startswith("Barn owls")
    assert "Barn owls can hear a mouse" in (space.root / "findings.md").read_text()


def test_a_projects_knowledge_sources_are_imported_and_known_to_its_run(
    project: Callable[[str], CrewProject], tmp_path: Path,
) -> None:
    """crew.py's knowledge sources (a text file, a CSV, a PDF in knowledge/, a string), read
    by CrewAI's own source classes, become Kasal knowledge sources of the agent and the crew;
    the run knows them, and importing the project again adds nothing."""
    read = project("knowledge_crew")
    assert {key: [(d.name, d.media_type) for d in docs] for key, docs in read.knowledge.items()
            } == {"naturalist": [("owls.csv", "text/csv"), ("field_guide.pdf", "application/pdf")],
                  "": [("user_preference.txt", "text/plain"),
                       ("StringKnowledgeSource 1.0", "text/plain")]}
    assert "facial disc funnels sound" in read.knowledge["naturalist"][1].text  # the PDF's
    assert dropped(read) == {}
    # crewai-tools' TXTSearchTool, read without indexing anything, is Kasal's txt_search
    assert read.agents["naturalist"].tools == ["txt_search"]
    assert read.agents["naturalist"].tool_config == {
        "txt_search": {"txt": "knowledge/user_preference.txt"}}

    done = kasal("run", str(PROJECTS / "knowledge_crew"), data_dir=tmp_path, vectors=True)
    assert done.returncode == 0, done.stdout + done.stderr
    again = kasal("import", str(PROJECTS / "knowledge_crew"), data_dir=tmp_path, vectors=True)
    assert again.returncode == 0, again.stdout + again.stderr

    async def read_back() -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
        settings = Settings(KASAL_DATA_DIR=tmp_path, KASAL_VECTOR_SEARCH=False)  # type: ignore[call-arg]
        app = await bootstrap(settings)
        await app.start()
        try:
            await app.wait_until_projected(10.0)
            sources = (await app.read_models.list_knowledge_sources("default")).items
            crews = (await app.read_models.list_crews("default")).items
            [execution] = (await app.read_models.list_executions("default")).items
            run = (await app.read_models.get_execution("default", str(execution["id"]))).item
            assert run is not None and run["status"] == "completed", run
            return sources, crews, str(run["result"])
        finally:
            await app.stop()

    sources, crews, result = asyncio.run(read_back())
    assert sorted(s["name"] for s in sources) == [
        "StringKnowledgeSource 1.0", "field_guide.pdf", "owls.csv", "user_preference.txt"]
    [crew] = crews  # the second import defined nothing new
    assert len(crew["knowledge_sources"]) == 2
    assert "It knows:" in result and "Owls cannot move their eyes." in result
    assert "facial disc" in result and "User name is Ada." in result


def test_kasal_knowledge_adds_files_read_as_crewai_reads_them(tmp_path: Path) -> None:
    knowledge = PROJECTS / "knowledge_crew" / "knowledge"
    added = kasal("knowledge", "add", str(knowledge / "field_guide.pdf"),
                  str(knowledge / "owls.csv"), data_dir=tmp_path)
    assert added.returncode == 0, added.stdout + added.stderr
    lines = [line.split("\t") for line in added.stdout.strip().splitlines()]
    assert [(name, media) for _, name, media, _ in lines] == [
        ("field_guide.pdf", "application/pdf"), ("owls.csv", "text/csv")]
    listed = kasal("knowledge", "list", data_dir=tmp_path)
    assert sorted(line.split("\t")[1] for line in listed.stdout.strip().splitlines()) == [
        "field_guide.pdf", "owls.csv"]
    binary = tmp_path / "image.bin"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    refused = kasal("knowledge", "add", str(knowledge / "owls.csv"), str(binary),
                    data_dir=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"Error: {binary}: not UTF-8 text (Kasal reads .txt, " \
                                     ".md, .csv, .json and .pdf files)"
    after = kasal("knowledge", "list", data_dir=tmp_path)
    assert len(after.stdout.strip().splitlines()) == 2  # nothing added: every file is read first
