"""Maps aggregates and their domain events to and from the envelope's type and payload.

Stored events are never rewritten: an old ``schema_version`` is upcast here on read,
by a chain of functions registered in ``UPCASTERS``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import CanInitAggregate, CanMutateAggregate
from eventsourcing.utils import get_topic

from domain.agent import Agent
from domain.api_key import ApiKey
from domain.base import KasalAggregate
from domain.crew import Crew
from domain.envelope import RecordedEvent, is_unreadable
from domain.errors import DomainError, InvalidTransition
from domain.execution import Execution
from domain.knowledge import KnowledgeSource
from domain.vocabulary import AggregateType, EventType

A = TypeVar("A", bound=KasalAggregate)

SCHEMA_VERSION = 1  # of an event type whose payload never changed
ENVELOPE_ATTRIBUTES = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic"}
)
AGGREGATES: dict[AggregateType, type[KasalAggregate]] = {
    cls.AGGREGATE_TYPE: cls for cls in (Agent, Crew, Execution, ApiKey, KnowledgeSource)
}
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
# (event type, schema version it upgrades from) -> function returning the next version
UPCASTERS: dict[tuple[str, int], Upcaster] = {
    # v2 (2026-12-02): why a tool call failed, and how long it ran (unknown before)
    (EventType.EXECUTION_TOOL_USED, 1): lambda p: {"error": None, "duration_ms": None, **p},
}
# an event type's current schema version: where its chain of upcasters leads
SCHEMA_VERSIONS: dict[str, int] = {EventType.EXECUTION_TOOL_USED: 2}


class UnknownEventType(DomainError):
    """An event type that no aggregate of this version of Kasal defines."""


class UnreadableHistory(InvalidTransition):
    """An event of the aggregate was encrypted with a key this Kasal does not hold."""


def _event_classes() -> dict[str, type[CanMutateAggregate[UUID]]]:
    found: dict[str, type[CanMutateAggregate[UUID]]] = {}
    for agg_cls in AGGREGATES.values():
        for name in dir(agg_cls):
            value = getattr(agg_cls, name)
            if (
                isinstance(value, type)
                and issubclass(value, CanMutateAggregate)
                and value.__qualname__ == f"{agg_cls.__name__}.{value.__name__}"
                and value.__name__ not in ("Event", "Created")
            ):
                found[agg_cls.__name__ + value.__name__] = value
    return found


EVENT_CLASSES = _event_classes()
if set(EVENT_CLASSES) != set(EventType):  # the vocabulary is the aggregates' events, exactly
    raise ImportError(
        "domain.vocabulary.EventType and the aggregates' events differ: "
        f"{sorted(set(EVENT_CLASSES) ^ set(EventType))}"
    )
EVENT_TYPES = {cls: EventType(name) for name, cls in EVENT_CLASSES.items()}
_MISSING_UPCASTERS = [(t, v) for t, top in SCHEMA_VERSIONS.items() for v in range(1, top)
                      if (t, v) not in UPCASTERS]
if _MISSING_UPCASTERS:  # an event stored at any earlier version must still read
    raise ImportError(f"domain.registry.UPCASTERS lacks {_MISSING_UPCASTERS}")


def event_type(domain_event: CanMutateAggregate[UUID]) -> EventType:
    return EVENT_TYPES[type(domain_event)]


def event_payload(domain_event: CanMutateAggregate[UUID]) -> dict[str, Any]:
    return {k: v for k, v in vars(domain_event).items() if k not in ENVELOPE_ATTRIBUTES}


def schema_version_of(type_: str) -> int:
    """The schema version an event of ``type_`` is written with today."""
    return SCHEMA_VERSIONS.get(type_, SCHEMA_VERSION)


def upcast(type_: str, schema_version: int, payload: dict[str, Any]) -> dict[str, Any]:
    if schema_version > schema_version_of(type_):  # never misread a newer Kasal's event
        raise UnknownEventType(
            f"{type_} v{schema_version} was written by a newer Kasal (this one reads up to "
            f"v{schema_version_of(type_)}): upgrade this process")
    while schema_version < schema_version_of(type_):
        payload = UPCASTERS[(type_, schema_version)](payload)
        schema_version += 1
    return payload


def to_domain_event(event: RecordedEvent) -> CanMutateAggregate[UUID]:
    if is_unreadable(event.payload):
        raise UnreadableHistory(
            f"{AggregateType(event.aggregate_type).label} {event.aggregate_id} cannot be changed: "
            f"its event v{event.version} was encrypted with a key this Kasal does not hold"
        )
    try:
        cls = EVENT_CLASSES[event.type]
    except KeyError:
        raise UnknownEventType(f"unknown event type {event.type!r}") from None
    kwargs: dict[str, Any] = dict(upcast(event.type, event.schema_version, dict(event.payload)))
    kwargs.update(
        originator_id=UUID(event.aggregate_id),
        originator_version=event.version,
        timestamp=datetime.fromisoformat(event.occurred_at),
    )
    if issubclass(cls, CanInitAggregate):
        kwargs["originator_topic"] = get_topic(AGGREGATES[AggregateType(event.aggregate_type)])
    return cls(**kwargs)


def rehydrate(aggregate_class: type[A], events: Iterable[RecordedEvent]) -> A | None:
    """Rebuild an aggregate from its stored events; ``None`` when there are none."""
    aggregate: A | None = None
    for event in events:
        aggregate = to_domain_event(event).mutate(aggregate)
    return aggregate
