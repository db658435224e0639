"""Connections to the read models' database: one that cannot be reached (restarting, failing
over) is ``ReadModelUnavailable`` for the caller, never a driver's error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


class ReadModelUnavailable(Exception):
    """The read models' database did not answer; retrying shortly is the remedy."""


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    try:
        async with engine.connect() as conn:
            yield conn
    except (DBAPIError, OSError) as error:
        raise ReadModelUnavailable(
            f"the read models' database is unavailable ({type(error).__name__})"
        ) from error
