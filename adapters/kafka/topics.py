"""Where things go over Kafka in the distributed deployment: the topic names and partitions.

Topics (``kasal kafka init`` provisions them; one partition count for all that are keyed
by aggregate id, so an aggregate's commands, events and writer state share a partition
number): ``<prefix>.commands`` carries append requests to the single writer of each
partition, ``<prefix>.events.<kind>`` the sealed events (the system of record),
``<prefix>.replies`` the writer's answers, keyed by the asking client's id.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka.partitioner import murmur2

from domain.vocabulary import AggregateType

# one events topic per aggregate type (API keys are aggregates too: who may act is audited)
EVENT_KINDS = tuple(kind.value for kind in AggregateType)


@dataclass(frozen=True)
class KafkaTopics:
    prefix: str = "kasal"

    @property
    def commands(self) -> str:
        return f"{self.prefix}.commands"

    @property
    def replies(self) -> str:
        return f"{self.prefix}.replies"

    @property
    def public_executions(self) -> str:
        return f"{self.prefix}.public.executions.v1"

    def events(self, aggregate_type: str) -> str:
        return f"{self.prefix}.events.{aggregate_type}"

    @property
    def event_topics(self) -> tuple[str, ...]:
        return tuple(self.events(kind) for kind in EVENT_KINDS)


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as in the Java client) picks."""
    return int(murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions
