"""The agents read model: one row per agent definition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Integer, String, Text

from domain.project_code import ProjectTool
from domain.vocabulary import EventType
from projections.read_models.definitions import DefinitionReadModel, definition_table

agents = definition_table(
    "agents",
    Column("role", String(200), nullable=False),
    Column("goal", Text, nullable=False),
    Column("backstory", Text, nullable=False),
    Column("llm", String(200), nullable=False),
    Column("tools", JSON, nullable=False),
    Column("allow_delegation", Boolean, nullable=False),
    Column("max_iter", Integer, nullable=False),
    Column("tool_config", JSON, nullable=False),
    Column("max_rpm", Integer),
    Column("max_execution_time", Integer),
    Column("knowledge_sources", JSON, nullable=False),
    # a project's own tools by SHA-256, summarised (their source stays in the log)
    Column("project_tools", JSON, nullable=False),
)


class Agents(DefinitionReadModel):
    table = agents
    defined, updated, archived = (
        EventType.AGENT_REGISTERED, EventType.AGENT_UPDATED, EventType.AGENT_ARCHIVED)
    fields = ("role", "goal", "backstory", "llm", "tools", "allow_delegation", "max_iter",
              "tool_config", "max_rpm", "max_execution_time", "knowledge_sources")
    # agents defined before tool options, limits or knowledge existed
    defaults = {"tool_config": {}, "max_rpm": None, "max_execution_time": None,
                "knowledge_sources": []}

    def columns(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        tools = spec.get("project_tools") or {}
        return {**super().columns(spec),
                "project_tools": {sha: ProjectTool.from_payload(tool).summary()
                                  for sha, tool in tools.items()}}
