"""``kasal audit verify``: every check Kasal can make of its log, in one report.

1. every aggregate's hash chain (``domain.envelope.verify_chain``);
2. the log's own checks, on a SQL log (``adapters.eventstore.integrity``): the log chain
   over the global order, the head record, the accepted commands;
3. the read side as a witness: the SQL projection must not be ahead of the log, and the
   audit trail it keeps (a copy of every event's position and hash, in another database
   when embedded) must still match the log. It catches a log whose chains, head record and
   commands were all rewritten, unless the read models were rewritten too, or rebuilt from
   the tampered log (``kasal projections rebuild``): only a signed checkpoint kept apart
   from both closes that.

Each part reads in pages; only the aggregates' ids are held in memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from domain.envelope import RecordedEvent, verify_chain
from domain.errors import TamperedEvent
from kasal.bootstrap import Kasal

PAGE = 5000
SHOWN = 20


@dataclass
class Report:
    aggregates: int = 0
    events: int = 0
    failures: list[str] = field(default_factory=list)


async def verify_log(kasal: Kasal) -> Report:
    report = Report()
    aggregates: set[str] = set()
    async for event in _log(kasal):
        aggregates.add(event.aggregate_id)
    for aggregate_id in sorted(aggregates):
        try:
            report.events += verify_chain(await kasal.store.read_stream(aggregate_id))
        except TamperedEvent as error:
            report.failures.append(str(error))
    report.aggregates = len(aggregates)
    report.failures += await kasal.integrity_problems()
    report.failures += await read_side_problems(kasal)
    return report


async def read_side_problems(kasal: Kasal) -> list[str]:
    """What the read side saw of the log that the log no longer holds as it was."""
    problems: list[str] = []
    projected = await kasal.read_models.position()  # first: the log only grows meanwhile
    head = await kasal.store.head_position()
    if projected > head:
        problems.append(
            f"the read models have applied the log up to position {projected}, but it ends at "
            f"{head}: events were removed (a rollback or a truncation)")
    log = _log(kasal)
    event = await anext(log, None)
    differ = 0
    async for position, aggregate_id, version, event_hash in _trail(kasal):
        while event is not None and event.position < position:
            event = await anext(log, None)
        if event is not None and (event.position, event.aggregate_id, event.version,
                                  event.hash) == (position, aggregate_id, version, event_hash):
            continue
        differ += 1
        if differ > SHOWN:
            continue
        if event is None or event.position != position:
            problems.append(f"position {position} ({aggregate_id} v{version}) is in the audit "
                            "trail but not in the log: it was removed or moved")
        else:
            problems.append(
                f"position {position} holds {event.aggregate_id} v{event.version} in the log, "
                f"but the audit trail recorded {aggregate_id} v{version} there"
                + (" with another hash: the event was changed" if
                   (event.aggregate_id, event.version) == (aggregate_id, version) else ""))
    if differ > SHOWN:
        problems.append(f"... and {differ - SHOWN} more audit trail entries differ from the log")
    return problems


async def _log(kasal: Kasal) -> AsyncIterator[RecordedEvent]:
    position = 0
    while batch := await kasal.store.read_all(position, PAGE):
        for event in batch:
            yield event
        position = batch[-1].position


async def _trail(kasal: Kasal) -> AsyncIterator[tuple[int, str, int, str]]:
    position = 0
    while page := await kasal.read_models.audit_entries(position, PAGE):
        for entry in page:
            yield entry
        position = page[-1][0]
