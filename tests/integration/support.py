"""Test doubles and builders for the engine tests."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.agent import AgentSpec
from domain.crew import CrewSpec, TaskSpec
from projections.vectors import Document
from streams.engine import LlmCall

OFFLINE = "kasal-offline/default"


@dataclass(frozen=True)
class ToolUse:
    task_name: str | None
    tool: str
    tool_input: str
    output: str
    error: str | None = None
    duration_ms: int | None = None


@dataclass
class RecordingHooks:
    """``RunHooks`` that remember what they were told, in order (thread-safe).

    ``cancel_after_calls``: ``cancelled()`` turns true once that many model calls were
    reported. ``recorded``: responses by request hash, as a resumed run would have them.
    """

    cancel_after_calls: int | None = None
    tenant_id: str = "acme"  # the run's tenant (its tools' workspace)
    recorded: dict[str, str] = field(default_factory=dict)
    # tool results by (task, tool, input), in order, as a resumed run would have them
    recorded_tools: dict[tuple[str | None, str, str], list[str]] = field(default_factory=dict)
    memories: list[str] = field(default_factory=list)  # what recall_memory returns
    knowledge: dict[str, list[str]] = field(default_factory=dict)  # source id -> its chunks
    log: list[tuple[str, Any]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _cancel: bool = False

    def _add(self, kind: str, value: Any) -> None:
        with self._lock:
            self.log.append((kind, value))
            self.threads.add(threading.current_thread().name)

    def cancel(self) -> None:
        with self._lock:
            self._cancel = True

    # RunHooks
    def cancelled(self) -> bool:
        with self._lock:
            if self._cancel:
                return True
            calls = sum(1 for kind, _ in self.log if kind == "llm_call")
            return self.cancel_after_calls is not None and calls >= self.cancel_after_calls

    def recorded_response(self, request_hash: str) -> str | None:
        with self._lock:
            self.lookups.append(request_hash)
            return self.recorded.get(request_hash)

    def recorded_tool_result(self, task_name: str | None, tool: str,
                             tool_input: str) -> str | None:
        with self._lock:
            results = self.recorded_tools.get((task_name, tool, tool_input))
            return results.pop(0) if results else None

    def task_started(self, task_name: str) -> None:
        self._add("task_started", task_name)

    def task_completed(self, task_name: str, output: str,
                       output_json: dict[str, Any] | None = None,
                       output_problem: str | None = None) -> None:
        self._add("task_completed", (task_name, output))
        if output_json is not None or output_problem is not None:
            self._add("task_output_checked", (task_name, output_json, output_problem))

    def llm_call(self, call: LlmCall) -> None:
        self._add("llm_call", call)

    def tool_used(self, task_name: str | None, tool: str, tool_input: str, output: str, *,
                  error: str | None = None, duration_ms: int | None = None) -> None:
        self._add("tool_used", ToolUse(task_name, tool, tool_input, output, error, duration_ms))

    def recall_memory(self, query: str, limit: int) -> list[str]:
        self._add("recall_memory", (query, limit))
        return list(self.memories[:limit])

    def search_documents(self, documents: Sequence[Document], query: str,
                         limit: int) -> list[str]:
        """Every chunk that shares a word with the query, in order (no embeddings here)."""
        self._add("search_documents", (tuple(d.name for d in documents), query, limit))
        words = set(query.lower().split())
        return [c for d in documents for c in d.chunks
                if words & set(c.lower().split())][:limit]

    def recall_knowledge(self, source_ids: Sequence[str], query: str, limit: int) -> list[str]:
        """The chunks of ``knowledge`` (source id -> chunks) of the sources named, in order."""
        self._add("recall_knowledge", (tuple(source_ids), query, limit))
        return [c for s in source_ids for c in self.knowledge.get(s, [])][:limit]

    # views
    def of(self, kind: str) -> list[Any]:
        with self._lock:
            return [value for k, value in self.log if k == kind]

    @property
    def calls(self) -> list[LlmCall]:
        return self.of("llm_call")

    @property
    def tools(self) -> list[ToolUse]:
        return self.of("tool_used")

    @property
    def started(self) -> list[str]:
        return self.of("task_started")

    @property
    def completed(self) -> list[tuple[str, str]]:
        return self.of("task_completed")

    def kinds(self) -> list[tuple[str, str | None]]:
        """The log as (kind, task) pairs, to check the order of the steps."""
        out: list[tuple[str, str | None]] = []
        with self._lock:
            for kind, value in self.log:
                if kind == "task_started":
                    out.append((kind, value))
                elif kind == "task_completed":
                    out.append((kind, value[0]))
                else:
                    out.append((kind, value.task_name))
        return out


def agent(
    role: str, *, llm: str = OFFLINE, tools: tuple[str, ...] = (), goal: str = "do the work well"
) -> AgentSpec:
    return AgentSpec(
        role=role, goal=goal, backstory=f"An experienced {role}.", llm=llm, tools=tools
    )


def task(
    name: str,
    description: str,
    agent_id: str | None,
    *,
    expected: str = "A short answer.",
    context: tuple[str, ...] = (),
) -> TaskSpec:
    return TaskSpec(
        name=name,
        description=description,
        expected_output=expected,
        agent=agent_id,
        context=context,
    )


def crew(
    *tasks: TaskSpec,
    agents: tuple[str, ...],
    process: str = "sequential",
    manager_llm: str | None = None,
    name: str = "test crew",
) -> CrewSpec:
    return CrewSpec(
        name=name, process=process, agents=agents, tasks=tuple(tasks), manager_llm=manager_llm
    )
