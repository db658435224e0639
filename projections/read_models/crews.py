"""The crews read model: one row per crew definition, its tasks as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import JSON, Boolean, Column, String

from domain.vocabulary import EventType
from projections.read_models.definitions import DefinitionReadModel, definition_table

crews = definition_table(
    "crews",
    Column("name", String(200), nullable=False),
    Column("process", String(20), nullable=False),
    Column("agents", JSON, nullable=False),
    Column("tasks", JSON, nullable=False),
    Column("manager_llm", String(200)),
    Column("memory", Boolean, nullable=False),
)


class Crews(DefinitionReadModel):
    table = crews
    defined = EventType.CREW_DEFINED
    updated = EventType.CREW_UPDATED
    archived = EventType.CREW_ARCHIVED

    @staticmethod
    def columns(spec: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "name": spec["name"],
            "process": spec["process"],
            "agents": list(spec["agents"]),
            "tasks": list(spec["tasks"]),
            "manager_llm": spec.get("manager_llm"),
            "memory": bool(spec.get("memory", False)),
        }
