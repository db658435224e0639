"""The port between the execution runner and whatever runs a crew (CrewAI, in adapters/).

The engine runs one crew synchronously, on a worker thread the runner gives it, and
reports every step through ``RunHooks``. The log's order is the run's order: a hook returns
once its step is queued, and every step before a paid model call is durable before it.
Hooks may be called from any thread the engine uses (CrewAI makes model calls on worker
threads), but one at a time per run. A hook that
raised once raises again on every later call, ``cancelled()`` included: an engine that
catches an error and carries on (as CrewAI does in places) still stops at its next step.
``streams.run_recorder.RunRecorder`` is the implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from domain.agent import AgentSpec
from domain.crew import CrewSpec
from projections.vectors import Document


class RunCancelled(Exception):
    """Raised inside the engine when ``RunHooks.cancelled()`` turns true; stops the run."""


@dataclass(frozen=True)
class LlmCall:
    """One model call, as recorded in ``ExecutionLlmCallCompleted``."""

    model: str
    request_hash: str  # sha256 of the canonical request (model, messages, stop)
    response: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    task_name: str | None = None
    agent_role: str | None = None
    attempts: int = 1  # 1 + retries after rate limits and timeouts

    def as_payload(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "request_hash": self.request_hash,
            "response": self.response,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
            "latency_ms": round(self.latency_ms, 3),
            "task_name": self.task_name,
            "agent_role": self.agent_role,
            "attempts": self.attempts,
        }


class RunHooks(Protocol):
    @property
    def tenant_id(self) -> str:
        """The run's tenant (its tools' workspace)."""
        ...

    def cancelled(self) -> bool:
        """True once the run must stop (cancel requested or timed out)."""
        ...

    def recorded_response(self, request_hash: str) -> str | None:
        """The response this exact request got before (a resumed run), else None."""
        ...

    def task_started(self, task_name: str) -> None: ...

    def task_completed(self, task_name: str, output: str,
                       output_json: dict[str, Any] | None = None,
                       output_problem: str | None = None) -> None: ...

    def llm_call(self, call: LlmCall) -> None:
        """A call answered by the model (not one answered by ``recorded_response``)."""
        ...

    def recorded_tool_result(self, task_name: str | None, tool: str,
                             tool_input: str) -> str | None:
        """What this tool call returned before (a resumed run makes the same calls in the
        same order), to be returned instead of calling the tool again; else None."""
        ...

    def tool_used(self, task_name: str | None, tool: str, tool_input: str, output: str, *,
                  error: str | None = None, duration_ms: int | None = None) -> None:
        """A tool call and its result as the agent saw it (one answered by
        ``recorded_tool_result`` too: the hooks know it is in the log already), why it
        failed where it did, and how long it ran."""
        ...

    def recall_knowledge(self, source_ids: Sequence[str], query: str, limit: int) -> list[str]:
        """Knowledge: the chunks of those knowledge sources (of the run's agents and crew)
        nearest to ``query``, best first; a resumed run recalls the same. Raises when
        knowledge cannot be recalled (no vector index): a run never goes on without the
        knowledge it was given. Blocks (called on the engine's threads)."""
        ...

    def search_documents(self, documents: Sequence[Document], query: str,
                         limit: int) -> list[str]:
        """A search tool's search: the chunks of ``documents`` (files of the run's tenant's
        workspace) nearest to ``query``, best first. Raises when it cannot search (no
        vector index). Blocks (called on the engine's threads)."""
        ...

    def recall_memory(self, query: str, limit: int) -> list[str]:
        """Crew memory: the texts of this crew's past task outputs nearest to ``query``,
        best first, from runs requested before this one only (so a resumed run recalls the
        same); ``[]`` when memory is unavailable. Blocks (called on the engine's threads)."""
        ...


@dataclass(frozen=True)
class RunResult:
    output: str


class CrewEngine(Protocol):
    def run(self, crew: CrewSpec, agents: dict[str, AgentSpec], inputs: dict[str, Any],
            hooks: RunHooks) -> RunResult:
        """Run the crew to the end (blocking). Raises ``RunCancelled`` when the hooks say
        so, and any other exception when the run fails; its message is the recorded cause."""
        ...
