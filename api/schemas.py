"""Response models of the HTTP API (request bodies are the command messages)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class WriteResult(Model):
    id: str = Field(description="the aggregate's id")
    version: int = Field(description="the aggregate's version after this command")
    position: int = Field(
        description="global log position of the last event; pass it as "
        "min_position to read your write"
    )


class IssuedKey(WriteResult):
    key: str = Field(description="the API key; shown once, store it now")
    prefix: str
    role: str
    tenant_id: str


class AgentOut(Model):
    id: str
    role: str
    goal: str
    backstory: str
    llm: str
    tools: list[str]
    allow_delegation: bool
    max_iter: int
    archived: bool
    version: int
    created_at: str
    updated_at: str


class TaskOut(Model):
    name: str
    description: str
    expected_output: str
    agent: str | None
    context: list[str]
    human_input: bool


class CrewOut(Model):
    id: str
    name: str
    process: str
    agents: list[str]
    tasks: list[TaskOut]
    manager_llm: str | None
    memory: bool
    archived: bool
    version: int
    created_at: str
    updated_at: str


class ExecutionTaskOut(Model):
    name: str
    agent: str | None
    status: str
    output: str | None


class ExecutionOut(Model):
    id: str
    crew_id: str
    crew_name: str
    status: Literal["requested", "running", "cancel_requested", "completed", "failed", "cancelled"]
    inputs: dict[str, Any]
    tasks: list[ExecutionTaskOut]
    result: str | None
    error: str | None
    cancel_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float
    llm_calls: int
    requested_by: str
    requested_at: str
    started_at: str | None
    finished_at: str | None
    version: int


class TimelineEntry(Model):
    version: int
    position: int
    type: str
    occurred_at: str
    task_name: str | None
    summary: str
    data: dict[str, Any]


class ApiKeyOut(Model):
    id: str
    name: str
    role: str
    prefix: str
    revoked: bool
    created_by: str
    created_at: str
    revoked_at: str | None


class AuditEvent(Model):
    event_id: str
    version: int
    position: int
    type: str
    schema_version: int
    occurred_at: str
    actor: str
    command_id: str
    correlation_id: str
    causation_id: str
    payload: dict[str, Any]
    prev_hash: str
    hash: str


class Page(Model):
    total: int
    limit: int
    offset: int
    position: int = Field(description="the log position these rows reflect")


class AgentPage(Page):
    items: list[AgentOut]


class CrewPage(Page):
    items: list[CrewOut]


class ExecutionPage(Page):
    items: list[ExecutionOut]


class ApiKeyPage(Page):
    items: list[ApiKeyOut]


class Timeline(Model):
    execution_id: str
    position: int
    items: list[TimelineEntry]


class AuditTrail(Model):
    aggregate_type: str
    aggregate_id: str
    position: int
    chain_valid: bool = Field(description="every event's hash and link verified")
    chain_error: str | None
    events: list[AuditEvent]


class SearchHit(Model):
    id: str = Field(description="the agent, crew or execution id")
    kind: Literal["agent", "crew", "execution"]
    score: float = Field(description="cosine similarity, higher is closer")
    title: str
    text: str


class SearchResults(Model):
    query: str
    model: str = Field(description="the embedding model the index was built with")
    position: int = Field(description="the log position the vector index reflects")
    items: list[SearchHit]
