"""Distributed Kasal under a worker's death: two real ``kasal worker`` processes share the
partitions of a real broker; the one that leads, and owns the partition of a running crew,
is SIGKILLed in the middle of the run and of a load of commands. The survivor takes its
partitions (writer, mirror, the run) and the projectors over: the run resumes from its
last completed task and completes, every append request in the topic is appended once,
every acknowledged command's events are in the log exactly once, and the read models
hold each of them once."""

from __future__ import annotations

import asyncio
import collections
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from adapters.kafka.groups import read_records
from adapters.kafka.records import AppendRequest, decode_event
from adapters.kafka.topics import KafkaTopics, partition_for
from commands import messages as m
from commands.context import CommandContext
from commands.errors import StoreUnavailable
from commands.ports import AppendResult
from domain.ids import creating_for, creation_id
from kasal.bootstrap import Kasal, bootstrap
from kasal.settings import Settings
from tests.kafka import BOOTSTRAP, PARTITIONS, WorkerProcess, delete_topics, new_prefix, provision
from tests.pg import create_database, drop_database
from tests.waiting import until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

TENANT = "acme"
TASKS = 10  # 0.3 s each: the kill lands well inside the run even when CI is slow
LOAD = 60  # commands sent while the leader dies


@dataclass
class Deployment:
    env: dict[str, str]
    api: Kasal
    workers: list[WorkerProcess]
    prefix: str


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    database_url = await create_database()
    prefix = new_prefix()
    provision(prefix)
    env = {
        "KASAL_MODE": "distributed", "DATABASE_TYPE": "postgres", "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP, "KASAL_KAFKA_PREFIX": prefix,
        "KASAL_KAFKA_PARTITIONS": str(PARTITIONS), "KASAL_KAFKA_SESSION_TIMEOUT_S": "6",
        "KASAL_VECTOR_SEARCH": "false", "LOG_LEVEL": "INFO",
    }
    workers = [
        WorkerProcess({**os.environ, **env, "KASAL_DATA_DIR": str(tmp_path / name)},
                      tmp_path / f"{name}.log")
        for name in ("first", "second")
    ]
    api: Kasal | None = None
    try:
        workers[0].start()
        assert await asyncio.to_thread(workers[0].leads.wait, 90), workers[0].log.read_text()
        workers[1].start()  # shares the partitions; waits for the processors' lock
        await until(lambda: bool(workers[0].owned and workers[1].owned and sorted(
                        workers[0].owned + workers[1].owned) == list(range(PARTITIONS))),
                    timeout=90, what="the group to settle with both workers")
        settings = Settings(KASAL_DATA_DIR=tmp_path / "api", **env)  # type: ignore[arg-type]
        api = await bootstrap(settings, role="api")
        await api.start()
        yield Deployment(env, api, workers, prefix)
    finally:
        if api is not None:
            await api.stop()
        for worker in workers:
            worker.stop()
        await drop_database(database_url)
        delete_topics(prefix)


async def log_records(prefix: str) -> list[tuple[str, int, int, str, int]]:
    """Every record of the events topics: (topic, partition, offset, event id, version)."""
    tps = [TopicPartition(t, p) for t in KafkaTopics(prefix).event_topics
           for p in range(PARTITIONS)]
    found = []
    async for tp, record in read_records(BOOTSTRAP, tps):
        event = decode_event(record.value)
        found.append((tp.topic, tp.partition, record.offset, event.event_id, event.version))
    return found


async def requested_aggregates(prefix: str) -> set[str]:
    """The aggregates of every append request in the commands topic."""
    tps = [TopicPartition(KafkaTopics(prefix).commands, p) for p in range(PARTITIONS)]
    return {AppendRequest.decode(record.value).aggregate_id
            async for _, record in read_records(BOOTSTRAP, tps)}


async def test_a_killed_leader_hands_over_its_partitions_and_runs(
    deployment: Deployment,
) -> None:
    bus, reads = deployment.api.bus, deployment.api.read_models

    def ctx() -> CommandContext:  # a new command id for every command
        return CommandContext(TENANT, "user:failover-test")
    agent = await bus.dispatch(m.RegisterAgent(
        role="Analyst", goal="Write notes", backstory="Careful.", llm="kasal-test/slow",
    ), ctx())
    crew = await bus.dispatch(m.DefineCrew(
        name="slow", agents=[agent.aggregate_id],
        tasks=[{"name": f"step{i}", "description": f"Note {i} about {{topic}}",
                "expected_output": "a note", "agent": agent.aggregate_id}
               for i in range(TASKS)],
    ), ctx())
    # the run must be on a partition of the worker that will die: choose its command id
    # so that the execution id it derives lands there
    doomed = deployment.workers[0].owned
    assert doomed, "the first worker owns no partition"
    while True:
        request = ctx()
        with creating_for(TENANT, request.command_id):
            if partition_for(str(creation_id("execution")), PARTITIONS) in doomed:
                break
    run = await bus.dispatch(m.RequestExecution(crew_id=crew.aggregate_id,
                                                inputs={"topic": "owls"}), request)

    async def tasks_done() -> int:
        row = (await reads.get_execution(TENANT, run.aggregate_id)).item
        return 0 if row is None else sum(t["status"] == "completed" for t in row["tasks"])

    async def one_done() -> bool:
        return await tasks_done() >= 1

    await until(one_done, timeout=60, what="the first task to complete")

    # a load of commands, and the leader dies in the middle of it
    async def send(i: int) -> AppendResult | Exception:
        try:
            return await bus.dispatch(m.RegisterAgent(
                role=f"Load {i}", goal="g", backstory="b"), CommandContext(TENANT, "user:load"))
        except StoreUnavailable as error:
            return error

    load = [asyncio.create_task(send(i)) for i in range(LOAD)]
    await asyncio.sleep(0)  # the first sends are on their way
    done_at_kill = await tasks_done()
    deployment.workers[0].kill()
    outcomes = await asyncio.gather(*load)
    acknowledged = [o for o in outcomes if isinstance(o, AppendResult)]
    refused = [o for o in outcomes if isinstance(o, StoreUnavailable)]
    print(f"load: sent {LOAD}, acknowledged {len(acknowledged)}, "
          f"failed with a clear error {len(refused)}")
    assert len(acknowledged) + len(refused) == LOAD

    assert await asyncio.to_thread(deployment.workers[1].leads.wait, 60), \
        deployment.workers[1].log.read_text()[-3000:]
    await until(lambda: sorted(deployment.workers[1].owned) == list(range(PARTITIONS)),
                timeout=60, what="the survivor to own every partition")

    async def finished() -> bool:
        row = (await reads.get_execution(TENANT, run.aggregate_id)).item
        return row is not None and row["status"] in ("completed", "failed", "cancelled")

    await until(finished, timeout=120, what="the run to finish on the surviving worker")
    row = (await reads.get_execution(TENANT, run.aggregate_id)).item
    assert row is not None and row["status"] == "completed", (row or {}).get("error")
    assert 1 <= done_at_kill < TASKS, "the leader must die in the middle of the run"

    # the log: every event once, each task completed once, versions gapless per aggregate
    records = await log_records(deployment.prefix)
    ids = collections.Counter(event_id for *_, event_id, _ in records)
    twice = [r for r in records if ids[r[3]] > 1]
    assert twice == [], twice[:10]
    stream = await deployment.api.store.read_stream(run.aggregate_id)
    completed = [e.payload.get("task_name") for e in stream if e.type == "ExecutionTaskCompleted"]
    assert sorted(completed) == sorted(f"step{i}" for i in range(TASKS)), completed
    assert len(stream) == len({e.version for e in stream}) == stream[-1].version

    # no request is lost: every append request in the commands topic (the ones whose
    # client gave up too) is appended by the new owner of its partition
    requested = await requested_aggregates(deployment.prefix)

    async def all_appended() -> bool:
        for aggregate_id in requested:
            if not await deployment.api.store.read_stream(aggregate_id):
                return False
        return True

    await until(all_appended, timeout=60, what="every request in the topic to be appended")

    # the mirror holds exactly the log, each event once
    async def mirror_is_log() -> bool:
        logged = {r[3] for r in await log_records(deployment.prefix)}
        copied = [e.event_id for e in await deployment.api.store.read_all(0, 100_000)]
        return len(copied) == len(set(copied)) and set(copied) == logged

    await until(mirror_is_log, timeout=30, what="the mirror to hold exactly the log")
    records = await log_records(deployment.prefix)
    assert max(collections.Counter(r[3] for r in records).values()) == 1
    mirrored = await deployment.api.store.read_all(0, 100_000)

    # the read models: each acknowledged agent once (plus the crew's own agent)
    await until(lambda: deployment.api.clock.position >= mirrored[-1].position, timeout=30,
                what="the projection to catch up")
    page = await reads.list_agents(TENANT, limit=1000, offset=0)
    names = collections.Counter(item["role"] for item in page.items)
    assert all(n == 1 for n in names.values()), names
    for result in acknowledged:
        assert (await reads.get_agent(TENANT, result.aggregate_id)).item is not None
    print(f"found: {len(page.items) - 1} load agents in the read model ({len(requested)} "
          "aggregates requested in the topic, all appended), "
          f"{len(records)} events in the log, none twice; the run had {done_at_kill} of "
          f"{TASKS} tasks done at the kill and completed on the survivor "
          f"({json.dumps(row['status'])})")
