"""Read-your-writes: wait (bounded) until a projection reflects a given position."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class ProjectionClock:
    """Knows the position a projection has reached.

    The in-process runtime calls ``advance`` after each committed batch, which wakes
    waiters at once. Where the projector runs in another process, ``wait_for`` also
    re-reads the tracked position every ``poll_interval`` seconds.
    """

    def __init__(
        self, read_position: Callable[[], Awaitable[int]], poll_interval: float = 0.25
    ) -> None:
        self.read_position = read_position
        self.poll_interval = poll_interval
        self.position = 0
        self.changed = asyncio.Event()

    def advance(self, position: int) -> None:
        if position > self.position:
            self.position = position
            self.changed.set()
            self.changed = asyncio.Event()

    async def wait_for(self, position: int, timeout: float) -> int:
        """Return the reached position: >= ``position`` unless ``timeout`` ran out first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.position < position:
                self.advance(await self.read_position())
            if self.position >= position:
                return self.position
            remaining = deadline - loop.time()
            if remaining <= 0:
                return self.position
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self.changed.wait(), timeout=min(remaining, self.poll_interval)
                )
