"""Common base of Kasal's aggregates, built on eventsourcing's ``Aggregate``.

Each subclass declares ``AGGREGATE_TYPE`` (``agent``, ``crew``...). Events are the
nested classes that ``@event("Registered")`` creates; their stored type name is the
aggregate's class name plus the event's name: ``AgentRegistered``.
"""

from __future__ import annotations

from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.ids import creation_id
from domain.vocabulary import AggregateType


class KasalAggregate(Aggregate):
    AGGREGATE_TYPE: ClassVar[AggregateType]
    tenant_id: str

    @classmethod
    def create_id(cls, *_: Any, **__: Any) -> UUID:
        return creation_id(cls.AGGREGATE_TYPE)

    @property
    def aggregate_id(self) -> str:
        return str(self.id)


def check_text(field: str, value: str, *, max_length: int = 10_000) -> str:
    from domain.errors import InvalidDefinition

    text = value.strip()
    if not text:
        raise InvalidDefinition(f"{field} must not be empty")
    if len(text) > max_length:
        raise InvalidDefinition(f"{field} is longer than {max_length} characters")
    return text
