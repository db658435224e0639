"""PostgreSQL LISTEN: wake a process when another one commits (no polling).

The log mirror NOTIFYs ``kasal_log`` after each copied batch and the SQL projections
``kasal_projected`` with ``<projection>:<position>``. In the distributed deployment the
API listens to both, so read-your-writes waits and live feeds wake when the worker's
projector commits. A dropped connection is reported to ``on_lost``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)


class PgListener:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn.replace("postgresql+asyncpg://", "postgresql://")
        self.conn: Any = None
        self.lost: list[Callable[[], None]] = []

    async def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        if self.conn is None:
            self.conn = await asyncpg.connect(self.dsn)
            self.conn.add_termination_listener(self._terminated)

        def deliver(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            callback(payload)

        await self.conn.add_listener(channel, deliver)

    def on_lost(self, callback: Callable[[], None]) -> None:
        self.lost.append(callback)

    def _terminated(self, conn: Any) -> None:
        if self.conn is not conn:  # closed on purpose (close() let go of it first)
            return
        log.warning("PostgreSQL LISTEN connection lost")
        for callback in self.lost:
            callback()

    async def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await conn.close()
