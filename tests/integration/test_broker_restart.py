"""The Kafka broker dies under load: a private single-node broker (``scripts/kafka.sh`` on
free ports, its data in the test's directory) is SIGKILLed while a load of commands runs
against a log worker (the partitions' writer and the log mirror, in-process) and a client
store, then started again on the same ports and data. The worker and the client reconnect
on their own (nothing is restarted but the broker).

Every acknowledged command's events are in the log exactly once, and in the mirror; every
command that could not be confirmed failed to its client with ``StoreUnavailable`` and a
message saying the outcome is unknown and to retry with the same key (or, when only the
mirror was late, that the events are durable). Such a command may have been appended
anyway (its request reached the topic); a retry with the same command id then finds it,
or appends it once. The test prints its numbers: commands sent,
acknowledged, failed with a clear error, appended anyway, found in the log.

Nothing is lost on the way either: every append request that reached the commands topic
(also those whose client had given up) is handled by the writer, and the mirror holds
exactly the log.

The shared test broker is never touched: only PostgreSQL (one fresh schema) is shared."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from adapters.kafka.admin import KafkaTopicAdmin, kasal_topics
from adapters.kafka.client_store import KafkaEventStore
from adapters.kafka.groups import read_records
from adapters.kafka.log_worker import LogWorker, WorkerConfig
from adapters.kafka.mirror_store import MirrorStore
from adapters.kafka.records import AppendRequest, command_from_headers, decode_event
from adapters.kafka.topics import KafkaTopics
from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from commands.errors import StoreUnavailable
from commands.ports import AppendResult
from tests.kafka import new_prefix
from tests.pg import POSTGRES_URL, create_schema, drop_schema
from tests.waiting import until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 2
TENANT = "acme"
LOAD = 150  # commands sent
CONCURRENCY = 6  # clients sending them at once
KILL_AFTER = 20  # the broker dies once this many are acknowledged
REQUEST_TIMEOUT = 4.0  # shorter than the outage: commands in flight fail, they do not hang
MIRROR_TIMEOUT = 8.0
# what a client reads when the outcome is unknown (the request may still be appended) ...
UNKNOWN = "the outcome is unknown; retry with the same Idempotency-Key"
# ... and when the events are durable but the mirror did not copy them in time
DURABLE = "the events are durable in the log"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def running(pid: int) -> bool:
    """Alive and not a zombie (the broker is not our child: nobody may reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@dataclass
class Broker:
    """A private broker run by ``scripts/kafka.sh``; its data survive a kill."""

    directory: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def script(self, action: str) -> None:
        env = {**os.environ, "KASAL_KAFKA_DIR": str(self.directory),
               "KASAL_KAFKA_PORT": str(self.port),
               "KASAL_KAFKA_CONTROLLER_PORT": str(self.controller_port),
               "KASAL_KAFKA_START_TIMEOUT": "60", "KASAL_PYTHON": sys.executable}
        process = await asyncio.create_subprocess_exec(  # the loop keeps running meanwhile
            "bash", "scripts/kafka.sh", action, cwd=REPO, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, f"kafka.sh {action} failed:\n{output.decode()}"

    def pid(self) -> int | None:
        try:
            return int((self.directory / "kafka.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def port_open(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def kill_now(self) -> int | None:
        """SIGKILL the broker's JVM (no flush, no controlled shutdown); its pid, if it ran."""
        pid = self.pid()
        if pid is not None and running(pid):
            os.kill(pid, signal.SIGKILL)
            return pid
        return None

    async def kill(self) -> None:
        pid = self.kill_now()
        assert pid is not None, "the private broker is not running"
        await until(lambda: not running(pid) and not self.port_open(), timeout=30,
                    what=f"the broker (pid {pid}) to die")


@dataclass
class Deployment:
    broker: Broker
    prefix: str
    worker: LogWorker
    store: KafkaEventStore

    @property
    def topics(self) -> KafkaTopics:
        return KafkaTopics(self.prefix)


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    broker = Broker(tmp_path / "kafka")
    schema = await create_schema()
    prefix = new_prefix()
    worker: LogWorker | None = None
    store: KafkaEventStore | None = None
    try:
        await broker.script("up")
        with KafkaTopicAdmin(broker.bootstrap, bootstrap_timeout_ms=10_000) as admin:
            admin.ensure_topics(kasal_topics(prefix=prefix, partitions=PARTITIONS))
        worker = LogWorker(WorkerConfig(broker.bootstrap, POSTGRES_URL, PARTITIONS, prefix,
                                        schema, session_timeout_s=6))
        await worker.start()
        store = KafkaEventStore(
            broker.bootstrap, MirrorStore(POSTGRES_URL, schema=schema),
            topics=KafkaTopics(prefix), postgres_dsn=POSTGRES_URL,
            request_timeout=REQUEST_TIMEOUT, mirror_timeout=MIRROR_TIMEOUT,
        )
        await store.initialize()
        yield Deployment(broker, prefix, worker, store)
    finally:
        try:
            if store is not None:
                async with asyncio.timeout(30):
                    await store.close()
            if worker is not None:
                async with asyncio.timeout(60):
                    await worker.stop()
        finally:
            broker.kill_now()  # a throw-away broker: its data go with tmp_path
            await drop_schema(schema)


# --- reading the private broker ------------------------------------------------------------
@dataclass
class Record:
    """A record of the commands topic or of an events topic."""

    partition: int
    offset: int
    value: bytes
    headers: list[tuple[str, bytes]]


async def read_topics(bootstrap: str, topics: list[str]) -> list[Record]:
    """Every record of ``topics`` from offset zero."""
    tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
    found = []
    async for tp, record in read_records(bootstrap, tps):
        assert record.value is not None
        found.append(Record(tp.partition, record.offset, record.value, list(record.headers)))
    return found


@dataclass
class Logged:
    """An event in the log; the record of a command's last event names the command."""

    topic: str
    partition: int
    offset: int
    event_id: str
    aggregate_id: str
    command_id: str | None


async def log_events(d: Deployment) -> list[Logged]:
    found = []
    for topic in d.topics.event_topics:
        for record in await read_topics(d.broker.bootstrap, [topic]):
            event = decode_event(record.value)
            command = command_from_headers(record.headers)
            found.append(Logged(topic, record.partition, record.offset, event.event_id,
                                event.aggregate_id,
                                None if command is None else command.command_id))
    return found


async def requested_commands(d: Deployment) -> list[str]:
    """The command id of every append request in the commands topic (retries included)."""
    found = []
    for record in await read_topics(d.broker.bootstrap, [d.topics.commands]):
        request = AppendRequest.decode(record.value)
        assert request.command is not None
        found.append(request.command.command_id)
    return found


async def end_offsets(d: Deployment, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=d.broker.bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


async def writer_consumed_everything(d: Deployment) -> bool:
    """The writers' group has committed the end of every commands partition."""
    ends = await end_offsets(d, [d.topics.commands])
    admin = AIOKafkaAdminClient(bootstrap_servers=d.broker.bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(f"{d.prefix}-writers",
                                                            partitions=list(ends))
    finally:
        await admin.close()
    return all(tp in committed and committed[tp].offset >= end for tp, end in ends.items())


async def mirror_copied_everything(d: Deployment) -> bool:
    """The mirror's stored next offset of every events partition is past the partition's
    last committed event (transactions' markers take offsets too, and hold no event)."""
    last: dict[tuple[str, int], int] = {}
    for topic in d.topics.event_topics:
        for record in await read_topics(d.broker.bootstrap, [topic]):
            last[(topic, record.partition)] = record.offset
    copied = await d.store.mirror.log_offsets()
    return all(copied.get(key, 0) > offset for key, offset in last.items())


# --- the load --------------------------------------------------------------------------------
@dataclass
class Outcome:
    index: int
    ctx: CommandContext  # a new command id per command; its retry reuses it
    result: AppendResult | None = None  # acknowledged by the first attempt ...
    error: Exception | None = None  # ... or the first attempt's error
    sent: float = 0.0  # when the first attempt began (loop time)
    retried: AppendResult | None = None  # the retry's result, after a failure


def command(i: int) -> m.RegisterAgent:
    return m.RegisterAgent(role=f"Load {i}", goal="Find the facts",
                           backstory="A careful analyst.", tools=["calculator"])


async def test_every_acknowledged_command_survives_a_broker_restart_once(
    deployment: Deployment,
) -> None:
    d = deployment
    loop = asyncio.get_running_loop()
    bus = CommandBus(d.store)

    # the worker holds its partitions and the mirror runs: a first command goes through
    warm = CommandContext(TENANT, "user:broker-restart")

    async def warmed_up() -> bool:
        try:
            await bus.dispatch(command(-1), warm)
        except StoreUnavailable:
            return False
        return True

    await until(warmed_up, timeout=60, what="a first command to be acknowledged")

    # the load: CONCURRENCY clients send LOAD commands; the broker dies in the middle
    outcomes = [Outcome(i, CommandContext(TENANT, "user:broker-restart")) for i in range(LOAD)]
    queue = iter(outcomes)

    async def client() -> None:
        for outcome in queue:
            outcome.sent = loop.time()
            try:
                outcome.result = await bus.dispatch(command(outcome.index), outcome.ctx)
            except Exception as error:  # judged below: only StoreUnavailable is fine
                outcome.error = error

    def acknowledged() -> int:
        return sum(o.result is not None for o in outcomes)

    load = asyncio.gather(*(client() for _ in range(CONCURRENCY)))
    await until(lambda: acknowledged() >= KILL_AFTER, timeout=60,
                what=f"{KILL_AFTER} commands to be acknowledged")
    acknowledged_at_kill = acknowledged()
    killed_at = loop.time()
    await d.broker.kill()
    await d.broker.script("up")  # same ports, same data
    back_at = loop.time()
    await until(load.done, timeout=150, what="the load to finish")
    load.result()

    ok = [o for o in outcomes if o.result is not None]
    failed = [o for o in outcomes if o.error is not None]
    after_kill = [o for o in ok if o.sent > killed_at]  # went through the restarted broker
    print(f"\nload: sent {LOAD}, acknowledged {len(ok)} ({acknowledged_at_kill} before the "
          f"broker was killed, {len(after_kill)} of the commands sent after the kill), "
          f"failed with a clear error {len(failed)} "
          f"({sum(UNKNOWN in str(o.error) for o in failed)} 'outcome unknown', "
          f"{sum(DURABLE in str(o.error) for o in failed)} 'durable, not mirrored in time'); "
          f"{back_at - killed_at:.1f} s from the SIGKILL to 'kafka.sh up' returning")
    assert len(ok) + len(failed) == LOAD
    unexpected = [o.error for o in failed if not isinstance(o.error, StoreUnavailable)]
    assert unexpected == [], [f"{type(e).__name__}: {e}" for e in unexpected]
    unclear = [str(o.error) for o in failed
               if UNKNOWN not in str(o.error) and DURABLE not in str(o.error)]
    assert unclear == [], unclear
    assert acknowledged_at_kill < LOAD, "the broker must die while the load runs"
    assert after_kill, "the worker and the client must serve commands again once the broker is back"

    # settle: the client's last requests are out, the writer has consumed the whole commands
    # topic, and the mirror has read every events partition to its end
    assert d.store.producer is not None
    async with asyncio.timeout(30):
        await d.store.producer.flush()
    await until(lambda: writer_consumed_everything(d), timeout=60, interval=0.2,
                what="the writer to consume the whole commands topic")
    await until(lambda: mirror_copied_everything(d), timeout=60, interval=0.2,
                what="the mirror to read the whole log")

    # the log: no event twice; each acknowledged command's event exactly once, mirrored
    logged = await log_events(d)
    ids = collections.Counter(e.event_id for e in logged)
    twice = [e for e in logged if ids[e.event_id] > 1]
    assert twice == [], twice[:10]
    by_command = collections.Counter(e.command_id for e in logged if e.command_id)
    by_aggregate = collections.Counter(e.aggregate_id for e in logged)
    assert max(by_command.values()) == 1
    for outcome in ok:
        assert outcome.result is not None
        assert by_command[outcome.ctx.command_id] == 1, outcome
        assert by_aggregate[outcome.result.aggregate_id] == outcome.result.version == 1
        mirrored = await d.store.read_stream(outcome.result.aggregate_id)
        assert [e.event_id for e in mirrored] == [
            e.event_id for e in logged if e.aggregate_id == outcome.result.aggregate_id]
    appended_anyway = [o for o in failed if by_command[o.ctx.command_id] == 1]
    # nothing is lost on the way: every request in the topic was handled (appended, or found
    # to be a duplicate), and the mirror holds exactly the log
    never_appended = set(await requested_commands(d)) - set(by_command)
    assert never_appended == set(), f"{len(never_appended)} requests skipped by the writer"
    mirrored_ids = [e.event_id for e in await d.store.read_all(0, 100_000)]
    assert sorted(mirrored_ids) == sorted(ids), \
        [f"{e.topic}/{e.partition}@{e.offset}" for e in logged if e.event_id not in mirrored_ids]
    print(f"found: {len(ok)} of {len(ok)} acknowledged commands in the log exactly once and "
          f"in the mirror; {len(appended_anyway)} of the {len(failed)} failed commands were "
          f"appended anyway (once each); {len(logged)} events in the log, none twice, "
          "the mirror holds each once")

    # the advice the failed clients read: a retry with the same command id finds the first
    # attempt's result, or appends once
    async def retried() -> bool:
        for outcome in failed:
            if outcome.retried is None:
                try:
                    outcome.retried = await bus.dispatch(command(outcome.index), outcome.ctx)
                except StoreUnavailable:
                    return False
        return True

    await until(retried, timeout=60, interval=0.2,
                what="the failed commands' retries to be acknowledged")
    async with asyncio.timeout(30):
        await d.store.producer.flush()
    logged = await log_events(d)
    assert len({e.event_id for e in logged}) == len(logged), "an event twice in the log"
    by_command = collections.Counter(e.command_id for e in logged if e.command_id)
    for outcome in failed:  # appended once: by the first attempt or by the retry
        assert outcome.retried is not None
        assert by_command[outcome.ctx.command_id] == 1, outcome
        assert [e.aggregate_id for e in logged if e.command_id == outcome.ctx.command_id] \
            == [outcome.retried.aggregate_id]
    assert len(logged) == LOAD + 1  # the load and the warm-up command: one event each
    found = sum(by_command[o.ctx.command_id] == 1 for o in outcomes)
    print(f"retried: {len(failed)} of {len(failed)} failed commands acknowledged on retry with "
          f"the same id; found: {found} of {LOAD} commands in the log exactly once, "
          f"{len(logged)} events, none twice")
