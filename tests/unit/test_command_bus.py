from __future__ import annotations

import asyncio

import pytest

from adapters.eventstore.memory import InMemoryEventStore
from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from commands.errors import IdempotencyKeyReused, NotFound, StaleVersion
from domain.agent import Agent
from domain.errors import InvalidDefinition
from domain.registry import rehydrate
from tests.factories import define_crew, register_agent


@pytest.fixture
def store() -> InMemoryEventStore:
    return InMemoryEventStore()


@pytest.fixture
def bus(store: InMemoryEventStore) -> CommandBus:
    return CommandBus(store)


def ctx(tenant: str = "t1", **kwargs: object) -> CommandContext:
    return CommandContext(tenant_id=tenant, actor="user:test", **kwargs)  # type: ignore[arg-type]


async def test_register_agent_appends_one_event_with_the_full_envelope(
    bus: CommandBus, store: InMemoryEventStore
) -> None:
    context = ctx(command_id="cmd-1", correlation_id="corr-1")
    result = await bus.dispatch(register_agent(), context)
    [event] = await store.read_stream(result.aggregate_id)
    assert (result.version, result.position) == (1, 1)
    assert event.type == "AgentRegistered"
    assert event.aggregate_type == "agent"
    assert (event.tenant_id, event.actor) == ("t1", "user:test")
    assert (event.command_id, event.correlation_id, event.causation_id) == (
        "cmd-1", "corr-1", "cmd-1"
    )
    assert event.payload["spec"]["role"] == "Researcher"
    assert event.payload["spec"]["llm"] == "kasal-offline/default"


async def test_a_retried_command_returns_the_first_result_and_appends_nothing(
    bus: CommandBus, store: InMemoryEventStore
) -> None:
    first = await bus.dispatch(register_agent(), ctx(command_id="k1"))
    again = await bus.dispatch(register_agent(), ctx(command_id="k1"))
    assert again == first
    assert await store.head_position() == 1


async def test_concurrent_retries_of_one_command_append_once(
    bus: CommandBus, store: InMemoryEventStore
) -> None:
    results = await asyncio.gather(
        *(bus.dispatch(register_agent(), ctx(command_id="same")) for _ in range(10))
    )
    assert len({r.aggregate_id for r in results}) == 1
    assert await store.head_position() == 1


async def test_a_reused_idempotency_key_with_another_body_is_refused(bus: CommandBus) -> None:
    await bus.dispatch(register_agent("Researcher"), ctx(command_id="k1"))
    with pytest.raises(IdempotencyKeyReused, match="different request"):
        await bus.dispatch(register_agent("Writer"), ctx(command_id="k1"))


async def test_idempotency_keys_are_scoped_to_the_tenant(
    bus: CommandBus, store: InMemoryEventStore
) -> None:
    a = await bus.dispatch(register_agent(), ctx("t1", command_id="k1"))
    b = await bus.dispatch(register_agent(), ctx("t2", command_id="k1"))
    assert a.aggregate_id != b.aggregate_id
    assert await store.head_position() == 2


async def test_a_stale_expected_version_is_refused_and_appends_nothing(
    bus: CommandBus, store: InMemoryEventStore
) -> None:
    agent = await bus.dispatch(register_agent(), ctx())
    update = m.UpdateAgent(agent_id=agent.aggregate_id, role="R2", goal="g", backstory="b")
    await bus.dispatch(update, ctx(expected_version=1))
    with pytest.raises(StaleVersion, match="at version 2, not 1") as raised:
        await bus.dispatch(update, ctx(expected_version=1))
    assert raised.value.current == 2
    assert await store.head_position() == 2


async def test_concurrent_updates_without_if_match_are_retried_not_lost(
    bus: CommandBus, store: InMemoryEventStore
) -> None:
    agent = await bus.dispatch(register_agent(), ctx())
    await asyncio.gather(
        *(
            bus.dispatch(
                m.UpdateAgent(agent_id=agent.aggregate_id, role=f"R{i}", goal="g",
                              backstory="b"),
                ctx(),
            )
            for i in range(5)
        )
    )
    stream = await store.read_stream(agent.aggregate_id)
    assert [e.version for e in stream] == [1, 2, 3, 4, 5, 6]


async def test_another_tenants_aggregate_is_not_found(bus: CommandBus) -> None:
    agent = await bus.dispatch(register_agent(), ctx("t1"))
    with pytest.raises(NotFound):
        await bus.dispatch(m.ArchiveAgent(agent_id=agent.aggregate_id), ctx("t2"))


async def test_a_crew_may_not_reference_another_tenants_agent(bus: CommandBus) -> None:
    theirs = await bus.dispatch(register_agent(), ctx("t2"))
    with pytest.raises(InvalidDefinition, match=r"agents\[0\]: agent .* not found"):
        await bus.dispatch(define_crew([theirs.aggregate_id]), ctx("t1"))


async def test_a_crew_may_not_reference_an_archived_agent(bus: CommandBus) -> None:
    agent = await bus.dispatch(register_agent(), ctx())
    await bus.dispatch(m.ArchiveAgent(agent_id=agent.aggregate_id), ctx())
    with pytest.raises(InvalidDefinition, match="is archived"):
        await bus.dispatch(define_crew([agent.aggregate_id]), ctx())


async def test_an_execution_pins_the_crew_as_it_was_requested(
    bus: CommandBus, store: InMemoryEventStore
) -> None:
    agent = await bus.dispatch(register_agent(), ctx())
    crew = await bus.dispatch(define_crew([agent.aggregate_id]), ctx())
    run = await bus.dispatch(
        m.RequestExecution(crew_id=crew.aggregate_id, inputs={"topic": "ai"}), ctx()
    )
    await bus.dispatch(
        m.UpdateAgent(agent_id=agent.aggregate_id, role="Changed", goal="g", backstory="b"), ctx()
    )
    [requested] = await store.read_stream(run.aggregate_id)
    assert requested.payload["agents"][agent.aggregate_id]["role"] == "Researcher"
    assert requested.payload["inputs"] == {"topic": "ai"}


async def test_requesting_a_run_of_an_unknown_crew_names_the_field(bus: CommandBus) -> None:
    with pytest.raises(InvalidDefinition, match="crew_id: crew nope not found"):
        await bus.dispatch(m.RequestExecution(crew_id="nope"), ctx())


async def test_aggregates_rehydrate_from_their_stored_events(
    bus: CommandBus, store: InMemoryEventStore
) -> None:
    agent = await bus.dispatch(register_agent(), ctx())
    await bus.dispatch(
        m.UpdateAgent(agent_id=agent.aggregate_id, role="Writer", goal="g", backstory="b"), ctx()
    )
    loaded = rehydrate(Agent, await store.read_stream(agent.aggregate_id))
    assert loaded is not None
    assert (loaded.spec.role, loaded.version, loaded.tenant_id) == ("Writer", 2, "t1")


async def test_listeners_hear_every_append(bus: CommandBus) -> None:
    heard: list[int] = []
    bus.subscribe(lambda result: heard.append(result.position))
    await bus.dispatch(register_agent(), ctx())
    await bus.dispatch(register_agent(), ctx())
    assert heard == [1, 2]


async def test_a_tool_use_is_written_at_v2_and_one_written_at_v1_still_reads(
    bus: CommandBus, store: InMemoryEventStore
) -> None:
    """ExecutionToolUsed v2 adds why a call failed and how long it ran; an event an older
    Kasal stored (v1, without both) is never rewritten and reads as unknown for both."""
    import dataclasses

    from domain.execution import Execution

    agent = await bus.dispatch(register_agent(), ctx())
    crew = await bus.dispatch(define_crew([agent.aggregate_id]), ctx())
    run = await bus.dispatch(m.RequestExecution(crew_id=crew.aggregate_id,
                                                inputs={"topic": "owls"}), ctx())
    step = m.Step(kind="tool_used", task_name=None, tool="calculator", tool_input="1/0",
                  output="calculator error: division by zero", error="division by zero",
                  duration_ms=3)
    await bus.dispatch(m.RecordSteps(execution_id=run.aggregate_id,
                                     steps=[m.Step(kind="start"), step]), ctx())
    events = await store.read_stream(run.aggregate_id)
    used = events[-1]
    assert (used.type, used.schema_version) == ("ExecutionToolUsed", 2)
    assert (used.payload["error"], used.payload["duration_ms"]) == ("division by zero", 3)

    old = dataclasses.replace(used, schema_version=1, payload={
        k: v for k, v in used.payload.items() if k not in ("error", "duration_ms")})
    loaded = rehydrate(Execution, [*events[:-1], old])
    assert loaded is not None and loaded.version == used.version
    with pytest.raises(ValueError):
        m.Step(kind="tool_used", tool="calculator", duration_ms=-1)


@pytest.mark.parametrize(("text", "limit"), [
    ("a" * 400_001, "characters"),
    ("ж" * 350_000, "bytes in its chunks"),  # 2 bytes each: within the characters, not bytes
])
async def test_a_knowledge_source_over_its_limits_is_refused_naming_the_limit(
    bus: CommandBus, store: InMemoryEventStore, text: str, limit: str,
) -> None:
    from domain.knowledge import KnowledgeSource

    with pytest.raises(InvalidDefinition, match=limit):
        KnowledgeSource.add("t1", "big", text, "text/plain")
    assert await store.head_position() == 0


async def test_a_knowledge_source_counts_its_characters_and_keeps_its_chunks(
    bus: CommandBus, store: InMemoryEventStore,
) -> None:
    text = "x" * 3900  # a last chunk inside the one before it (CrewAI's overlap)
    added = await bus.dispatch(m.AddKnowledgeSource(name="n", text=text), ctx())
    [event] = await store.read_stream(added.aggregate_id)
    assert event.payload["characters"] == 3900
    assert [len(c) for c in event.payload["chunks"]] == [3900, 100]


def test_an_event_of_a_newer_schema_version_is_refused_not_misread() -> None:
    from domain.registry import UnknownEventType, upcast

    with pytest.raises(UnknownEventType, match="v3 was written by a newer Kasal"):
        upcast("ExecutionToolUsed", 3, {})
    assert upcast("ExecutionToolUsed", 1, {"tool": "t"}) == {
        "error": None, "duration_ms": None, "tool": "t"}
