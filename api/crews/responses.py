"""What crew reads return."""

from __future__ import annotations

from typing import Any, Literal

from api.reads import Model, PageOut


class TaskOut(Model):
    name: str
    description: str
    expected_output: str
    agent: str | None
    context: list[str]
    human_input: bool
    output_schema: dict[str, Any] | None = None
    output_file: str | None = None


class CrewOut(Model):
    id: str
    name: str
    process: Literal["sequential", "hierarchical"]
    agents: list[str]
    tasks: list[TaskOut]
    manager_llm: str | None
    memory: bool
    knowledge_sources: list[str] = []
    archived: bool
    version: int
    created_at: str
    updated_at: str


class CrewPage(PageOut):
    items: list[CrewOut]
