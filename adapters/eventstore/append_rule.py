"""The append rule every event store applies, inside its own atomic section.

1. the batch's shape (``check_batch``: one aggregate, versions continuing the expected one);
2. a command id seen before is a ``DuplicateCommand`` (checked first: a retry racing its
   first attempt is a duplicate, not a conflict);
3. an aggregate not at the expected version is a ``ConcurrencyError``;
4. the events are sealed onto the aggregate's hash chain.

The in-memory and SQL stores and the Kafka partition writer each find the stream's head
and whether the command was seen in their own way, then call ``seal_append``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from commands.errors import ConcurrencyError, DuplicateCommand
from commands.ports import CommandRecord
from domain.envelope import GENESIS_HASH, NewEvent, RecordedEvent, seal


@dataclass(frozen=True)
class StreamHead:
    """An aggregate's last version and hash (``0`` and the genesis hash: no events yet)."""

    version: int = 0
    hash: str = GENESIS_HASH


def check_batch(events: Sequence[NewEvent], expected_version: int) -> str:
    """The shape every append must have; returns the aggregate id. ``ValueError`` if not."""
    if not events:
        raise ValueError("append needs at least one event")
    aggregate_id = events[0].aggregate_id
    for offset, event in enumerate(events, start=1):
        if event.aggregate_id != aggregate_id:
            raise ValueError("one append holds the events of one aggregate")
        if event.version != expected_version + offset:
            raise ValueError(f"event versions must continue from {expected_version} without gaps")
    return aggregate_id


def seal_append(
    events: Sequence[NewEvent],
    expected_version: int,
    head: StreamHead,
    *,
    command: CommandRecord | None = None,
    command_seen: bool = False,
) -> list[RecordedEvent]:
    """Steps 2-4 of the rule: the events chained to ``head`` (positions are the store's)."""
    if command_seen:
        raise DuplicateCommand(command.command_id if command else "")
    if head.version != expected_version:
        raise ConcurrencyError(events[0].aggregate_id, expected_version, head.version)
    sealed: list[RecordedEvent] = []
    prev = head.hash
    for event in events:
        recorded = seal(event, prev)
        sealed.append(recorded)
        prev = recorded.hash
    return sealed
