"""A LISTEN connection that PostgreSQL drops (a restart, a failover, an administrator's
pg_terminate_backend) comes back by itself, says so to its listeners (an empty payload:
look again), and delivers notifications again."""

from __future__ import annotations

import asyncio

import pytest

from adapters.postgres.listen import PgListener
from tests.pg import connect, plain_postgres_url

pytestmark = pytest.mark.postgres


async def test_a_dropped_listen_connection_is_re_established() -> None:
    channel = "kasal_test_listen"
    received: list[str] = []
    arrived = asyncio.Event()

    def callback(payload: str) -> None:
        received.append(payload)
        arrived.set()

    listener = PgListener(plain_postgres_url())
    await listener.listen(channel, callback)
    admin = await connect()
    try:
        await admin.execute(f"NOTIFY {channel}, 'one'")
        async with asyncio.timeout(10):
            await arrived.wait()
        assert received == ["one"]

        arrived.clear()
        pid = listener.conn.get_server_pid()
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        async with asyncio.timeout(10):
            await arrived.wait()  # the reconnect's "look again"
        assert received == ["one", ""]
        assert listener.conn is not None and listener.conn.get_server_pid() != pid

        arrived.clear()
        await admin.execute(f"NOTIFY {channel}, 'two'")
        async with asyncio.timeout(10):
            await arrived.wait()
        assert received == ["one", "", "two"]
    finally:
        await admin.close()
        await listener.close()
