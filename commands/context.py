"""Who sends a command, and under which ids."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.ids import new_id


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
