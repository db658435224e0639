"""Projectors' positions: read and written in the same transaction as their rows."""

from __future__ import annotations

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from projections.schema import tracking

PROJECTED_CHANNEL = "kasal_projected"  # PostgreSQL NOTIFY "<projection>:<position>" on commit


async def tracked_position(conn: AsyncConnection, name: str, *, lock: bool = False) -> int:
    query = select(tracking.c.position).where(tracking.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    value = (await conn.execute(query)).scalar()
    return int(value) if value is not None else 0


async def set_position(conn: AsyncConnection, name: str, position: int, previous: int) -> None:
    if conn.dialect.name == "postgresql":
        # delivered at commit: processes whose projectors run elsewhere wake on it
        await conn.execute(select(func.pg_notify(PROJECTED_CHANNEL, f"{name}:{position}")))
    if previous == 0:
        found = (await conn.execute(select(tracking.c.name).where(tracking.c.name == name))).first()
        if found is None:
            await conn.execute(insert(tracking), {"name": name, "position": position})
            return
    await conn.execute(update(tracking).where(tracking.c.name == name).values(position=position))


async def forget_position(conn: AsyncConnection, name: str) -> None:
    await conn.execute(tracking.delete().where(tracking.c.name == name))
