"""What agent reads return."""

from __future__ import annotations

from typing import Any

from api.reads import Model, PageOut


class AgentOut(Model):
    id: str
    role: str
    goal: str
    backstory: str
    llm: str
    tools: list[str]
    tool_config: dict[str, dict[str, str]]
    allow_delegation: bool
    max_iter: int
    max_rpm: int | None = None
    max_execution_time: int | None = None
    knowledge_sources: list[str] = []
    # a project's own tools by SHA-256: name, module, attribute, kind, files (not the source)
    project_tools: dict[str, dict[str, Any]] = {}
    archived: bool
    version: int
    created_at: str
    updated_at: str


class AgentPage(PageOut):
    items: list[AgentOut]
