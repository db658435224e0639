from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from domain.envelope import GENESIS_HASH, NewEvent, seal, verify_chain
from domain.errors import TamperedEvent
from domain.ids import uuid7


def new_event(version: int, payload: dict[str, object] | None = None) -> NewEvent:
    return NewEvent(
        event_id=str(uuid7()), aggregate_type="agent", aggregate_id="a-1", version=version,
        type="AgentUpdated", schema_version=1, occurred_at="2026-11-27T09:00:00.000000Z",
        tenant_id="t1", actor="user:x", command_id="c", correlation_id="c", causation_id="c",
        payload=payload or {"n": version},
    )


def chain(n: int) -> list:  # type: ignore[type-arg]
    events, prev = [], GENESIS_HASH
    for version in range(1, n + 1):
        event = seal(new_event(version), prev, position=version)
        events.append(event)
        prev = event.hash
    return events


def test_uuid7_ids_are_version_7_and_time_ordered() -> None:
    ids = [uuid7() for _ in range(50)]
    assert all(i.version == 7 for i in ids)
    assert [i.int >> 80 for i in ids] == sorted(i.int >> 80 for i in ids)


def test_a_sealed_chain_verifies() -> None:
    events = chain(5)
    assert verify_chain(events) == 5
    assert events[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(events))


@pytest.mark.parametrize("field", ["payload", "actor", "occurred_at", "type", "tenant_id"])
def test_editing_any_field_of_history_is_detected(field: str) -> None:
    events = chain(4)
    value = {"n": 99} if field == "payload" else "edited"
    events[2] = replace(events[2], **{field: value})
    with pytest.raises(TamperedEvent, match="v3: hash does not match"):
        verify_chain(events)


def test_removing_an_event_is_detected() -> None:
    events = chain(4)
    del events[1]
    with pytest.raises(TamperedEvent, match="expected version 2"):
        verify_chain(events)


def test_rehashing_an_edited_event_breaks_the_next_link() -> None:
    events = chain(4)
    forged = seal(replace(new_event(2), payload={"n": 1000}), events[0].hash, position=2)
    events[1] = forged
    with pytest.raises(TamperedEvent, match="v3: prev_hash does not match"):
        verify_chain(events)
