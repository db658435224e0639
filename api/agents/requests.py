"""The agent request body: what a client sends (the command adds the agent's id)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from commands.messages import Id, Name, ProjectToolFields, Sha256, Text, ToolOptions


class AgentBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    role: Name = Field(description="who the agent is; may use {placeholders}")
    goal: Text
    backstory: Text
    llm: Name | None = Field(default=None, description="a litellm model; default KASAL_DEFAULT_LLM")
    tools: list[Name] = Field(default_factory=list, max_length=32)
    allow_delegation: bool = False
    max_iter: int = Field(default=20, ge=1, le=100)
    max_rpm: int | None = Field(default=None, ge=1, le=10_000,
                                description="model calls a minute (CrewAI waits past it)")
    max_execution_time: int | None = Field(
        default=None, ge=1, le=86_400, description="seconds one task may take (it fails past it)")
    tool_config: dict[Name, ToolOptions] = Field(
        default_factory=dict, max_length=32,
        description="options per tool, e.g. {\"file_read\": {\"file_path\": \"notes.txt\"}}")
    knowledge_sources: list[Id] = Field(
        default_factory=list, max_length=20,
        description="knowledge source ids (/api/v1/knowledge) the agent's tasks are given")
    project_tools: dict[Sha256, ProjectToolFields] = Field(
        default_factory=dict, max_length=32,
        description="a project's own tools, as code filed under its SHA-256 (canonical JSON "
                    "of the bundle) and named project:<sha256> in tools; refused unless the "
                    "server runs with KASAL_ALLOW_PROJECT_CODE=true")
