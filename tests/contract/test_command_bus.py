"""The write path's promises, over every store: idempotent retries and optimistic concurrency.

ARCHITECTURE.md, "Write path": a retried command returns the first result and appends
nothing; a stale expected version is refused. These hold whichever store is configured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from commands import messages as m
from commands.bus import CommandBus
from commands.errors import IdempotencyKeyReused, StaleVersion
from commands.ports import AppendResult, EventStore
from domain.envelope import verify_chain
from domain.ids import new_id

from .conftest import OTHER_TENANT, agent_command, ctx


async def test_a_retried_command_returns_the_first_result_and_appends_nothing(
    event_store: EventStore,
) -> None:
    bus = CommandBus(event_store)
    command_id = new_id()
    first = await bus.dispatch(agent_command(), ctx(command_id=command_id))
    head = await event_store.head_position()

    again = await bus.dispatch(agent_command(), ctx(command_id=command_id))

    assert again == first
    assert await event_store.head_position() == head
    with pytest.raises(IdempotencyKeyReused):
        await bus.dispatch(agent_command("Someone else"), ctx(command_id=command_id))
    other_tenant = await bus.dispatch(agent_command(), ctx(OTHER_TENANT, command_id=command_id))
    assert other_tenant.aggregate_id != first.aggregate_id
    assert await event_store.head_position() > head


async def test_a_stale_expected_version_is_refused_with_the_current_version(
    event_store: EventStore,
) -> None:
    bus = CommandBus(event_store)
    agent = await bus.dispatch(agent_command(), ctx())
    update = m.UpdateAgent(agent_id=agent.aggregate_id, role="A", goal="g", backstory="b")
    await bus.dispatch(update, ctx(expected_version=1))
    head = await event_store.head_position()

    with pytest.raises(StaleVersion) as caught:
        await bus.dispatch(update.model_copy(update={"role": "B"}), ctx(expected_version=1))

    assert caught.value.current == 2
    assert await event_store.head_position() == head


def archive(agent_id: str) -> m.Command:
    return m.ArchiveAgent(agent_id=agent_id)


def update(agent_id: str) -> m.Command:
    return m.UpdateAgent(agent_id=agent_id, role="Editor", goal="Edit", backstory="Keen.")


@pytest.mark.parametrize("make_command", [update, archive], ids=["update", "archive"])
async def test_concurrent_retries_of_one_command_all_return_the_first_result(
    event_store: EventStore, make_command: Callable[[str], m.Command]
) -> None:
    """A client that retries before the first attempt answered (a timeout, say) sends the
    same Idempotency-Key again while the first is in flight. Every attempt must get the
    first result; none may fail because the first one already changed the aggregate."""
    bus = CommandBus(event_store)
    agent = await bus.dispatch(agent_command(), ctx())
    command_id = new_id()
    command = make_command(agent.aggregate_id)

    outcomes = await asyncio.gather(
        *(bus.dispatch(command, ctx(command_id=command_id)) for _ in range(3)),
        return_exceptions=True,
    )

    assert all(isinstance(o, AppendResult) for o in outcomes), outcomes
    assert len(set(outcomes)) == 1, outcomes
    stream = await event_store.read_stream(agent.aggregate_id)
    assert [e.version for e in stream] == [1, 2]
    assert verify_chain(stream) == 2


async def test_writes_without_a_version_all_succeed_under_contention(
    event_store: EventStore,
) -> None:
    """Clients that send no If-Match accept any current version: 40 concurrent updates of
    one agent must all land (retried with backoff on the fresh state), none lost or doubled."""
    bus = CommandBus(event_store)
    agent = await bus.dispatch(agent_command(), ctx())
    writers = 40

    outcomes = await asyncio.gather(
        *(bus.dispatch(m.UpdateAgent(agent_id=agent.aggregate_id, role=f"Role {n}", goal="g",
                                     backstory="b"), ctx())
          for n in range(writers)),
        return_exceptions=True,
    )

    assert all(isinstance(o, AppendResult) for o in outcomes), outcomes
    versions = sorted(o.version for o in outcomes if isinstance(o, AppendResult))
    assert versions == list(range(2, writers + 2))
    stream = await event_store.read_stream(agent.aggregate_id)
    assert len(stream) == writers + 1
    assert {e.payload["spec"]["role"] for e in stream[1:]} == {f"Role {n}" for n in range(writers)}
