"""Who sends a command, and under which ids; and the correlation id of the work in hand."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from domain.ids import new_id

# The correlation id of the request or run this code works for: set by the API for a
# request, by the bus for a command, by the runner for a run; every log line carries it.
current_correlation_id: ContextVar[str] = ContextVar("kasal_correlation_id", default="")


@contextmanager
def correlated(correlation_id: str) -> Iterator[None]:
    token = current_correlation_id.set(correlation_id)
    try:
        yield
    finally:
        current_correlation_id.reset(token)


@dataclass(frozen=True)
class CommandContext:
    tenant_id: str
    actor: str
    command_id: str = field(default_factory=new_id)
    correlation_id: str = ""
    causation_id: str = ""
    expected_version: int | None = None

    def __post_init__(self) -> None:
        if not self.correlation_id:
            object.__setattr__(self, "correlation_id", self.command_id)
        if not self.causation_id:
            object.__setattr__(self, "causation_id", self.command_id)
