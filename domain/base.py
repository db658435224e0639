"""Common base of Kasal's aggregates, built on eventsourcing's ``Aggregate``.

Each subclass declares ``AGGREGATE_TYPE`` (``agent``, ``crew``...). Events are the
nested classes that ``@event("Registered")`` creates; their stored type name is the
aggregate's class name plus the event's name: ``AgentRegistered``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import AlreadyArchived, InvalidDefinition
from domain.ids import creation_id
from domain.vocabulary import AggregateType

S = TypeVar("S")


class KasalAggregate(Aggregate):
    AGGREGATE_TYPE: ClassVar[AggregateType]
    tenant_id: str

    @classmethod
    def create_id(cls, *_: Any, **__: Any) -> UUID:
        return creation_id(cls.AGGREGATE_TYPE)

    @property
    def aggregate_id(self) -> str:
        return str(self.id)


class Definition(KasalAggregate, Generic[S]):
    """An agent or a crew: defined once, then replaced or archived. An archived definition
    never changes again. A subclass checks its spec (``checked``) and declares its
    ``Updated`` and ``Archived`` events (``_updated``, ``_archived``)."""

    if TYPE_CHECKING:  # set by the subclass's events (an annotation would become a field)
        archived: bool

    def update(self, spec: S) -> None:
        self.check_not_archived()
        self._updated(spec=self.checked(spec))

    def archive(self) -> None:
        self.check_not_archived()
        self._archived()

    def check_not_archived(self) -> None:
        if self.archived:
            raise AlreadyArchived(f"{self.AGGREGATE_TYPE.label} {self.id} is archived")

    @staticmethod
    def checked(spec: S) -> dict[str, Any]:
        """The spec's invariants checked; its payload."""
        raise NotImplementedError

    def _updated(self, spec: dict[str, Any]) -> None:
        raise NotImplementedError

    def _archived(self) -> None:
        raise NotImplementedError


def check_text(field: str, value: str, *, max_length: int = 10_000) -> str:
    text = value.strip()
    if not text:
        raise InvalidDefinition(f"{field} must not be empty")
    if len(text) > max_length:
        raise InvalidDefinition(f"{field} is longer than {max_length} characters")
    return text
