"""The crews read model: one row per crew definition, its tasks as JSON."""

from __future__ import annotations

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
    Column("knowledge_sources", JSON, nullable=False),
)


class Crews(DefinitionReadModel):
    table = crews
    defined, updated, archived = (
        EventType.CREW_DEFINED, EventType.CREW_UPDATED, EventType.CREW_ARCHIVED)
    fields = ("name", "process", "agents", "tasks", "manager_llm", "memory", "knowledge_sources")
    # crews defined before crew memory, or knowledge, existed
    defaults = {"memory": False, "knowledge_sources": []}
