"""What operators need when a processor cannot go on: its failure, and the events they have
set aside for repair (quarantine). Kept beside the read models, in their database, so that
every process (an API process too, whose projectors run on a worker) can report it.

A processor that fails on a batch retries it, one event at a time, with backoff, forever:
nothing is skipped on its own. Its failure (which event, how often, why) is written here and
cleared when it moves on; ``/health/ready`` turns not-ready while it lasts. The operator can
quarantine that event (``kasal projections quarantine``): the SQL projector then keeps it in
the audit log only and goes on. ``kasal projections rebuild`` keeps both tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.envelope import utc_now
from projections.connections import reading
from projections.schema import metadata

processor_failures = Table(
    "processor_failures",
    metadata,
    Column("processor", String(200), primary_key=True),
    Column("position", BigInteger, nullable=False),  # the event it cannot get past
    Column("event_id", String(36)),
    Column("event_type", String(100)),
    Column("aggregate_type", String(32)),
    Column("aggregate_id", String(64)),
    Column("attempts", Integer, nullable=False),
    Column("since", String(40), nullable=False),
    Column("error", Text, nullable=False),
)

quarantine = Table(
    "projection_quarantine",
    metadata,
    Column("processor", String(200), primary_key=True),
    Column("position", BigInteger, primary_key=True),
    Column("reason", Text, nullable=False),
    Column("by", String(200), nullable=False),
    Column("at", String(40), nullable=False),
)
KEPT_ON_REBUILD = frozenset({processor_failures.name, quarantine.name})


@dataclass(frozen=True)
class Failure:
    processor: str
    position: int
    attempts: int
    since: str
    error: str
    event_id: str | None = None
    event_type: str | None = None
    aggregate_type: str | None = None
    aggregate_id: str | None = None

    def stuck(self, attempts: int, seconds: float) -> bool:
        """At one event ``attempts`` times or more, over ``seconds`` or longer."""
        since = datetime.fromisoformat(self.since.replace("Z", "+00:00"))
        return self.attempts >= attempts and (datetime.now(UTC) - since).total_seconds() >= seconds

    def headline(self) -> str:
        """What an unauthenticated health check may say: no ids, no error text."""
        return (f"{self.processor} cannot get past position {self.position} "
                f"({self.attempts} attempts since {self.since})")

    def describe(self) -> str:
        event = f"{self.event_type} ({self.aggregate_type} {self.aggregate_id})" \
            if self.event_type else "its next batch"
        return (f"{self.processor} cannot apply the event at position {self.position}, "
                f"{event}: {self.error} ({self.attempts} attempts since {self.since})")


async def record_failure(engine: AsyncEngine, failure: Failure) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(processor_failures)
                           .where(processor_failures.c.processor == failure.processor))
        await conn.execute(insert(processor_failures), failure.__dict__)


async def clear_failure(engine: AsyncEngine, processor: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(delete(processor_failures)
                           .where(processor_failures.c.processor == processor))


async def current_failures(engine: AsyncEngine) -> list[Failure]:
    async with reading(engine) as conn:
        rows = await conn.execute(select(processor_failures).order_by(processor_failures.c.since))
        return [Failure(**dict(row._mapping)) for row in rows]


async def quarantine_event(engine: AsyncEngine, processor: str, position: int, reason: str,
                           by: str) -> bool:
    """Set the event at ``position`` aside for ``processor``; False when it was already."""
    async with engine.begin() as conn:
        if await quarantined(conn, processor, [position]):
            return False
        await conn.execute(insert(quarantine), {"processor": processor, "position": position,
                                                "reason": reason, "by": by, "at": utc_now()})
    return True


async def quarantined(conn: AsyncConnection, processor: str, positions: list[int]) -> set[int]:
    rows = await conn.execute(select(quarantine.c.position).where(
        quarantine.c.processor == processor, quarantine.c.position.in_(positions)))
    return {int(p) for p in rows.scalars()}

