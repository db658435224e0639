"""The Agent aggregate: one CrewAI agent definition."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from eventsourcing.domain import event

from domain.base import Definition, check_text
from domain.errors import InvalidDefinition
from domain.vocabulary import AggregateType

MAX_TOOLS = 32


@dataclass(frozen=True)
class AgentSpec:
    role: str
    goal: str
    backstory: str
    llm: str
    tools: tuple[str, ...] = ()
    allow_delegation: bool = False
    max_iter: int = 20

    def as_payload(self) -> dict[str, Any]:
        data = asdict(self)
        data["tools"] = list(self.tools)
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> AgentSpec:
        return cls(**{**data, "tools": tuple(data.get("tools", ()))})


def check_agent_spec(spec: AgentSpec) -> AgentSpec:
    if spec.max_iter < 1 or spec.max_iter > 100:
        raise InvalidDefinition("max_iter must be between 1 and 100")
    if len(spec.tools) > MAX_TOOLS:
        raise InvalidDefinition(f"an agent may use at most {MAX_TOOLS} tools")
    if len(set(spec.tools)) != len(spec.tools):
        raise InvalidDefinition("tools must not repeat a name")
    return AgentSpec(
        role=check_text("role", spec.role, max_length=200),
        goal=check_text("goal", spec.goal),
        backstory=check_text("backstory", spec.backstory),
        llm=check_text("llm", spec.llm, max_length=200),
        tools=tuple(check_text("tool name", t, max_length=100) for t in spec.tools),
        allow_delegation=spec.allow_delegation,
        max_iter=spec.max_iter,
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
