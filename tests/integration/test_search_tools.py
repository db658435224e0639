"""crewai-tools' RAG search tools in Kasal: crewai-tools' loaders and chunkers over the
tenant's workspace, searched through the run's hooks (Kasal's embedder and vector index),
never through chromadb or a hosted embedding model."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from adapters.crewai.engine import CrewAIEngine
from adapters.crewai.tool_names import tool_config_problem
from adapters.crewai.tools import build_tools
from adapters.crewai.workspace import Workspace

from .support import RecordingHooks, agent, crew, task

GUIDE = Path(__file__).parents[1] / "projects" / "knowledge_crew" / "knowledge"


@pytest.fixture
def engine(tmp_path: Path) -> CrewAIEngine:
    return CrewAIEngine(max_retries=1, retry_base_delay=0.01, retry_max_delay=0.05,
                        workspaces=tmp_path / "workspaces")


@pytest.fixture
def space(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path / "workspaces", "acme")
    workspace.put("notes.txt", b"Barn owls hunt by sound alone.\n\nKestrels hover.")
    workspace.put("guides/field_guide.pdf", (GUIDE / "field_guide.pdf").read_bytes())
    workspace.put("guides/owls.csv", (GUIDE / "owls.csv").read_bytes())
    return workspace


def test_a_configured_txt_search_searches_its_file(engine: CrewAIEngine,
                                                   space: Workspace) -> None:
    agents = {"r": replace(agent("Reader", tools=("txt_search",)),
                           tool_config={"txt_search": {"txt": "notes.txt"}})}
    spec = crew(task("find", "Look up how barn owls hunt.", "r"), agents=("r",))
    hooks = RecordingHooks()

    result = engine.run(spec, agents, {}, hooks)

    [used] = hooks.tools
    assert used.tool == "search_a_txts_content" and used.error is None
    assert json.loads(used.tool_input) == {"search_query": "how barn owls hunt"}
    assert hooks.of("search_documents") == [(("notes.txt",), "how barn owls hunt", 5)]
    assert used.output.startswith("Relevant Content:\nBarn owls hunt by sound alone.")
    assert "Barn owls hunt by sound alone." in result.output


def test_an_unconfigured_pdf_search_reads_the_pdf_the_agent_names(
    engine: CrewAIEngine, space: Workspace,
) -> None:
    agents = {"r": agent("Reader", tools=("pdf_search",))}
    spec = crew(task("find", "Look up the facial disc in guides/field_guide.pdf.", "r"),
                agents=("r",))
    hooks = RecordingHooks()

    engine.run(spec, agents, {}, hooks)

    [used] = hooks.tools
    assert json.loads(used.tool_input) == {"query": "the facial disc",
                                           "pdf": "guides/field_guide.pdf"}
    assert used.output == ("Relevant Content:\nPage 1:\n\nField guide: the barn owl's facial "
                           "disc funnels sound to its ears.")  # crewai-tools' PDF loader


def test_a_directory_search_reads_each_file_by_its_kind(tmp_path: Path,
                                                        space: Workspace) -> None:
    """...skipping hidden folders (a .git/ with a token) and naming what it cannot read."""
    space.put("img/logo.png", b"\x89PNG\r\n\x1a\n\x80\x81")
    (space.root / ".git").mkdir()
    (space.root / ".git" / "config").write_text("token = snowy-secret sight")
    hooks = RecordingHooks()
    [tool] = build_tools(["directory_search"], space, {"directory_search": {"directory": "."}},
                         hooks)
    found = tool.run(search_query="snowy owl sight")
    [(names, _, _)] = hooks.of("search_documents")
    assert names == ("guides/field_guide.pdf", "guides/owls.csv", "notes.txt")
    assert "Row 2: species: snowy owl | hunts_by: sight" in found  # crewai-tools' CSV rows
    assert found.endswith("(not searched, unreadable: img/logo.png)")
    assert "secret" not in found


def test_a_search_outside_the_workspace_is_a_failed_call(tmp_path: Path,
                                                         space: Workspace) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (space.root / "link.txt").symlink_to(secret)
    hooks = RecordingHooks()
    [tool] = build_tools(["txt_search"], space, None, hooks)
    for path in ("../secret.txt", "/etc/hostname", "link.txt", "missing.txt"):
        answer = tool.run(search_query="anything", txt=path)
        assert answer.message.startswith("Error: "), (path, answer)
        assert str(space.root) not in answer.message
    assert hooks.of("search_documents") == []  # nothing was read, nothing searched
    assert tool_config_problem("txt_search", {"txt": "../secret.txt"}) is not None
    with pytest.raises(ValueError, match="build it for a run"):
        build_tools(["txt_search"], space)
