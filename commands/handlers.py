"""One handler per command: load, call the domain, return the changed aggregate."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from commands import messages as m
from commands.context import CommandContext
from commands.errors import MissingCredentials, NotFound
from commands.repository import Repository
from domain.agent import Agent, AgentSpec
from domain.api_key import ApiKey
from domain.base import KasalAggregate
from domain.crew import Crew, CrewSpec, TaskSpec
from domain.errors import InvalidDefinition
from domain.execution import Execution
from domain.knowledge import KnowledgeSource
from domain.project_code import CODE_OFF, PREFIX, ProjectCodeRefused, ProjectTool, is_project_tool


@dataclass(frozen=True)
class HandlerDeps:
    default_llm: str = "kasal-offline/default"
    known_tools: frozenset[str] | None = None  # None: any tool name is accepted
    # what is wrong with a tool's options (None: nothing); None: any options are accepted
    tool_config_problem: Callable[[str, Mapping[str, object]], str | None] | None = None
    # why a model cannot be routed / which credentials its run lacks (None: anything goes)
    llm_problem: Callable[[str], str | None] | None = None
    llm_credentials_problem: Callable[[str], str | None] | None = None
    # which environment variables a tool lacks on this server (None: not checked)
    tool_credentials_problem: Callable[[str], str | None] | None = None
    # the operator's KASAL_ALLOW_PROJECT_CODE: agents may name a project's own tools
    allow_project_code: bool = False


def check_project_code(who: str, tools: Sequence[str], deps: HandlerDeps) -> None:
    """A project's own tools are code: refused unless the operator allows it."""
    named = [name for name in tools if is_project_tool(name)]
    if named and not deps.allow_project_code:
        raise ProjectCodeRefused(f"{who} names project code ({', '.join(named)}); {CODE_OFF}")


async def check_knowledge(where: str, ids: Sequence[str], repo: Repository,
                          kept: Sequence[str] = ()) -> tuple[str, ...]:
    """Knowledge sources an agent or crew names: the tenant's, and not archived unless the
    definition named it already (``kept``: what names a source keeps it)."""
    for index, knowledge_id in enumerate(ids):
        try:
            source = await repo.get(KnowledgeSource, knowledge_id)
        except NotFound:
            raise InvalidDefinition(
                f"{where}[{index}]: knowledge source {knowledge_id} not found") from None
        if source.archived and knowledge_id not in kept:
            raise InvalidDefinition(
                f"{where}[{index}]: knowledge source {knowledge_id} is archived")
    return tuple(ids)


def check_tool_credentials(tools: Sequence[str], deps: HandlerDeps) -> None:
    """An agent's tools whose credentials this server lacks: refused before it is defined,
    and before a run of it is requested (it could only fail)."""
    for index, name in enumerate(tools):
        problem = deps.tool_credentials_problem(name) if deps.tool_credentials_problem else None
        if problem is not None:
            raise MissingCredentials(f"tools[{index}]: {problem}")


def check_llm(field: str, model: str, deps: HandlerDeps) -> str:
    problem = deps.llm_problem(model) if deps.llm_problem is not None else None
    if problem is not None:
        raise InvalidDefinition(f"{field}: {problem}")
    return model


Handler = Callable[[Any, Repository, CommandContext, HandlerDeps], Awaitable[KasalAggregate]]
A = TypeVar("A", bound=KasalAggregate)
Change = Callable[[A, Any, HandlerDeps], None]  # (the aggregate, the command, the deps)


def agent_spec(cmd: m.AgentFields, deps: HandlerDeps) -> AgentSpec:
    check_project_code("the agent", [*cmd.tools, *(PREFIX + sha for sha in cmd.project_tools)],
                       deps)
    if deps.known_tools is not None:
        unknown = sorted(set(cmd.tools) - deps.known_tools
                         - {name for name in cmd.tools if is_project_tool(name)})
        if unknown:
            raise InvalidDefinition(
                f"unknown tools {', '.join(unknown)}; available: "
                + ", ".join(sorted(deps.known_tools))
            )
    if deps.tool_config_problem is not None:
        for name, options in cmd.tool_config.items():
            problem = deps.tool_config_problem(name, options)
            if problem is not None:
                raise InvalidDefinition(f"tool_config.{name}: {problem}")
    check_tool_credentials(cmd.tools, deps)
    bundles = {sha: ProjectTool(**tool.model_dump()) for sha, tool in cmd.project_tools.items()}
    return AgentSpec(
        role=cmd.role,
        goal=cmd.goal,
        backstory=cmd.backstory,
        llm=check_llm("llm", cmd.llm or deps.default_llm, deps),
        tools=tuple(cmd.tools),
        allow_delegation=cmd.allow_delegation,
        max_iter=cmd.max_iter,
        max_rpm=cmd.max_rpm,
        max_execution_time=cmd.max_execution_time,
        tool_config={name: dict(options) for name, options in cmd.tool_config.items()},
        knowledge_sources=tuple(cmd.knowledge_sources),
        project_tools=bundles,
    )


async def crew_spec(cmd: m.CrewFields, repo: Repository, deps: HandlerDeps,
                    kept: Sequence[str] = ()) -> CrewSpec:
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
    if manager_llm is not None:
        check_llm("manager_llm", manager_llm, deps)
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
                output_schema=t.output_schema,
                output_file=t.output_file,
            )
            for t in cmd.tasks
        ),
        manager_llm=manager_llm,
        memory=cmd.memory,
        knowledge_sources=await check_knowledge("knowledge_sources", cmd.knowledge_sources, repo,
                                                kept),
    )


def on(aggregate_class: type[A], id_field: str, change: Change[A]) -> Handler:
    """A handler that loads the command's aggregate (by its ``id_field``) and changes it."""

    async def handle(
        cmd: Any, repo: Repository, ctx: CommandContext, deps: HandlerDeps
    ) -> KasalAggregate:
        aggregate = await repo.get(aggregate_class, getattr(cmd, id_field))
        change(aggregate, cmd, deps)
        return aggregate

    return handle


async def register_agent(
    cmd: m.RegisterAgent, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    await check_knowledge("knowledge_sources", cmd.knowledge_sources, repo)
    return Agent.register(ctx.tenant_id, agent_spec(cmd, deps))


async def update_agent(
    cmd: m.UpdateAgent, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    agent = await repo.get(Agent, cmd.agent_id)
    await check_knowledge("knowledge_sources", cmd.knowledge_sources, repo,
                          agent.spec.knowledge_sources)
    agent.update(agent_spec(cmd, deps))
    return agent


async def add_knowledge_source(
    cmd: m.AddKnowledgeSource, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    return KnowledgeSource.add(ctx.tenant_id, cmd.name, cmd.text, cmd.media_type, cmd.origin)


async def define_crew(
    cmd: m.DefineCrew, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    return Crew.define(ctx.tenant_id, await crew_spec(cmd, repo, deps))


async def update_crew(
    cmd: m.UpdateCrew, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    crew = await repo.get(Crew, cmd.crew_id)
    crew.check_not_archived()
    crew.update(await crew_spec(cmd, repo, deps, crew.spec.knowledge_sources))
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
        check_tool_credentials(agent.spec.tools, deps)
        check_project_code(f"agent {agent_id}", agent.spec.tools, deps)
    if deps.llm_credentials_problem is not None:  # before a run that could only fail
        models = {spec.llm for spec in agents.values()}
        if crew.spec.manager_llm:
            models.add(crew.spec.manager_llm)
        for model in sorted(models):
            problem = deps.llm_credentials_problem(model)
            if problem is not None:
                raise MissingCredentials(problem)
    return Execution.request(
        ctx.tenant_id, crew.aggregate_id, crew.spec, agents, dict(cmd.inputs), cmd.timeout_s
    )


async def issue_api_key(
    cmd: m.IssueApiKey, repo: Repository, ctx: CommandContext, deps: HandlerDeps
) -> KasalAggregate:
    return ApiKey.issue(ctx.tenant_id, cmd.name, cmd.role.value, cmd.key_hash, cmd.prefix)


def apply_step(execution: Execution, step: m.Step) -> None:
    match step.kind:
        case "start":
            execution.start()
        case "task_started":
            execution.start_task(str(step.task_name))
        case "llm_call":
            execution.record_llm_call(dict(step.call or {}))
        case "tool_used":
            execution.record_tool_use(step.task_name, str(step.tool), step.tool_input, step.output,
                                      step.error, step.duration_ms)
        case "task_completed":
            execution.complete_task(str(step.task_name), step.output, step.output_json,
                                    step.output_problem)
        case "complete":
            execution.complete(step.output, dict(step.usage or {}))


def apply_steps(execution: Execution, cmd: m.RecordSteps, _: HandlerDeps) -> None:
    for step in cmd.steps:  # a refused step refuses the batch: nothing is appended
        apply_step(execution, step)


# the commands the execution runner sends
RUNNER_HANDLERS: dict[type[m.Command], Handler] = {
    m.RecordSteps: on(Execution, "execution_id", apply_steps),
    m.FailExecution: on(Execution, "execution_id", lambda e, c, _: e.fail(c.error)),
    m.ConfirmCancel: on(Execution, "execution_id", lambda e, c, _: e.confirm_cancel(c.reason)),
}


HANDLERS: dict[type[m.Command], Handler] = {
    m.RegisterAgent: register_agent,
    m.UpdateAgent: update_agent,
    m.ArchiveAgent: on(Agent, "agent_id", lambda agent, _, __: agent.archive()),
    m.DefineCrew: define_crew,
    m.UpdateCrew: update_crew,
    m.ArchiveCrew: on(Crew, "crew_id", lambda crew, _, __: crew.archive()),
    m.RequestExecution: request_execution,
    m.CancelExecution: on(Execution, "execution_id", lambda e, c, _: e.request_cancel(c.reason)),
    m.IssueApiKey: issue_api_key,
    m.RevokeApiKey: on(ApiKey, "api_key_id", lambda key, _, __: key.revoke()),
    m.AddKnowledgeSource: add_knowledge_source,
    m.ArchiveKnowledgeSource: on(KnowledgeSource, "knowledge_id",
                                 lambda source, _, __: source.archive()),
    **RUNNER_HANDLERS,
}
