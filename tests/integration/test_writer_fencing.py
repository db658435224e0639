"""Writer fencing (issue 11 item 7): a partition writer paused past its session timeout cannot
append once another writer owns its partition, whether it was paused with a request in hand
that it had fetched (``prepare``) or with its events sent and its transaction open
(``commit``: they are aborted, in the log but never read). Without fencing the request would
be in the log twice (the successor appends it from the commands topic too), and the mirror
would stop on the aggregate's chain."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from adapters.kafka.groups import read_records
from adapters.kafka.records import AppendReply, AppendRequest, decode_event
from adapters.kafka.topics import KafkaTopics, partition_for
from adapters.kafka.writer import LogWriter
from domain.envelope import NewEvent, utc_now
from domain.ids import new_id
from tests.kafka import BOOTSTRAP, PARTITIONS, delete_topics, new_prefix, provision
from tests.processes import REPO
from tests.waiting import until

pytestmark = [pytest.mark.kafka]

SESSION_S = 6  # the broker's minimum (group.min.session.timeout.ms)


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = new_prefix()
    provision(name)
    try:
        yield name
    finally:
        delete_topics(name)


def agent_event(aggregate_id: str) -> NewEvent:
    command = new_id()
    return NewEvent(
        event_id=new_id(), aggregate_type="agent", aggregate_id=aggregate_id, version=1,
        type="AgentRegistered", schema_version=1, occurred_at=utc_now(), tenant_id="acme",
        actor="user:fencing-test", command_id=command, correlation_id=command,
        causation_id=command, payload={"role": "R", "goal": "g", "backstory": "b"})


def start_zombie(prefix: str, output: Path, where: str) -> subprocess.Popen[bytes]:
    """The first writer, holding at ``where`` until it gets SIGUSR1."""
    with output.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.zombie_writer", prefix, str(PARTITIONS),
             str(SESSION_S), where],
            cwd=REPO, env={**os.environ}, stdout=sink, stderr=subprocess.STDOUT)


async def every_record(topics: list[str]) -> list[bytes]:
    """Every record of ``topics``, aborted ones too (read uncommitted)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False,
                                isolation_level="read_uncommitted")
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        found: list[bytes] = []
        for tp in tps:
            consumer.seek(tp, 0)
            while await consumer.position(tp) < ends[tp]:
                for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                    if record.value is not None:
                        found.append(record.value)
        return found
    finally:
        await consumer.stop()


async def committed_versions(topics: KafkaTopics, aggregate_id: str) -> list[int]:
    tps = [TopicPartition(t, p) for t in topics.event_topics for p in range(PARTITIONS)]
    return [event.version async for _, record in read_records(BOOTSTRAP, tps)
            if (event := decode_event(record.value)).aggregate_id == aggregate_id]


@pytest.mark.parametrize("where", ["prepare", "commit"])
async def test_a_writer_paused_past_its_session_cannot_append_after_its_successor(
    prefix: str, tmp_path: Path, where: str,
) -> None:
    topics = KafkaTopics(prefix)
    output = tmp_path / "zombie.log"
    zombie = start_zombie(prefix, output, where)
    successor: LogWriter | None = None
    try:
        everything = "this worker owns partitions " + str(list(range(PARTITIONS)))
        await until(lambda: everything in output.read_text(), timeout=60,
                    what="the first writer to own every partition")
        aggregate_id = new_id()
        partition = partition_for(aggregate_id, PARTITIONS)
        request = AppendRequest(new_id(), "fencing-test", 0, (agent_event(aggregate_id),))
        producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(topics.commands, request.encode(), partition=partition)
        finally:
            await producer.stop()
        await until(lambda: f"holding at {where}" in output.read_text(), timeout=30,
                    what=f"the first writer to hold at {where}")
        zombie.send_signal(signal.SIGSTOP)  # paused with the request in hand

        successor = LogWriter(topics, BOOTSTRAP, PARTITIONS, session_timeout_s=SESSION_S)
        await successor.start()
        writer = successor

        def appended_by_successor() -> bool:
            state = writer.states.get(partition, {}).get(aggregate_id)
            return state is not None and state.head.version == 1

        async def committed_once() -> bool:
            return await committed_versions(topics, aggregate_id) == [1]

        await until(appended_by_successor, timeout=90,
                    what="the successor to own the partition and append the request")
        await until(committed_once, timeout=30, interval=0.2,
                    what="the successor's transaction to commit")

        zombie.send_signal(signal.SIGCONT)
        zombie.send_signal(signal.SIGUSR1)  # it goes on with what it holds
        exit_code = await asyncio.to_thread(zombie.wait, 60)
        log = output.read_text()
        assert exit_code != 0, log
        assert "the writer's loop ended with ProducerFenced" in log, log
        # the request is in the log once, as read: the paused writer appended nothing
        assert await committed_versions(topics, aggregate_id) == [1]
        logged = [decode_event(v) for v in await every_record(list(topics.event_topics))]
        copies = [e for e in logged if e.aggregate_id == aggregate_id]
        # paused at its commit, its events are in the log, aborted: no reader sees them
        assert len(copies) == (2 if where == "commit" else 1)
        replies = [AppendReply.decode(v) for v in await every_record([topics.replies])]
        assert [r.request_id for r in replies].count(request.request_id) == 1
        # and the successor goes on (after the rebalances the paused writer's return and
        # exit caused, with the partition's state folded again from the log)
        await until(appended_by_successor, timeout=60, what="the successor to own it again")
        assert successor.task is not None and not successor.task.done()
    finally:
        if zombie.poll() is None:
            zombie.send_signal(signal.SIGCONT)
            zombie.kill()
            zombie.wait(10)
        if successor is not None:
            await successor.stop()
