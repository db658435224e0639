"""Kafka topic provisioning with kafka-python's admin client (``kasal kafka init``).

The topics of the distributed deployment (ARCHITECTURE.md, "Topics (distributed)"):
``<prefix>.commands``, ``<prefix>.events.agent|crew|execution|api_key`` (same partition count,
kept forever: ``retention.ms=-1``), ``<prefix>.public.executions.v1`` and
``<prefix>.replies`` (the single writers' answers to append requests, kept an hour).

Provisioning is all-or-nothing with respect to conflicts: every existing topic is checked
first, and when one disagrees with what Kasal needs (partition count; for event topics
retention or cleanup policy) nothing is created and :class:`TopicConflict` lists why.
Existing topics that agree are left alone, so running it twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError, TopicAlreadyExistsError

from adapters.kafka.topics import KafkaTopics

# Events are the system of record: never deleted by time or size, never compacted.
EVENT_TOPIC_CONFIGS = {"retention.ms": "-1", "cleanup.policy": "delete"}
OTHER_TOPIC_CONFIGS = {"cleanup.policy": "delete"}
REPLY_TOPIC_CONFIGS = {"cleanup.policy": "delete", "retention.ms": "3600000"}
_UNKNOWN_TOPIC = 3  # UNKNOWN_TOPIC_OR_PARTITION


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)
    # config values an existing topic must already have (else: refuse)
    required: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ExistingTopic:
    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


@dataclass
class InitReport:
    created: list[TopicSpec] = field(default_factory=list)
    existing: list[ExistingTopic] = field(default_factory=list)


class KafkaAdminError(Exception):
    """The broker could not be reached or refused a request."""


class TopicConflict(KafkaAdminError):
    """Existing topics disagree with Kasal's layout; nothing was created."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def kasal_topics(
    *, prefix: str = KafkaTopics.prefix, partitions: int = 6, replication_factor: int = 1
) -> list[TopicSpec]:
    """The topics of the distributed deployment, in creation order."""
    if partitions < 1:
        raise ValueError("partitions must be at least 1")
    if replication_factor < 1:
        raise ValueError("replication factor must be at least 1")
    names = KafkaTopics(prefix)
    event_required = {"retention.ms": "-1", "cleanup.policy": "delete"}
    specs = [TopicSpec(names.commands, partitions, replication_factor,
                       dict(OTHER_TOPIC_CONFIGS))]
    specs += [
        TopicSpec(topic, partitions, replication_factor, dict(EVENT_TOPIC_CONFIGS),
                  event_required)
        for topic in names.event_topics
    ]
    specs.append(TopicSpec(names.public_executions, partitions, replication_factor,
                           dict(OTHER_TOPIC_CONFIGS)))
    # the writers' answers to append requests: read within seconds, kept for an hour
    specs.append(TopicSpec(names.replies, partitions, replication_factor,
                           dict(REPLY_TOPIC_CONFIGS)))
    return specs


class KafkaTopicAdmin:
    """A thin, synchronous wrapper of ``KafkaAdminClient`` for Kasal's topics."""

    def __init__(
        self, bootstrap_servers: str, *, request_timeout_ms: int = 15_000,
        bootstrap_timeout_ms: int = 10_000,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        try:
            self._client = KafkaAdminClient(
                bootstrap_servers=bootstrap_servers,
                client_id="kasal-admin",
                request_timeout_ms=request_timeout_ms,
                bootstrap_timeout_ms=bootstrap_timeout_ms,
            )
        except (KafkaError, OSError) as error:
            raise KafkaAdminError(
                f"no Kafka broker answers at {bootstrap_servers} ({error})"
            ) from error

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KafkaTopicAdmin:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ reads ---

    def list_topics(self) -> set[str]:
        return set(self._client.list_topics())

    def describe(self, names: list[str]) -> dict[str, ExistingTopic]:
        """The named topics that exist, with partition count, replication and configs."""
        if not names:
            return {}
        found: dict[str, tuple[int, int]] = {}
        for topic in self._client.describe_topics(names):
            if topic["error_code"] == _UNKNOWN_TOPIC:
                continue
            if topic["error_code"] != 0:
                raise KafkaAdminError(
                    f"describing topic {topic['name']!r} failed (error {topic['error_code']})"
                )
            partitions = topic["partitions"]
            replicas = len(partitions[0]["replica_nodes"]) if partitions else 0
            found[topic["name"]] = (len(partitions), replicas)
        configs = self.topic_configs(list(found))
        return {
            name: ExistingTopic(name, count, replicas, configs.get(name, {}))
            for name, (count, replicas) in found.items()
        }

    def topic_configs(self, names: list[str]) -> dict[str, dict[str, str]]:
        """Every config value (defaults included) of the named topics."""
        if not names:
            return {}
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        result: dict[str, Any] = self._client.describe_configs(resources, config_filter="all")
        topics: dict[str, dict[str, Any]] = result.get("topic", {})
        return {
            name: {key: str(entry["value"]) for key, entry in values.items()
                   if entry.get("value") is not None}
            for name, values in topics.items()
        }

    # ----------------------------------------------------------------- writes ---

    def ensure_topics(self, specs: list[TopicSpec]) -> InitReport:
        """Create the missing topics; refuse (creating nothing) on any conflict."""
        try:
            existing = self.describe([spec.name for spec in specs])
            problems = conflicts(specs, existing)
            if problems:
                raise TopicConflict(problems)
            report = InitReport(existing=[existing[s.name] for s in specs if s.name in existing])
            missing = [spec for spec in specs if spec.name not in existing]
            for spec in missing:
                try:
                    self._client.create_topics(
                        {spec.name: {"num_partitions": spec.partitions,
                                     "replication_factor": spec.replication_factor,
                                     "configs": spec.configs}},
                        wait_for_metadata=True,
                    )
                except TopicAlreadyExistsError:
                    # created concurrently by someone else: check it like any other
                    raced = self.describe([spec.name])
                    problems = conflicts([spec], raced)
                    if problems:
                        raise TopicConflict(problems) from None
                    report.existing.append(raced[spec.name])
                    continue
                report.created.append(spec)
            return report
        except KafkaAdminError:
            raise
        except KafkaError as error:
            raise KafkaAdminError(f"Kafka at {self.bootstrap_servers}: {error}") from error

    def delete_topics(self, names: list[str]) -> None:
        present = self.list_topics()
        doomed = [name for name in names if name in present]
        if doomed:
            self._client.delete_topics(doomed)


def conflicts(specs: list[TopicSpec], existing: dict[str, ExistingTopic]) -> list[str]:
    """Why the existing topics cannot serve as Kasal's; empty when they can."""
    problems = []
    for spec in specs:
        topic = existing.get(spec.name)
        if topic is None:
            continue
        if topic.partitions != spec.partitions:
            problems.append(
                f"topic {spec.name} has {topic.partitions} partitions, Kasal needs "
                f"{spec.partitions}"
            )
        for key, wanted in spec.required.items():
            actual = topic.configs.get(key)
            if actual != wanted:
                problems.append(f"topic {spec.name} has {key}={actual}, Kasal needs {wanted}")
    return problems
