"""One handler per command: load, call the domain, return the changed aggregate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from commands import messages as m
from commands.context import CommandContext
from commands.errors import NotFound
from commands.repository import Repository
from domain.agent import Agent, AgentSpec
from domain.api_key import ApiKey
from domain.base import KasalAggregate
from domain.crew import Crew, CrewSpec, TaskSpec
from domain.errors import InvalidDefinition
from domain.execution import Execution


@dataclass(frozen=True)
class HandlerDeps:
    default_llm: str = "kasal-offline/default"
    known_tools: frozenset[str] | None = None  # None: any tool name is accepted


Handler = Callable[[Any, Repository, CommandContext, HandlerDeps], Awaitable[KasalAggregate]]


def agent_spec(cmd: m.AgentFields, deps: HandlerDeps) -> AgentSpec:
    if deps.known_tools is not None:
        unknown = sorted(set(cmd.tools) - deps.known_tools)
        if unknown:
            raise InvalidDefinition(
                f"unknown tools {', '.join(unknown)}; available: "
                + ", ".join(sorted(deps.known_tools))
            )
    return AgentSpec(
        role=cmd.role,
        goal=cmd.goal,
        backstory=cmd.backstory,
        llm=cmd.llm or deps.default_llm,
        tools=tuple(cmd.tools),
        allow_delegation=cmd.allow_delegation,
        max_iter=cmd.max_iter,
    )


async def crew_spec(cmd: m.CrewFields, repo: Repository, deps: HandlerDeps) -> CrewSpec:
    for index, agent_id in enumerate(cmd.agents):
        try:
            agent = await repo.get(Agent, agent_id)
        except NotFound:
            raise InvalidDefinition(f"agents[{index}]: agent {agent_id} not found") from None
        if agent.archived:
            raise InvalidDefinition(f"agents[{index}]: agent {agent_id} is archived")
    manager_llm = cmd.manager_llm
    if cmd.process == "hierarchical" and manager_llm is None:
        manager_llm = deps.default_llm
    return CrewSpec(
        name=cmd.name,
        process=cmd.process,
        agents=tuple(cmd.agents),
        tasks=tuple(
            TaskSpec(
                name=t.name,
                description=t.description,
                expected_output=t.expected_output,
                agent=t.agent,
                context=tuple(t.context),
                human_input=t.human_input,
            )
            for t in cmd.tasks
        ),
        manager_llm=manager_llm,
        memory=cmd.memory,
    )


async def register_agent(
    cmd: m.RegisterAgent, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    return Agent.register(ctx.tenant_id, agent_spec(cmd, deps))


async def update_agent(
    cmd: m.UpdateAgent, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    agent = await repo.get(Agent, cmd.agent_id)
    agent.update(agent_spec(cmd, deps))
    return agent


async def archive_agent(
    cmd: m.ArchiveAgent, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    agent = await repo.get(Agent, cmd.agent_id)
    agent.archive()
    return agent


async def define_crew(
    cmd: m.DefineCrew, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    return Crew.define(ctx.tenant_id, await crew_spec(cmd, repo, deps))


async def update_crew(
    cmd: m.UpdateCrew, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    crew = await repo.get(Crew, cmd.crew_id)
    crew.check_not_archived()
    crew.update(await crew_spec(cmd, repo, deps))
    return crew


async def archive_crew(
    cmd: m.ArchiveCrew, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    crew = await repo.get(Crew, cmd.crew_id)
    crew.archive()
    return crew


async def request_execution(
    cmd: m.RequestExecution, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    try:
        crew = await repo.get(Crew, cmd.crew_id)
    except NotFound:
        raise InvalidDefinition(f"crew_id: crew {cmd.crew_id} not found") from None
    if crew.archived:
        raise InvalidDefinition(f"crew_id: crew {cmd.crew_id} is archived")
    agents = {}
    for agent_id in crew.spec.agents:
        agent = await repo.get(Agent, agent_id)
        agents[agent_id] = agent.spec
    return Execution.request(
        ctx.tenant_id, crew.aggregate_id, crew.spec, agents, dict(cmd.inputs), cmd.timeout_s
    )


async def cancel_execution(
    cmd: m.CancelExecution, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    execution = await repo.get(Execution, cmd.execution_id)
    execution.request_cancel(cmd.reason)
    return execution


async def issue_api_key(
    cmd: m.IssueApiKey, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    return ApiKey.issue(ctx.tenant_id, cmd.name, cmd.role.value, cmd.key_hash, cmd.prefix)


async def revoke_api_key(
    cmd: m.RevokeApiKey, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    key = await repo.get(ApiKey, cmd.api_key_id)
    key.revoke()
    return key


def execution_step(step: Callable[[Execution, Any], None]) -> Handler:
    """A runner command's handler: load the execution, apply one step of its state machine."""

    async def handle(
        cmd: Any, repo: Repository, ctx: CommandContext, deps: HandlerDeps
    ) -> KasalAggregate:
        execution = await repo.get(Execution, cmd.execution_id)
        step(execution, cmd)
        return execution

    return handle


def apply_step(execution: Execution, step: m.Step) -> None:
    match step.kind:
        case "start":
            execution.start()
        case "task_started":
            execution.start_task(str(step.task_name))
        case "llm_call":
            execution.record_llm_call(dict(step.call or {}))
        case "tool_used":
            execution.record_tool_use(step.task_name, str(step.tool), step.tool_input, step.output)
        case "task_completed":
            execution.complete_task(str(step.task_name), step.output)
        case "complete":
            execution.complete(step.output, dict(step.usage or {}))


def apply_steps(execution: Execution, cmd: m.RecordSteps) -> None:
    for step in cmd.steps:  # a refused step refuses the batch: nothing is appended
        apply_step(execution, step)


RUNNER_HANDLERS: dict[type[m.Command], Handler] = {
    m.RecordSteps: execution_step(apply_steps),
    m.FailExecution: execution_step(lambda e, c: e.fail(c.error)),
    m.ConfirmCancel: execution_step(lambda e, c: e.confirm_cancel(c.reason)),
}


HANDLERS: dict[type[m.Command], Handler] = {
    m.RegisterAgent: register_agent,
    m.UpdateAgent: update_agent,
    m.ArchiveAgent: archive_agent,
    m.DefineCrew: define_crew,
    m.UpdateCrew: update_crew,
    m.ArchiveCrew: archive_crew,
    m.RequestExecution: request_execution,
    m.CancelExecution: cancel_execution,
    m.IssueApiKey: issue_api_key,
    m.RevokeApiKey: revoke_api_key,
    **RUNNER_HANDLERS,
}
