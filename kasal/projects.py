"""Import a CrewAI project through commands, and run a crew end to end (``kasal run``)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from adapters.crewai.project import CrewProject, ProjectError, load_project
from adapters.crewai.workspace import Workspace, WorkspaceError
from commands import messages as m
from commands.context import CommandContext
from domain.errors import DomainError
from domain.vocabulary import ExecutionStatus
from kasal.bootstrap import Kasal
from projections.live import follow_execution

ACTOR = "cli"
INTERRUPTED = "interrupted: Ctrl-C in kasal run"


def read_project(path: Path, default_llm: str | None, crew: str | None, *, strict: bool,
                 console: Console, allow_code: bool = False) -> CrewProject:
    """The project at ``path``, with what is not carried over printed (or, with ``strict``,
    refused: exit 1, nothing defined)."""
    try:
        project = load_project(path, default_llm, crew, allow_code)
    except ProjectError as error:
        raise click.ClickException(str(error)) from None
    if project.dropped:
        lines = "\n".join(f"  {item}" for item in project.dropped)
        if strict:
            raise click.ClickException(
                f"--strict: {len(project.dropped)} "
                f"thing{'s' if len(project.dropped) != 1 else ''} in {path} "
                f"{'are' if len(project.dropped) != 1 else 'is'} not carried over; "
                f"nothing was defined:\n{lines}")
        console.print(f"[yellow]not carried over ({len(project.dropped)}):[/]")
        for item in project.dropped:
            console.print(f"  {escape(str(item))}", highlight=False, soft_wrap=True)
    return project


def place_files(kasal: Kasal, project: CrewProject, tenant: str, console: Console) -> None:
    """Copy the project files its tools name into the tenant's workspace, saying so; a file
    the workspace holds already is kept (an agent or an earlier import may have changed it)."""
    space = Workspace(kasal.settings.workspace_dir, tenant)
    for path, source in project.files.items():
        try:
            target = space.resolve(path)
            if target.exists():
                if target.read_bytes() != source.read_bytes():
                    console.print(f"kept the workspace's {escape(path)} (it differs from the "
                                  "project's)", highlight=False, soft_wrap=True)
                continue
            space.put(path, source.read_bytes())
        except (WorkspaceError, OSError) as error:
            raise click.ClickException(f"{path}: cannot copy it into the workspace: {error}"
                                       ) from None
        console.print(f"copied {escape(path)} into the workspace of tenant {escape(tenant)}",
                      highlight=False, soft_wrap=True)


async def import_project(kasal: Kasal, project: CrewProject, tenant: str) -> str:
    """Define the project's knowledge sources, agents and crew; the same project imported
    twice adds nothing."""
    prefix = f"import:{project.name}:{project.fingerprint}"

    def context(name: str) -> CommandContext:
        return CommandContext(tenant_id=tenant, actor=ACTOR, command_id=f"{prefix}:{name}")

    knowledge: dict[str, list[str]] = {}
    for owner, docs in project.knowledge.items():
        for index, doc in enumerate(docs):
            added = await kasal.bus.dispatch(
                m.AddKnowledgeSource(name=doc.name, text=doc.text, media_type=doc.media_type,
                                     origin=doc.origin),
                context(f"knowledge:{owner or '@crew'}:{index}"))
            knowledge.setdefault(owner, []).append(added.aggregate_id)
    agent_ids: dict[str, str] = {}
    for key, command in project.agents.items():
        if knowledge.get(key):
            command = command.model_copy(update={"knowledge_sources": knowledge[key]})
        result = await kasal.bus.dispatch(command, context(key))
        agent_ids[key] = result.aggregate_id
    crew = await kasal.bus.dispatch(project.crew_command(agent_ids, knowledge.get("")),
                                    context("crew"))
    return crew.aggregate_id


def parse_inputs(pairs: tuple[str, ...]) -> dict[str, str]:
    inputs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--input {pair!r}: expected key=value")
        inputs[key.strip()] = value
    return inputs


async def run_project(
    kasal: Kasal,
    project: CrewProject,
    inputs: dict[str, Any],
    *,
    tenant: str,
    timeout_s: float | None,
    console: Console,
) -> dict[str, Any]:
    place_files(kasal, project, tenant, console)  # first: a file that cannot go defines nothing
    crew_id = await import_project(kasal, project, tenant)
    console.print(f"[bold]crew[/] {escape(project.name)} ({project.process}, "
                  f"{len(project.agents)} agents, {len(project.tasks)} tasks): {crew_id}")
    requested = await kasal.bus.dispatch(
        m.RequestExecution(crew_id=crew_id, inputs=inputs, timeout_s=timeout_s),
        CommandContext(tenant_id=tenant, actor=ACTOR),
    )
    execution_id = requested.aggregate_id
    console.print(f"[bold]execution[/] {execution_id}")
    shown = _Shown()
    try:
        await _follow(kasal, tenant, execution_id, console, shown)
    except asyncio.CancelledError:  # Ctrl-C: asyncio.run cancels this task once
        task = asyncio.current_task()
        if task is None or task.uncancel() > 0:
            raise
        console.print("[yellow]interrupted: cancelling the execution (Ctrl-C again to stop "
                      "waiting for it to end)[/]")
        with contextlib.suppress(DomainError):  # it ended meanwhile: the follow shows how
            await kasal.bus.dispatch(
                m.CancelExecution(execution_id=execution_id, reason=INTERRUPTED),
                CommandContext(tenant_id=tenant, actor=ACTOR))
        await _follow(kasal, tenant, execution_id, console, shown)
    await kasal.wait_until_projected(10.0)
    view = (await kasal.read_models.get_execution(tenant, execution_id)).item
    assert view is not None
    return view


class _Shown:
    version = 0  # the last timeline entry printed


async def _follow(kasal: Kasal, tenant: str, execution_id: str, console: Console,
                  shown: _Shown) -> None:
    """Print the execution's steps after ``shown`` as they happen, until it ends."""
    with console.status("running…") as status:
        async for entry in follow_execution(kasal.live, kasal.read_models, kasal.clock, tenant,
                                            execution_id, after=shown.version, keepalive_s=5.0):
            if entry is None:
                continue
            shown.version = entry["version"]
            status.update(escape(entry["summary"]))
            console.print(f"  [dim]{entry['occurred_at'][11:23]}[/] {escape(entry['summary'])}")


def print_outcome(view: dict[str, Any], console: Console) -> None:
    colour = {ExecutionStatus.COMPLETED: "green", ExecutionStatus.FAILED: "red"}.get(
        view["status"], "yellow"
    )
    console.print(f"\n[bold {colour}]{view['status']}[/]")
    if view["result"]:
        console.print(view["result"], markup=False, highlight=False)
    if view["error"]:
        console.print(f"[red]{escape(view['error'])}[/]")
    usage = Table(title="usage", show_header=False)
    for name in ("llm_calls", "prompt_tokens", "completion_tokens", "total_tokens"):
        usage.add_row(name, str(view[name]))
    usage.add_row("cost (USD)", f"{view['cost']:.6f}")
    console.print(usage)
