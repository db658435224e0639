"""The agents read model: one row per agent definition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import JSON, Boolean, Column, Integer, String, Text

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
)


class Agents(DefinitionReadModel):
    table = agents
    defined = EventType.AGENT_REGISTERED
    updated = EventType.AGENT_UPDATED
    archived = EventType.AGENT_ARCHIVED

    @staticmethod
    def columns(spec: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "role": spec["role"],
            "goal": spec["goal"],
            "backstory": spec["backstory"],
            "llm": spec["llm"],
            "tools": list(spec["tools"]),
            "allow_delegation": spec["allow_delegation"],
            "max_iter": spec["max_iter"],
        }
