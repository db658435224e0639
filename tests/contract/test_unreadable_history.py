"""History encrypted with a key this Kasal does not hold (destroyed or not configured): the
chain still verifies, projections do not stall on it, and commands on it are refused (409)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.eventstore.encryption import EncryptingEventStore, PayloadCipher, new_key
from adapters.eventstore.sql_store import SqlEventStore
from adapters.sql.engines import make_engine
from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from domain.envelope import verify_chain
from domain.registry import UnreadableHistory
from projections.read_models.agents import agents as agents_table
from projections.read_models.audit_log import audit_log as audit_log_table
from projections.sql_projector import SqlProjector
from tests.factories import register_agent


async def test_a_lost_key_keeps_the_chain_and_never_stalls_the_projector(tmp_path: Path) -> None:
    inner = SqlEventStore(f"sqlite:///{tmp_path / 'events.db'}")
    await inner.initialize()
    written_with = EncryptingEventStore(inner, PayloadCipher(new_key()))
    ctx = CommandContext(tenant_id="t1", actor="user:x")
    agent = await CommandBus(written_with).dispatch(register_agent(), ctx)
    await CommandBus(written_with).dispatch(register_agent("Writer"),
                                            CommandContext(tenant_id="t1", actor="user:x"))

    other_key = EncryptingEventStore(inner, PayloadCipher(new_key()))  # the old key is gone
    events = await other_key.read_all(0, 100)
    assert verify_chain(await other_key.read_stream(agent.aggregate_id)) == 1

    engine = make_engine(f"sqlite:///{tmp_path / 'rm.db'}", immediate=True)
    projector = SqlProjector(engine)
    await projector.initialize()
    assert await projector.handle(events) == events[-1].position  # not stuck on them
    async with engine.connect() as conn:
        audited = (await conn.execute(select(func.count()).select_from(audit_log_table))).scalar()
        agents = (await conn.execute(select(func.count()).select_from(agents_table))).scalar()
    assert (audited, agents) == (2, 0)

    with pytest.raises(UnreadableHistory, match="encrypted with a key this Kasal does not hold"):
        await CommandBus(other_key).dispatch(
            m.ArchiveAgent(agent_id=agent.aggregate_id),
            CommandContext(tenant_id="t1", actor="user:x"),
        )
    await engine.dispose()
    await inner.close()
