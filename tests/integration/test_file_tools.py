"""crewai-tools' file tools in a tenant's workspace: every path is checked by Kasal (whatever
CrewAI's own sandbox settings say), one tenant never reaches another's files."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from crewai.tools.tool_failure import ToolFailure

from adapters.crewai.file_tools import directory_read, file_read, file_write
from adapters.crewai.tool_names import tool_config_problem
from adapters.crewai.tools import build_tools
from adapters.crewai.workspace import Workspace, WorkspaceError
from kasal.cli import main


@pytest.fixture
def space(tmp_path: Path) -> Workspace:
    workspace = Workspace(tmp_path / "workspaces", "acme")
    workspace.put("notes.txt", b"Owls hunt at night.\nThey fly silently.\n")
    workspace.put("docs/plan.md", b"# Plan\n")
    (tmp_path / "secret.txt").write_text("not yours")
    return workspace


@pytest.fixture(params=["default", "crewai escape hatch on"])
def sandbox_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kasal's checks hold whatever crewai-tools' own sandbox settings are."""
    if request.param != "default":
        monkeypatch.setenv("CREWAI_TOOLS_ALLOW_UNSAFE_PATHS", "true")
        monkeypatch.setenv("ALLOW_UNSAFE_PATHS", "true")


def refused(answer: object) -> bool:
    """The tool's answer is a failure (recorded as one) whose text says so."""
    return isinstance(answer, ToolFailure) and answer.as_agent_message().startswith("Error: ")


ESCAPES = ["../secret.txt", "/etc/passwd", "docs/../../secret.txt", "link/secret.txt",
           "notes.txt\x00.md"]


def test_file_read_reads_inside_and_refuses_every_way_out(
    space: Workspace, tmp_path: Path, sandbox_env: None,
) -> None:
    (space.root / "link").symlink_to(tmp_path)  # a symlink out of the workspace
    tool = file_read(space)
    assert tool.run(file_path="notes.txt").startswith("Owls hunt at night.")
    assert tool.run(file_path="notes.txt", start_line=2, line_count=1) == "They fly silently.\n"
    for path in ESCAPES:
        answer = tool.run(file_path=path)
        assert refused(answer) and "not yours" not in answer.message, (path, answer)
    assert file_read(space, "notes.txt").run().startswith("Owls")  # the configured file


def test_file_write_writes_inside_only(space: Workspace, tmp_path: Path,
                                       sandbox_env: None) -> None:
    tool = file_write(space)
    answer = tool.run(filename="out/haiku.md", content="Silent wings", overwrite="true")
    assert "out/haiku.md" in answer and str(space.root) not in answer
    assert (space.root / "out" / "haiku.md").read_text() == "Silent wings"
    outside = tmp_path / f"escape-{uuid.uuid4().hex}.txt"
    for filename, directory in [("../x.txt", "./"), ("x.txt", "../"), (str(outside), "./"),
                                (outside.name, str(tmp_path))]:
        answer = tool.run(filename=filename, content="no", directory=directory)
        assert refused(answer), (filename, directory, answer)
    assert not outside.exists() and not (space.root.parent / "x.txt").exists()
    # what the disk refuses comes back as a message, with no host path in it
    for filename, directory in [("notes.txt/x", "./"), ("x.txt", "notes.txt"),
                                ("n" * 300 + ".txt", "./")]:
        answer = tool.run(filename=filename, content="no", directory=directory)
        assert refused(answer) and str(space.root) not in answer.message, answer
    assert refused(file_read(space).run(file_path="n" * 300 + ".txt"))


def test_directory_read_lists_the_workspace_only(space: Workspace, tmp_path: Path) -> None:
    (space.root / "link").symlink_to(tmp_path)
    listing = directory_read(space).run(directory=".")
    assert "notes.txt" in listing and "docs/plan.md" in listing
    assert "secret" not in listing
    assert refused(directory_read(space).run(directory=".."))


def test_tenants_never_share_files(tmp_path: Path) -> None:
    acme, globex = Workspace(tmp_path, "acme"), Workspace(tmp_path, "globex")
    acme.put("plan.md", b"acme's plan")
    assert refused(file_read(globex).run(file_path="plan.md"))
    assert globex.files() == [] and acme.files() == [("plan.md", 11)]
    odd = Workspace(tmp_path, "../globex")  # a tenant id that is not a folder name
    assert odd.root.parent == tmp_path.resolve() and odd.root.name.startswith("t-")
    # no tenant id names another's folder: not a hash-like id, not another case
    hashed = "t-" + hashlib.sha256(b"Acme Corp").hexdigest()[:40]
    roots = {Workspace(tmp_path, t).root for t in ("Acme Corp", hashed, "acme", "ACME")}
    assert len(roots) == 4


@pytest.mark.parametrize(("name", "config", "problem", "built"), [
    ("file_read", {"file_path": "../x"}, "leaves the workspace", "leaves the workspace"),
    ("file_read", {"file_path": "/etc/passwd"}, "is absolute", "is absolute"),
    ("file_read", {"base_dir": "/"}, "takes file_path; not base_dir", "not base_dir"),
    ("file_write", {"directory": "x"}, "takes no options; not directory", "not directory"),
    ("web_search", {}, "unknown tool 'web_search'", r"unknown tool\(s\): web_search"),
])
def test_options_a_tool_cannot_take_are_named(name: str, config: dict[str, str],
                                              problem: str, built: str) -> None:
    found = tool_config_problem(name, config)
    assert found is not None and problem in found
    with pytest.raises((KeyError, ValueError), match=built):
        build_tools([name], Workspace(Path("/nonexistent"), "acme"), {name: config})


def test_a_workspace_path_is_checked_before_anything_is_touched(tmp_path: Path) -> None:
    space = Workspace(tmp_path, "acme")
    for path in ("", "/abs", "../up", "a/../../up", "nul\x00"):
        with pytest.raises(WorkspaceError):
            space.put(path, b"x")
    assert not any(p.is_file() for p in tmp_path.rglob("*"))
    assert os.listdir(tmp_path) in ([], ["acme"])


def test_kasal_workspace_puts_and_lists_a_tenant_s_files(tmp_path: Path) -> None:
    source = tmp_path / "facts.txt"
    source.write_text("Owls.")
    data = ["--data-dir", str(tmp_path / "data")]
    put = CliRunner().invoke(main, ["workspace", "put", str(source), "--as", "docs/facts.txt",
                                    "--tenant", "acme", *data])
    assert put.exit_code == 0, put.output
    assert put.output.strip() == "docs/facts.txt (5 bytes)"
    listed = CliRunner().invoke(main, ["workspace", "list", "--tenant", "acme", *data])
    assert listed.output.strip() == "docs/facts.txt\t5"
    other = CliRunner().invoke(main, ["workspace", "list", "--tenant", "globex", *data])
    assert other.exit_code == 0 and other.output == ""
    refused = CliRunner().invoke(main, ["workspace", "put", str(source), "--as", "../x.txt",
                                        "--tenant", "acme", *data])
    assert refused.exit_code == 1
    assert refused.output.strip() == ("Error: '../x.txt' leaves the workspace ('..'): give a "
                                      "path inside it")


def test_file_read_brings_no_more_than_one_read_into_a_prompt(space: Workspace) -> None:
    space.put("big.log", b"".join(f"line {i}\n".encode() for i in range(40_000)))  # ~390 KB
    space.put("wide.txt", b"x" * 300_000 + b"\n")
    tool = file_read(space)
    whole = tool.run(file_path="big.log")
    assert refused(whole) and "read it in windows of lines" in whole.message
    assert tool.run(file_path="big.log", start_line=39_999, line_count=2) == (
        "line 39998\nline 39999\n")
    wide = tool.run(file_path="wide.txt", line_count=1)
    assert refused(wide) and "ask for fewer lines" in wide.message
    assert refused(file_read(space, "big.log").run())  # the configured file, likewise
