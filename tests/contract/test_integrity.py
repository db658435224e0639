"""What the hash chains cannot see — a stream's tail cut off, a whole stream deleted — is
found by checking the log against the commands that produced it."""

from __future__ import annotations

from adapters.eventstore.integrity import integrity_problems
from commands import messages as m
from commands.bus import CommandBus
from domain.envelope import verify_chain
from tests.contract.conftest import Database, agent_command, ctx
from tests.factories import execute_raw


async def test_an_intact_log_has_no_integrity_problems(database: Database) -> None:
    store = await database.open_store()
    bus = CommandBus(store)
    for role in ("A", "B", "C"):
        await bus.dispatch(agent_command(role), ctx())
    assert await integrity_problems(store) == []


async def test_a_cut_tail_and_a_deleted_stream_are_found(database: Database) -> None:
    store = await database.open_store()
    bus = CommandBus(store)
    kept = await bus.dispatch(agent_command("Kept"), ctx())
    cut = await bus.dispatch(agent_command("Cut"), ctx())
    await bus.dispatch(m.UpdateAgent(agent_id=cut.aggregate_id, role="Cut again", goal="g",
                                     backstory="b"), ctx())
    gone = await bus.dispatch(agent_command("Gone"), ctx())
    await execute_raw(store, "DELETE FROM kasal_events WHERE aggregate_id = :a AND version = 2",
                            a=cut.aggregate_id)
    await execute_raw(store, "DELETE FROM kasal_events WHERE aggregate_id = :a",
                            a=gone.aggregate_id)
    # the chains of what is left still verify: that is why this check exists
    assert verify_chain(await store.read_stream(cut.aggregate_id)) == 1
    problems = await integrity_problems(store)
    assert f"{cut.aggregate_id} v2" in " ".join(problems)
    assert f"{gone.aggregate_id} v1" in " ".join(problems)
    assert kept.aggregate_id not in " ".join(problems)
