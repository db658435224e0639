"""What a partition's writer knows of each aggregate: folded from the log on takeover, then
kept up to date as it appends."""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.eventstore.append_rule import StreamHead
from commands.ports import CommandRecord
from domain.envelope import RecordedEvent

RECENT_EVENTS = 64  # event ids kept per aggregate: a redelivered request is found by them
RECENT_COMMANDS = 256  # command ids kept per aggregate (the mirror keeps every one)


@dataclass(frozen=True)
class AcceptedCommand:
    fingerprint: str
    version: int  # of the command's last event
    last_event_id: str


@dataclass(frozen=True)
class AggregateState:
    head: StreamHead = field(default_factory=StreamHead)
    recent_events: tuple[tuple[str, int], ...] = ()  # (event id, version), oldest first
    # by tenant and command id, oldest first
    commands: dict[tuple[str, str], AcceptedCommand] = field(default_factory=dict)

    def after(self, event: RecordedEvent, command: CommandRecord | None) -> AggregateState:
        """The state once ``event`` is in the log (``command``: on a command's last event)."""
        commands = self.commands
        if command is not None:
            commands = dict(commands)
            commands[(command.tenant_id, command.command_id)] = AcceptedCommand(
                command.fingerprint, event.version, event.event_id
            )
            for stale in list(commands)[: max(0, len(commands) - RECENT_COMMANDS)]:
                del commands[stale]
        return AggregateState(
            StreamHead(event.version, event.hash),
            (*self.recent_events, (event.event_id, event.version))[-RECENT_EVENTS:],
            commands,
        )

    def version_of(self, event_id: str) -> int | None:
        """The version of a recent event of this aggregate (a redelivered request's first)."""
        for known, version in self.recent_events:
            if known == event_id:
                return version
        return None

    def accepted(self, command: CommandRecord) -> AcceptedCommand | None:
        return self.commands.get((command.tenant_id, command.command_id))
