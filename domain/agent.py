"""The Agent aggregate: one CrewAI agent definition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from eventsourcing.domain import event

from domain.base import Definition, check_text
from domain.errors import InvalidDefinition
from domain.knowledge import check_sources
from domain.project_code import ProjectTool, check_pins
from domain.vocabulary import AggregateType

MAX_TOOLS = 32
MAX_TOOL_OPTIONS = 8
LIMITS = {"max_rpm": 10_000, "max_execution_time": 86_400}  # name: the largest allowed


@dataclass(frozen=True)
class AgentSpec:
    role: str
    goal: str
    backstory: str
    llm: str
    tools: tuple[str, ...] = ()
    allow_delegation: bool = False
    max_iter: int = 20
    # per tool, its options (data: names and text), e.g. {"file_read": {"file_path": "a.txt"}}
    tool_config: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # CrewAI's limits: model calls a minute, seconds a task may take (None: none)
    max_rpm: int | None = None
    max_execution_time: int | None = None
    # the knowledge sources (ids) the agent's tasks are given, as CrewAI's
    # Agent(knowledge_sources=...)
    knowledge_sources: tuple[str, ...] = ()
    # the project's own tools the agent names (``project:<sha256>`` in ``tools``), by SHA-256:
    # their source, pinned (domain.project_code)
    project_tools: Mapping[str, ProjectTool] = field(default_factory=dict)

    def as_payload(self) -> dict[str, Any]:
        data = asdict(self)
        data["tools"] = list(self.tools)
        data["tool_config"] = {name: dict(options) for name, options in self.tool_config.items()}
        for limit in LIMITS:  # unset: the payload agents had before the limits existed
            if data[limit] is None:
                del data[limit]
        data["knowledge_sources"] = list(self.knowledge_sources)
        if not self.knowledge_sources:  # likewise
            del data["knowledge_sources"]
        data["project_tools"] = {sha: tool.as_payload()
                                 for sha, tool in sorted(self.project_tools.items())}
        if not self.project_tools:  # likewise
            del data["project_tools"]
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> AgentSpec:
        return cls(**{**data, "tools": tuple(data.get("tools", ())),
                      "tool_config": dict(data.get("tool_config") or {}),
                      "knowledge_sources": tuple(data.get("knowledge_sources", ())),
                      "project_tools": {sha: ProjectTool.from_payload(tool) for sha, tool
                                        in (data.get("project_tools") or {}).items()}})


def check_agent_spec(spec: AgentSpec) -> AgentSpec:
    if spec.max_iter < 1 or spec.max_iter > 100:
        raise InvalidDefinition("max_iter must be between 1 and 100")
    for limit, largest in LIMITS.items():
        value = getattr(spec, limit)
        if value is not None and not 1 <= value <= largest:
            raise InvalidDefinition(f"{limit} must be between 1 and {largest} (or unset)")
    if len(spec.tools) > MAX_TOOLS:
        raise InvalidDefinition(f"an agent may use at most {MAX_TOOLS} tools")
    if len(set(spec.tools)) != len(spec.tools):
        raise InvalidDefinition("tools must not repeat a name")
    for name, options in spec.tool_config.items():
        if name not in spec.tools:
            raise InvalidDefinition(f"tool_config.{name}: the agent does not use tool {name!r}")
        if len(options) > MAX_TOOL_OPTIONS:
            raise InvalidDefinition(f"tool_config.{name}: at most {MAX_TOOL_OPTIONS} options")
    check_pins(spec.tools, spec.project_tools)
    return AgentSpec(
        role=check_text("role", spec.role, max_length=200),
        goal=check_text("goal", spec.goal),
        backstory=check_text("backstory", spec.backstory),
        llm=check_text("llm", spec.llm, max_length=200),
        tools=tuple(check_text("tool name", t, max_length=100) for t in spec.tools),
        allow_delegation=spec.allow_delegation,
        max_iter=spec.max_iter,
        max_rpm=spec.max_rpm,
        max_execution_time=spec.max_execution_time,
        knowledge_sources=check_sources("knowledge_sources", spec.knowledge_sources),
        tool_config={name: {check_text("tool option", k, max_length=100):
                            check_text(f"tool_config.{name}.{k}", v, max_length=1000)
                            for k, v in options.items()}
                     for name, options in spec.tool_config.items()},
        project_tools=dict(spec.project_tools),
    )


class Agent(Definition[AgentSpec]):
    AGGREGATE_TYPE = AggregateType.AGENT

    @classmethod
    def register(cls, tenant_id: str, spec: AgentSpec) -> Agent:
        return cls(tenant_id=tenant_id, spec=cls.checked(spec))

    @staticmethod
    def checked(spec: AgentSpec) -> dict[str, Any]:
        return check_agent_spec(spec).as_payload()

    @event("Registered")
    def __init__(self, tenant_id: str, spec: dict[str, Any]) -> None:
        self.tenant_id = tenant_id
        self.spec = AgentSpec.from_payload(spec)
        self.archived = False

    @event("Updated")
    def _updated(self, spec: dict[str, Any]) -> None:
        self.spec = AgentSpec.from_payload(spec)

    @event("Archived")
    def _archived(self) -> None:
        self.archived = True


__all__ = ["Agent", "AgentSpec", "check_agent_spec"]
