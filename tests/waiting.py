"""Wait on a condition with a deadline (never a bare sleep)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable


async def until(check: Callable[[], Awaitable[bool] | bool], *, timeout: float = 10.0,
                what: str = "a condition", interval: float = 0.01) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    for _ in itertools.count():  # until the deadline
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)
