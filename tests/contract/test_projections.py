"""The SQL projector and its read models, on SQLite and on PostgreSQL.

Events become rows and the tracking position in one transaction: a replay or an
overlapping redelivery changes nothing, a failed batch leaves nothing behind, and
``rebuild`` followed by a replay from zero reproduces every table.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.eventstore.encryption import (
    ALGORITHM,
    MARKER,
    EncryptingEventStore,
    PayloadCipher,
    new_key,
)
from commands.bus import CommandBus
from commands.ports import EventStore
from domain.envelope import RecordedEvent
from projections import queries
from projections import schema as s
from projections.queries import ReadModels
from projections.read_models.audit_log import verify_audit_rows
from projections.read_models.executions import executions as executions_table
from projections.sql_projector import SqlProjector
from tests.contract.conftest import applier_of, replayed_tables

from .conftest import (
    ACTOR,
    OTHER_TENANT,
    TENANT,
    Database,
    agent_command,
    ctx,
    dump_tables,
    new_events,
    run_filed_run,
    run_scenario,
)


async def project_all(projector: SqlProjector, store: EventStore, batch_size: int = 1000) -> int:
    position = await projector.position()
    while batch := await store.read_all(position, batch_size):
        position = await projector.handle(batch)
    return position


def by_type(events: list[RecordedEvent], type_: str) -> list[RecordedEvent]:
    return [e for e in events if e.type == type_]


# --- 9. the rows the commands imply ----------------------------------------------------------
async def test_projector_builds_the_read_models_the_commands_imply(database: Database) -> None:
    store = await database.open_store()
    scenario = await run_scenario(CommandBus(store))
    projector = await database.open_projector()
    reads = ReadModels(database.engine())
    events = await store.read_all(0, 1000)
    head = await store.head_position()
    assert len(events) == 11

    assert await projector.handle(events) == head
    assert await projector.position() == head
    assert await reads.position() == head

    # agents: the first was updated, the second was not
    agents = await reads.list_agents(TENANT)
    assert agents.total == 2
    assert agents.position == head
    rows = {row["id"]: row for row in agents.items}
    first, second = (rows[agent_id] for agent_id in scenario.agents)
    registered = by_type(events, "AgentRegistered")
    updated = by_type(events, "AgentUpdated")[0]
    assert first["role"] == "Senior Researcher"
    assert first["tools"] == ["calculator", "search"]
    assert first["max_iter"] == 7
    assert first["knowledge_sources"] == [by_type(events, "KnowledgeSourceAdded")[0].aggregate_id]
    assert first["version"] == 2
    assert first["archived"] is False
    assert first["created_at"] == registered[0].occurred_at
    assert first["updated_at"] == updated.occurred_at
    assert second["role"] == "Writer"
    assert second["version"] == 1
    assert second["updated_at"] == second["created_at"] == registered[1].occurred_at

    # crews: archived, so hidden unless asked for
    crew_id = scenario.crews[0]
    assert (await reads.list_crews(TENANT)).total == 0
    crews = await reads.list_crews(TENANT, include_archived=True)
    assert [c["id"] for c in crews.items] == [crew_id]
    crew = crews.items[0]
    assert crew["archived"] is True
    assert crew["version"] == 2
    assert crew["name"] == "research"
    assert crew["agents"] == scenario.agents
    assert [t["name"] for t in crew["tasks"]] == ["find", "write"]

    # the execution: requested, then cancelled before it started
    execution_id = scenario.executions[0]
    execution = (await reads.get_execution(TENANT, execution_id)).item
    assert execution is not None
    cancelled = by_type(events, "ExecutionCancelled")[0]
    assert execution["status"] == "cancelled"
    assert execution["cancel_reason"] == "changed my mind"
    assert execution["version"] == 2
    assert execution["crew_id"] == crew_id
    assert execution["crew_name"] == "research"
    assert execution["inputs"] == {"topic": "owls"}
    assert execution["requested_by"] == ACTOR
    assert execution["finished_at"] == cancelled.occurred_at
    assert [(t["name"], t["status"]) for t in execution["tasks"]] == [
        ("find", "pending"),
        ("write", "pending"),
    ]
    assert (await reads.list_executions(TENANT, status="cancelled")).total == 1
    assert (await reads.list_executions(TENANT, status="requested")).total == 0
    assert (await reads.list_executions(TENANT, crew_id=crew_id)).total == 1

    timeline = await reads.execution_timeline(TENANT, execution_id)
    assert [r["type"] for r in timeline.items] == ["ExecutionRequested", "ExecutionCancelled"]
    assert [r["version"] for r in timeline.items] == [1, 2]
    execution_events = [e for e in events if e.aggregate_id == execution_id]
    assert [r["position"] for r in timeline.items] == [e.position for e in execution_events]
    assert timeline.items[1]["summary"] == "cancelled: changed my mind"
    assert timeline.position == head

    # the audit trail: every event of the aggregate, hashes as stored, chain intact
    trail = await reads.audit_trail(TENANT, "agent", scenario.agents[0])
    stored = await store.read_stream(scenario.agents[0])
    assert [r["type"] for r in trail.items] == ["AgentRegistered", "AgentUpdated"]
    assert [r["hash"] for r in trail.items] == [e.hash for e in stored]
    assert [r["actor"] for r in trail.items] == [ACTOR, ACTOR]
    assert verify_audit_rows(trail.items) == (True, None)
    forged = [trail.items[0], {**trail.items[1], "payload": {"spec": {"role": "Mallory"}}}]
    valid, reason = verify_audit_rows(forged)
    assert valid is False
    assert reason is not None
    for aggregate_type, aggregate_id, count in [
        ("crew", crew_id, 2),
        ("execution", execution_id, 2),
        ("api_key", scenario.api_keys[0], 2),
    ]:
        rows_ = (await reads.audit_trail(TENANT, aggregate_type, aggregate_id)).items
        assert len(rows_) == count
        assert verify_audit_rows(rows_) == (True, None)

    # api keys: issued then revoked; authentication finds it by its hash, revoked
    key = (await reads.get_api_key(TENANT, scenario.api_keys[0])).item
    assert key is not None
    assert key["revoked"] is True
    assert key["role"] == "operator"
    by_hash = await reads.api_key_by_hash(key["key_hash"])
    assert by_hash is not None and by_hash["id"] == key["id"] and by_hash["revoked"] is True
    assert await reads.api_key_by_hash("0" * 64) is None

    # the knowledge source: added, named by the agent, archived (hidden unless asked for)
    assert (await reads.list_knowledge_sources(TENANT)).total == 0
    [source] = (await reads.list_knowledge_sources(TENANT, include_archived=True)).items
    assert (source["name"], source["media_type"], source["chunks"], source["characters"],
            source["archived"], source["version"]) == (
        "owls.txt", "text/plain", 1, len("Owls hunt at night."), True, 2)
    assert source["sha256"] == hashlib.sha256(b"Owls hunt at night.").hexdigest()

    # another tenant sees none of it
    assert (await reads.list_agents(OTHER_TENANT)).total == 0
    assert (await reads.get_execution(OTHER_TENANT, execution_id)).item is None
    assert (await reads.audit_trail(OTHER_TENANT, "agent", scenario.agents[0])).total == 0


# --- 10. replays and redeliveries ------------------------------------------------------------
async def test_replaying_or_overlapping_batches_changes_nothing(database: Database) -> None:
    store = await database.open_store()
    await run_scenario(CommandBus(store))
    projector = await database.open_projector()
    events = await store.read_all(0, 1000)
    head = await store.head_position()

    assert await projector.handle(events[0:5]) == events[4].position
    assert await projector.handle(events[3:]) == head  # overlaps events 4 and 5
    projected = await dump_tables(projector.engine)
    assert len(projected["audit_log"]) == len(events)

    for batch in (events, events[0:5], events[3:], events[8:9], events[::-1], []):
        assert await projector.handle(batch) == head
        assert await dump_tables(projector.engine) == projected

    reference = await database.open_projector()
    await reference.rebuild()
    assert await reference.handle(events) == head
    assert await dump_tables(reference.engine) == projected


# --- 11. a failing batch -----------------------------------------------------------------------
@pytest.mark.parametrize("failing_type", ["CrewDefined", "ExecutionCancelled"])
async def test_a_batch_that_fails_midway_leaves_no_rows_and_no_position(
    database: Database, monkeypatch: pytest.MonkeyPatch, failing_type: str
) -> None:
    store = await database.open_store()
    await run_scenario(CommandBus(store))
    projector = await database.open_projector()
    events = await store.read_all(0, 1000)
    head = await store.head_position()
    assert await projector.handle(events[:2]) == events[1].position
    before = await dump_tables(projector.engine)

    original_apply = projector.apply
    attempts: list[int] = []

    async def faulty_apply(conn: Any, event: RecordedEvent) -> None:
        await original_apply(conn, event)  # its rows are written, then the batch fails
        if event.type == failing_type:
            attempts.append(event.position)
            raise RuntimeError(f"injected failure at {event.type}")

    monkeypatch.setattr(projector, "apply", faulty_apply)
    with pytest.raises(RuntimeError, match="injected failure"):
        await projector.handle(events)
    assert attempts == [by_type(events, failing_type)[0].position]
    assert await projector.position() == events[1].position
    assert await dump_tables(projector.engine) == before

    monkeypatch.undo()
    assert await projector.handle(events) == head
    after = await dump_tables(projector.engine)
    assert sorted(r["position"] for r in after["audit_log"]) == [e.position for e in events]
    assert len(after["execution_timeline"]) == 2

    assert await replayed_tables(database, events) == after


async def test_a_failing_applier_rolls_back_the_audit_row_written_before_it(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await database.open_store()
    await run_scenario(CommandBus(store))
    projector = await database.open_projector()
    events = await store.read_all(0, 1000)

    async def boom(conn: Any, event: RecordedEvent) -> None:
        raise RuntimeError("injected applier failure")

    monkeypatch.setitem(applier_of(projector, "AgentUpdated"), "AgentUpdated", boom)
    with pytest.raises(RuntimeError, match="injected applier failure"):
        await projector.handle(events)
    assert await projector.position() == 0
    assert all(rows == [] for rows in (await dump_tables(projector.engine)).values())

    monkeypatch.undo()
    assert await projector.handle(events) == await store.head_position()
    agents = (await dump_tables(projector.engine))["agents"]
    assert sorted(a["version"] for a in agents) == [1, 2]


# --- 12. rebuild ----------------------------------------------------------------------------
async def test_rebuild_then_replay_from_zero_reproduces_every_table(database: Database) -> None:
    store = await database.open_store()
    await run_scenario(CommandBus(store))
    await run_scenario(CommandBus(store))
    await run_filed_run(CommandBus(store))
    projector = await database.open_projector()
    head = await store.head_position()
    assert await project_all(projector, store) == head
    before = await dump_tables(projector.engine)
    assert all(before[t.name] for t in s.read_model_tables()), "every read model has rows"
    assert [a["path"] for a in before["execution_artifacts"]] == ["notes/owls.md", "report.json"]
    blobs = {b["sha256"]: b["content"] for b in before["artifact_blobs"]}
    assert blobs[before["execution_artifacts"][0]["sha256"]] == b"Owls hunt at night."

    await projector.rebuild()
    assert await projector.position() == 0
    assert all(rows == [] for rows in (await dump_tables(projector.engine)).values())

    assert await project_all(projector, store, batch_size=4) == head
    assert await dump_tables(projector.engine) == before


@pytest.mark.parametrize("older", ["another fingerprint", "no fingerprint"])
async def test_a_read_model_schema_that_changed_is_rebuilt_from_the_log(
    database: Database, older: str,
) -> None:
    store = await database.open_store()
    await run_scenario(CommandBus(store))
    projector = await database.open_projector()
    head = await store.head_position()
    assert await project_all(projector, store) == head
    before = await dump_tables(projector.engine)
    # the database as an older Kasal left it: its schema is not the code's
    async with projector.engine.begin() as conn:
        if older == "no fingerprint":
            await conn.run_sync(lambda sync: s.schema_versions.drop(sync))
        else:
            await conn.execute(s.schema_versions.update().values(fingerprint="0" * 64))
        await conn.execute(executions_table.delete())  # rows the new schema would not match

    again = SqlProjector(projector.engine)
    # a process that may not rebuild (an API process, a CLI command) refuses, touching nothing
    with pytest.raises(s.ReadModelSchemaChanged, match="kasal projections rebuild"):
        await again.initialize()
    assert await again.position() == head
    assert await again.initialize(rebuild_changed=True)
    assert await again.position() == 0  # dropped, created anew: the log is replayed
    assert all(rows == [] for rows in (await dump_tables(again.engine)).values())
    assert await project_all(again, store) == head
    assert await dump_tables(again.engine) == before
    async with again.engine.connect() as conn:
        stored = (await conn.execute(select(s.schema_versions.c.fingerprint))).scalar()
    assert stored == s.fingerprint(s.read_model_tables())
    assert not await again.initialize()  # the same schema: nothing is dropped
    assert await again.position() == head


# --- encrypted payloads ---------------------------------------------------------------------
async def test_over_an_encrypting_store_rows_are_plaintext_and_the_audit_keeps_ciphertext(
    database: Database,
) -> None:
    inner = await database.open_store()
    store = EncryptingEventStore(inner, PayloadCipher(new_key()))
    scenario = await run_scenario(CommandBus(store))
    projector = await database.open_projector()
    reads = ReadModels(database.engine())

    assert await project_all(projector, store) == await store.head_position()

    agent = (await reads.get_agent(TENANT, scenario.agents[0])).item
    assert agent is not None
    assert agent["role"] == "Senior Researcher"
    trail = (await reads.audit_trail(TENANT, "agent", scenario.agents[0])).items
    assert [r["payload"] for r in trail] == [
        e.payload for e in await inner.read_stream(scenario.agents[0])
    ]
    assert all(r["payload"][MARKER] == ALGORITHM for r in trail)
    assert verify_audit_rows(trail) == (True, None)
    async with projector.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(executions_table))).scalar()
    assert count == 1


# --- queries: rows and position from one snapshot ---------------------------------------------
async def test_a_page_holds_exactly_the_rows_of_the_position_it_reports(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ReadModels promises one consistent snapshot per call. Here the projector commits
    a batch (as another process would) just after the query has read its position."""
    store = await database.open_store()
    bus = CommandBus(store)
    for role in ("Researcher", "Writer", "Critic"):
        await bus.dispatch(agent_command(role), ctx())
    events = await store.read_all(0, 1000)
    projector = await database.open_projector()
    assert await projector.handle(events[:1]) == events[0].position
    reads = ReadModels(database.engine())

    original = queries.tracked_position
    raced: list[int] = []

    async def position_then_commit(conn: Any, name: str, *, lock: bool = False) -> int:
        position = await original(conn, name, lock=lock)
        if not raced:
            raced.append(position)
            await projector.handle(events)  # commits between this read and the next
        return position

    monkeypatch.setattr(queries, "tracked_position", position_then_commit)
    page = await reads.list_agents(TENANT)

    assert raced == [events[0].position]
    assert await projector.position() == events[-1].position
    reflected = {e.aggregate_id for e in events if e.position <= page.position}
    assert {row["id"] for row in page.items} == reflected, (
        f"rows of {len(page.items)} agents reported as position {page.position}"
    )
    assert page.total == len(page.items)


# --- events of a newer Kasal -----------------------------------------------------------------
async def test_an_execution_event_of_an_unknown_type_moves_the_row_and_joins_the_timeline(
    database: Database,
) -> None:
    """A newer Kasal may write execution events this one does not know (a rolling upgrade):
    the execution's row takes its version and the timeline shows it by its type, as every
    other read model ignores it and the audit log keeps it."""
    store = await database.open_store()
    scenario = await run_scenario(CommandBus(store))
    execution_id = scenario.executions[0]
    version = len(await store.read_stream(execution_id))
    await store.append(
        new_events(execution_id, 1, after_version=version, aggregate_type="execution",
                   type_="ExecutionPaused"),
        expected_version=version,
    )
    projector = await database.open_projector()
    head = await project_all(projector, store)
    reads = ReadModels(database.engine())
    row = (await reads.get_execution(TENANT, execution_id)).item
    assert row is not None and row["version"] == version + 1
    assert row["status"] == "cancelled"  # nothing else is known of it
    timeline = await reads.execution_timeline(TENANT, execution_id)
    assert [(e["type"], e["summary"]) for e in timeline.items][-1] == (
        "ExecutionPaused", "ExecutionPaused")
    trail = await reads.audit_trail(TENANT, "execution", execution_id)
    assert trail.items[-1]["type"] == "ExecutionPaused" and trail.position == head
