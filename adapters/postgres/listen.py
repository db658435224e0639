"""PostgreSQL LISTEN: wake a process when another one commits (no polling).

The log mirror NOTIFYs ``kasal_log`` after each copied batch and the SQL projections
``kasal_projected`` with ``<projection>:<position>``. In the distributed deployment the
API listens to both, so read-your-writes waits and live feeds wake when the worker's
projector commits. A lost connection (PostgreSQL restarted) is re-established with
backoff; then every callback is called once with an empty payload, meaning "something
may have been missed while away: look again".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)


class PgListener:
    def __init__(self, dsn: str, *, max_backoff_s: float = 5.0) -> None:
        self.dsn = dsn.replace("postgresql+asyncpg://", "postgresql://")
        self.max_backoff_s = max_backoff_s
        self.conn: Any = None
        self.channels: dict[str, list[Callable[[str], None]]] = {}
        self.reconnecting: asyncio.Task[None] | None = None
        self.closed = False

    async def listen(self, channel: str, callback: Callable[[str], None]) -> None:
        first = channel not in self.channels
        self.channels.setdefault(channel, []).append(callback)
        if self.conn is None:
            await self._connect()
        elif first:
            await self.conn.add_listener(channel, self._deliver)

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        conn.add_termination_listener(self._terminated)
        for channel in self.channels:
            await conn.add_listener(channel, self._deliver)
        self.conn = conn

    def _deliver(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        for callback in self.channels.get(channel, ()):
            callback(payload)

    def _terminated(self, conn: Any) -> None:
        if self.closed or self.conn is not conn:  # closed on purpose
            return
        log.warning("PostgreSQL LISTEN connection lost; reconnecting")
        self.conn = None
        if self.reconnecting is None or self.reconnecting.done():
            self.reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.25
        while not self.closed:
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError) as error:
                log.debug("LISTEN reconnect failed (%s); retrying in %ss", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            log.info("PostgreSQL LISTEN connection re-established")
            for callbacks in self.channels.values():
                for callback in callbacks:
                    callback("")
            return

    async def close(self) -> None:
        self.closed = True
        if self.reconnecting is not None:
            self.reconnecting.cancel()
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await conn.close()
