"""A leader among processes: the holder of a PostgreSQL session advisory lock."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg


class LeaderLock:
    """One process at a time holds ``key`` (the distributed worker that runs the processors
    following the log's global order). The others wait on the lock, inside PostgreSQL,
    without polling; when the holder's process dies its connection closes, the lock is
    released and a waiting process takes over. A holder that loses its connection must
    stop at once: ``lost`` is set."""

    def __init__(self, dsn: str, key: int) -> None:
        self.dsn = dsn.replace("postgresql+asyncpg://", "postgresql://")
        self.key = key
        self.conn: Any = None
        self.lost = asyncio.Event()

    async def acquire(self) -> None:
        self.conn = await asyncpg.connect(self.dsn)
        self.conn.add_termination_listener(lambda _conn: self.lost.set())
        await self.conn.execute("SELECT pg_advisory_lock($1)", self.key)

    async def release(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await conn.close()
