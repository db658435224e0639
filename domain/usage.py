"""What a run's model calls cost: one tally, used by the runner (the ``Completed`` event's
usage) and by the executions read model (running totals), so both count the same way."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    llm_calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add_call(self, call: Mapping[str, Any]) -> Usage:
        """The tally after one model call, as ``ExecutionLlmCallCompleted`` records it."""
        return replace(
            self,
            prompt_tokens=self.prompt_tokens + int(call.get("prompt_tokens") or 0),
            completion_tokens=self.completion_tokens + int(call.get("completion_tokens") or 0),
            cost=self.cost + float(call.get("cost") or 0.0),
            llm_calls=self.llm_calls + 1,
        )

    @classmethod
    def from_columns(cls, row: Mapping[str, Any]) -> Usage:
        return cls(int(row["prompt_tokens"]), int(row["completion_tokens"]),
                   float(row["cost"]), int(row["llm_calls"]))

    def as_columns(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
            "llm_calls": self.llm_calls,
        }
