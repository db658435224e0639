"""What Kasal carries over from a CrewAI project, and what happens instead to the rest.

Every field of an agent, a task or a crew that Kasal does not define is reported as a
``Dropped``: what (by agent, task or crew and field), where (file and line) and what
happens instead. ``--strict`` refuses an import that has any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# fields that change only what CrewAI prints: Kasal's own logs and timeline replace them
COSMETIC = frozenset({"verbose"})

AGENT_INSTEAD = {
    "memory": "the agent has no memory of its own (crew memory is the crew's memory: true)",
    "reasoning": "the agent answers without a reasoning step",
    "knowledge_sources": "the agent runs without these knowledge sources",
    "function_calling_llm": "the agent's own llm calls its tools",
    "step_callback": "the callback is not called",
    "allow_code_execution": "the agent runs without code execution",
    "multimodal": "the agent runs without multimodal tools",
    "embedder": "Kasal's offline embedding model is used",
    "max_retry_limit": "CrewAI's default retry limit applies",
    "system_template": "CrewAI's default prompt templates are used",
    "prompt_template": "CrewAI's default prompt templates are used",
    "response_template": "CrewAI's default prompt templates are used",
    "guardrail": "the agent's output is not checked",
}
TASK_INSTEAD = {
    "human_input": "the task runs without waiting for a person (human input is not "
                   "supported yet)",
    "async_execution": "the task runs in turn, not concurrently",
    # carried from crew.py (the model's JSON Schema); a YAML file can only name the model
    "output_json": "the output is not validated: set output_json=Model on the Task in "
                   "crew.py, where Kasal reads the model's schema",
    "output_pydantic": "the output is not validated: set output_pydantic=Model on the Task "
                       "in crew.py, where Kasal reads the model's schema",
    # carried: output_file (an artifact of the execution)
    "callback": "the callback is not called",
    "guardrail": "the task's output is not checked",
    "guardrails": "the task's output is not checked",
    "tools": "the task uses its agent's tools",
    "markdown": "the output is not asked for as Markdown",
    "max_retries": "CrewAI's default retry limit applies",
    "create_directory": "the artifact is kept by Kasal: no directory is made",
}
CREW_INSTEAD = {
    "planning": "the crew runs without a planning step",
    "planning_llm": "the crew runs without a planning step",
    "knowledge_sources": "the crew runs without these knowledge sources",
    "max_rpm": "the crew has no rate limit of its own",
    "embedder": "Kasal's offline embedding model is used",
    "step_callback": "the callback is not called",
    "task_callback": "the callback is not called",
    "output_log_file": "Kasal's timeline and logs record the run instead",
    "function_calling_llm": "each agent's own llm calls its tools",
    "cache": "tool results are not cached across calls",
    "manager_callbacks": "the callbacks are not called",
    "chat_llm": "not carried",
    "stream": "Kasal's live stream (/executions/{id}/stream) replaces it",
}
OTHERWISE = "ignored: Kasal does not carry it over"


@dataclass(frozen=True)
class Dropped:
    """One thing of the project that Kasal does not carry over."""

    what: str  # e.g. "agent 'researcher': tool SerperDevTool (crewai_tools)"
    where: str  # file:line
    instead: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}: {self.instead}"


def instead(kind: str, field: str) -> str:
    table = {"agent": AGENT_INSTEAD, "task": TASK_INSTEAD, "crew": CREW_INSTEAD}[kind]
    return table.get(field, OTHERWISE)


def describe(value: Any) -> str:
    """A short name for a described value (see ``crew_reader``), for a report line."""
    if isinstance(value, dict):
        for key in ("model", "tool", "callable", "object", "llm", "agent", "task"):
            if key in value:
                return f"{value.get('class') or value[key]}"
        return "a mapping"
    if isinstance(value, list):
        return ", ".join(describe(v) for v in value[:5]) + (" ..." if len(value) > 5 else "")
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
