"""`kasal kafka init` against a real Kafka broker.

The broker is ``KASAL_TEST_KAFKA_BOOTSTRAP`` (``make test`` sets it), else the private test
broker of ``scripts/kafka.sh`` (127.0.0.1:59092). A test fails loudly when nothing answers:
none is skipped. Every test uses its own topic prefix and deletes its topics afterwards."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.kafka.admin import (
    KafkaAdminError,
    KafkaTopicAdmin,
    TopicConflict,
    TopicSpec,
    kasal_topics,
)
from tests.pg import POSTGRES_URL

pytestmark = pytest.mark.kafka

BOOTSTRAP = os.environ.get("KASAL_TEST_KAFKA_BOOTSTRAP") or "127.0.0.1:59092"
SUFFIXES = (
    "commands", "events.agent", "events.crew", "events.execution", "public.executions.v1",
    "replies", "events.api_key", "events.knowledge",
)
EVENT_SUFFIXES = ("events.agent", "events.crew", "events.execution", "events.api_key",
                  "events.knowledge")


@pytest.fixture
def admin() -> Iterator[KafkaTopicAdmin]:
    try:
        client = KafkaTopicAdmin(BOOTSTRAP, bootstrap_timeout_ms=10_000)
    except KafkaAdminError as error:
        pytest.fail(
            f"Kafka at {BOOTSTRAP} is not reachable ({error}); start it with "
            "`make services-up` (or `bash scripts/kafka.sh up`) or set KASAL_TEST_KAFKA_BOOTSTRAP",
            pytrace=False,
        )
    with client:
        yield client


@pytest.fixture
def prefix(admin: KafkaTopicAdmin) -> Iterator[str]:
    name = "t" + uuid.uuid4().hex[:10]
    yield name
    admin.delete_topics([t for t in admin.list_topics() if t.startswith(name + ".")])


def ours(admin: KafkaTopicAdmin, prefix: str) -> set[str]:
    return {t for t in admin.list_topics() if t.startswith(prefix + ".")}


def test_init_creates_exactly_kasals_topics(admin: KafkaTopicAdmin, prefix: str) -> None:
    report = admin.ensure_topics(kasal_topics(prefix=prefix, partitions=4))

    expected = {f"{prefix}.{suffix}" for suffix in SUFFIXES}
    assert {spec.name for spec in report.created} == expected
    assert report.existing == []
    assert ours(admin, prefix) == expected

    described = admin.describe(sorted(expected))
    assert {name: t.partitions for name, t in described.items()} == dict.fromkeys(expected, 4)
    assert all(t.replication_factor == 1 for t in described.values())
    configs = admin.topic_configs(sorted(expected))
    for suffix in SUFFIXES:
        topic = configs[f"{prefix}.{suffix}"]
        assert topic["cleanup.policy"] == "delete"
        if suffix in EVENT_SUFFIXES:
            assert topic["retention.ms"] == "-1", suffix
        else:
            assert topic["retention.ms"] != "-1", suffix


def test_second_init_changes_nothing(admin: KafkaTopicAdmin, prefix: str) -> None:
    specs = kasal_topics(prefix=prefix, partitions=3)
    admin.ensure_topics(specs)
    before = admin.describe([s.name for s in specs])

    again = admin.ensure_topics(specs)

    assert again.created == []
    assert sorted(t.name for t in again.existing) == sorted(s.name for s in specs)
    assert admin.describe([s.name for s in specs]) == before


def test_refuses_a_topic_with_another_partition_count_and_creates_nothing(
    admin: KafkaTopicAdmin, prefix: str
) -> None:
    wrong = kasal_topics(prefix=prefix, partitions=2)[2]
    assert wrong.name == f"{prefix}.events.crew"
    admin.ensure_topics([wrong])

    with pytest.raises(TopicConflict) as refused:
        admin.ensure_topics(kasal_topics(prefix=prefix, partitions=6))

    assert refused.value.problems == [
        f"topic {prefix}.events.crew has 2 partitions, Kasal needs 6"
    ]
    assert ours(admin, prefix) == {f"{prefix}.events.crew"}


def test_refuses_an_event_topic_that_does_not_keep_events_forever(
    admin: KafkaTopicAdmin, prefix: str
) -> None:
    spec = kasal_topics(prefix=prefix, partitions=2)[1]
    # same partitions, but the broker's default retention (7 days)
    admin.ensure_topics([TopicSpec(spec.name, 2, 1, {})])

    with pytest.raises(TopicConflict, match=re.escape("retention.ms=604800000, Kasal needs -1")):
        admin.ensure_topics(kasal_topics(prefix=prefix, partitions=2))
    assert ours(admin, prefix) == {spec.name}


def kasal_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("kasal")), *args],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "KASAL_KAFKA_PARTITIONS": "6", **env},
    )


def distributed(prefix: str, data_dir: Path,
                database_url: str = "postgresql://nobody@127.0.0.1:1/none") -> dict[str, str]:
    """The environment of a distributed Kasal on ``prefix`` (no database by default)."""
    return {"KASAL_MODE": "distributed", "DATABASE_TYPE": "postgres",
            "DATABASE_URL": database_url, "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
            "KASAL_KAFKA_PREFIX": prefix, "KASAL_DATA_DIR": str(data_dir),
            "KASAL_VECTOR_SEARCH": "false"}


def test_cli_kafka_init(admin: KafkaTopicAdmin, prefix: str) -> None:
    # the first run creates every topic; the second finds them all and changes nothing
    for verb, summary in (("created ", "8 created, 0 already present"),
                          ("exists  ", "0 created, 8 already present")):
        run = kasal_cli("kafka", "init", "--bootstrap", BOOTSTRAP, "--prefix", prefix,
                        "--partitions", "2")
        assert run.returncode == 0, run.stderr
        for suffix in SUFFIXES:
            assert f"{verb} {prefix}.{suffix}  partitions=2" in run.stdout
        assert summary in run.stdout

    # KASAL_KAFKA_PARTITIONS (6) disagrees with the topics (2): refused, exit 1
    refused = kasal_cli("kafka", "init", "--bootstrap", BOOTSTRAP, "--prefix", prefix)
    assert refused.returncode == 1
    assert f"topic {prefix}.commands has 2 partitions, Kasal needs 6" in refused.stderr
    assert "nothing was created" in refused.stderr


def test_a_worker_without_its_topics_says_to_run_kafka_init(
    admin: KafkaTopicAdmin, prefix: str, tmp_path: Path
) -> None:
    result = kasal_cli("worker", **distributed(prefix, tmp_path))
    assert result.returncode == 1, result.stderr
    assert f"topics {prefix}.commands" in result.stderr
    assert "run 'kasal kafka init'" in result.stderr
    assert "Traceback" not in result.stderr


def test_kafka_init_follows_the_configured_prefix(admin: KafkaTopicAdmin, prefix: str) -> None:
    result = kasal_cli("kafka", "init", "--bootstrap", BOOTSTRAP, "--partitions", "1",
                       KASAL_KAFKA_PREFIX=prefix)
    assert result.returncode == 0, result.stderr
    assert f"{prefix}.commands" in ours(admin, prefix)


def test_the_distributed_api_without_its_topics_says_to_run_kafka_init(
    admin: KafkaTopicAdmin, prefix: str, tmp_path: Path
) -> None:
    result = kasal_cli("serve", "--port", "1",
                       **distributed(prefix, tmp_path, database_url=POSTGRES_URL))
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"topic {prefix}.replies does not exist" in result.stderr
    assert "run 'kasal kafka init'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_worker_refuses_a_partition_count_other_than_the_topics(
    admin: KafkaTopicAdmin, prefix: str, tmp_path: Path
) -> None:
    admin.ensure_topics(kasal_topics(prefix=prefix, partitions=2))
    result = kasal_cli("worker", **distributed(prefix, tmp_path))  # 6 partitions
    assert result.returncode == 1, result.stderr
    assert f"{prefix}.commands has 2 partitions but KASAL_KAFKA_PARTITIONS is 6" in result.stderr
    assert "Traceback" not in result.stderr
