"""Small builders for valid commands and specs, shared by the test tiers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from adapters.eventstore.sql_log import SqlEventLog
from commands import messages as m
from domain.agent import AgentSpec
from domain.crew import CrewSpec, TaskSpec


def agent_spec(**changes: Any) -> AgentSpec:
    values: dict[str, Any] = {
        "role": "Researcher",
        "goal": "Find facts",
        "backstory": "Careful analyst",
        "llm": "kasal-offline/default",
        "tools": ("calculator",),
    }
    values.update(changes)
    return AgentSpec(**values)


def crew_spec(agent_ids: list[str], **changes: Any) -> CrewSpec:
    values: dict[str, Any] = {
        "name": "research",
        "process": "sequential",
        "agents": tuple(agent_ids),
        "tasks": (
            TaskSpec("find", "Find {topic}", "notes", agent=agent_ids[0]),
            TaskSpec("write", "Write about {topic}", "prose", agent=agent_ids[-1],
                     context=("find",)),
        ),
    }
    values.update(changes)
    return CrewSpec(**values)


def register_agent(role: str = "Researcher", **changes: Any) -> m.RegisterAgent:
    values: dict[str, Any] = {
        "role": role, "goal": "Find facts", "backstory": "Careful analyst", "tools": []
    }
    values.update(changes)
    return m.RegisterAgent(**values)


def define_crew(agent_ids: list[str], **changes: Any) -> m.DefineCrew:
    values: dict[str, Any] = {
        "name": "research",
        "process": "sequential",
        "agents": agent_ids,
        "tasks": [
            {"name": "find", "description": "Find {topic}", "expected_output": "notes",
             "agent": agent_ids[0]},
            {"name": "write", "description": "Write it up", "expected_output": "prose",
             "agent": agent_ids[-1], "context": ["find"]},
        ],
    }
    values.update(changes)
    return m.DefineCrew(**values)


async def execute_raw(log: SqlEventLog, sql: str, **params: Any) -> None:
    """Run raw SQL against a SQL event log behind the store's back (tests tamper with it)."""
    async with log.writer.begin() as conn:
        await conn.execute(text(sql), params)
