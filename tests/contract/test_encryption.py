"""Payload encryption as a decorator around every store (adapters/encryption.py).

The ciphertext is what the inner store keeps and hashes; readers of the wrapper get the
plaintext in ``payload`` and the stored form in ``stored_payload``; the chain verifies
with the key, without it and with the wrong one.
"""

from __future__ import annotations

import json

from sqlalchemy import text

from adapters.eventstore.encryption import (
    ALGORITHM,
    MARKER,
    EncryptingEventStore,
    PayloadCipher,
    new_key,
)
from commands import messages as m
from commands.bus import CommandBus
from commands.ports import EventStore
from domain.envelope import verify_chain
from domain.ids import new_id

from .conftest import Database, agent_command, ctx, new_events


async def test_the_inner_store_keeps_ciphertext_and_readers_get_plaintext(
    event_store: EventStore,
) -> None:
    store = EncryptingEventStore(event_store, PayloadCipher(new_key()))
    aggregate_id = new_id()
    sent = new_events(aggregate_id, 3)
    await store.append(sent, expected_version=0)

    on_disk = await event_store.read_stream(aggregate_id)
    for event in on_disk:
        assert set(event.payload) == {MARKER, "data"}
        assert event.payload[MARKER] == ALGORITHM
        assert "héllo" not in json.dumps(event.payload, ensure_ascii=False)
    assert len({e.payload["data"] for e in on_disk}) == 3  # a fresh nonce per payload

    for via in (await store.read_stream(aggregate_id), await store.read_all(0, 100)):
        assert [dict(e.payload) for e in via] == [dict(e.payload) for e in sent]
        assert [e.stored_payload for e in via] == [e.payload for e in on_disk]
        assert [e.hash for e in via] == [e.hash for e in on_disk]
        assert verify_chain(via) == 3
    assert verify_chain(on_disk) == 3


async def test_with_a_different_key_the_chain_verifies_and_payloads_are_unreadable(
    event_store: EventStore,
) -> None:
    writer = EncryptingEventStore(event_store, PayloadCipher(new_key()))
    aggregate_id = new_id()
    await writer.append(new_events(aggregate_id, 2), expected_version=0)

    stranger = EncryptingEventStore(event_store, PayloadCipher(new_key()))
    events = await stranger.read_stream(aggregate_id)

    assert [set(e.payload) for e in events] == [{"$unreadable"}, {"$unreadable"}]
    assert verify_chain(events) == 2
    assert verify_chain(await event_store.read_stream(aggregate_id)) == 2


async def test_the_command_bus_works_through_the_encrypting_store(
    sqlite_database: Database,
) -> None:
    inner = await sqlite_database.open_store()
    store = EncryptingEventStore(inner, PayloadCipher(new_key()))
    bus = CommandBus(store)

    registered = await bus.dispatch(agent_command("Researcher"), ctx())
    updated = await bus.dispatch(
        m.UpdateAgent(
            agent_id=registered.aggregate_id, role="Editor", goal="Edit", backstory="Keen."
        ),
        ctx(),
    )

    assert updated.version == 2
    plain = await store.read_stream(registered.aggregate_id)
    assert plain[1].payload["spec"]["role"] == "Editor"
    assert verify_chain(plain) == 2
    async with inner.reader.connect() as conn:  # the payload column, as written to the file
        columns = (await conn.execute(text("SELECT payload FROM kasal_events"))).scalars().all()
    assert len(columns) == 2
    for column in columns:
        assert json.loads(column)[MARKER] == ALGORITHM
        assert "Editor" not in column
        assert "Researcher" not in column
