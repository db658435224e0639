"""Distributed Kasal under a PostgreSQL restart: a real ``kasal worker`` process, a real
broker, and a PostgreSQL cluster of the test's own (``scripts/postgres.sh`` on a free port,
in a directory of its own: the shared test server is never restarted). PostgreSQL goes
down twice while commands are in flight and the SQL projector is working, once by
``pg_ctl stop -m fast`` and once by an immediate shutdown (SIGQUIT to the postmaster: no
checkpoint, crash recovery on the way up), and each time it is started again.

What a restart does, as observed: the worker holds its leader lock on a PostgreSQL
session, so losing that connection ends the worker within seconds ("lost the PostgreSQL
connection holding the leader lock", exit status 1). Its projector's in-process retry
starts ("processor sql failed at position N; retrying") but the process ends first: the
catching up is done by the next worker. A supervisor must start it, and the test is that
supervisor: it waits for the worker to exit on its own (one that does not is killed and
fails the test: no supervisor would restart it), starts PostgreSQL, starts a new worker
(its mirror resumes from its own stored offsets, its projector from its tracked
position) and opens a new client store, as a restarted API process would. The first
client store and an API-style NOTIFY listener stay open throughout and must keep working:
their LISTEN connections are re-established, so an API process needs no restart.

While PostgreSQL is down, a new command fails before it reaches Kafka (the client store
reads the mirror to refuse a duplicate command id). Append requests that had passed that
check when PostgreSQL went away (simulated by a client whose check finds nothing) reach
the writer and are appended to the log while their client fails: the new worker's mirror
must copy them. Once the restarted deployment acknowledges a probe command, every command
that failed is retried with its command id, as the errors tell a client to do, and each
is acknowledged: the ones already in the log with their first append.

Every command that fails while PostgreSQL is away fails with ``StoreUnavailable`` (an
HTTP 503 saying to retry), never with a raw driver error.

The test states its numbers: commands sent, acknowledged at once, failed (by error type),
retried; and at the end every event of the Kafka log once in the mirror, every command's
agent once in the read model, and the projector at the mirror's head."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import asyncpg
import pytest
from aiokafka import TopicPartition

from adapters.eventstore.sql_log import SqlEventLog
from adapters.kafka.client_store import KafkaEventStore
from adapters.kafka.groups import read_records
from adapters.kafka.records import decode_event
from adapters.kafka.topics import KafkaTopics
from adapters.postgres.listen import PgListener
from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from commands.errors import StoreUnavailable
from commands.handlers import HandlerDeps
from commands.ports import AppendResult, CommandRecord
from projections.tracking import PROJECTED_CHANNEL
from tests.kafka import BOOTSTRAP, PARTITIONS, WorkerProcess, delete_topics, new_prefix, provision
from tests.waiting import until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "postgres.sh"
TENANT = "acme"
STOPS = ("fast", "immediate")  # how PostgreSQL goes down: one restart each
BURST = 30  # commands dispatched together; PostgreSQL stops once the first are projected
IN_FLIGHT = 5  # append requests past the client's checks when PostgreSQL goes down
DOWN = 5  # commands dispatched while PostgreSQL is down
PROBE = 1  # dispatched again (same command id) until the restarted deployment acknowledges it
AFTER = 18  # commands dispatched once everything is back (the last one by the first client)
SENT = len(STOPS) * (BURST + IN_FLIGHT + DOWN + PROBE) + AFTER  # 100
EXIT_WAIT_S = 30.0  # a worker that lost PostgreSQL must have exited by then
# the client's waits (production: 15 s each), for a writer's answer and for the mirror: a
# request to a worker that is going away, or a client whose LISTEN connection is gone,
# waits until then; 5 s, so that the test does not wait for long
REQUEST_TIMEOUT_S = 5.0
MIRROR_TIMEOUT_S = 5.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PrivatePostgres:
    """A cluster of this test's own, driven by ``scripts/postgres.sh``."""

    directory: Path
    port: int

    def _script(self, command: str) -> str:
        env = {**os.environ, "KASAL_PG_DIR": str(self.directory),
               "KASAL_PG_PORT": str(self.port)}
        done = subprocess.run(["bash", str(SCRIPT), command], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, f"postgres.sh {command} failed:\n{done.stderr}"
        lines = done.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def up(self) -> str:
        """Start it (initialised the first time); returns the database's URL."""
        return self._script("up")

    def stop_fast(self) -> None:
        self._script("down")  # pg_ctl stop -m fast: sessions are terminated, then a checkpoint

    def stop_immediately(self) -> None:
        """An immediate shutdown, no checkpoint: SIGQUIT to the postmaster."""
        pid = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGQUIT)

    def stopped(self) -> bool:
        return not (self.directory / "data" / "postmaster.pid").exists()

    def destroy(self) -> None:
        self._script("destroy")


class InFlightMirror(SqlEventLog):
    """The mirror as a client saw it just before PostgreSQL went away: the duplicate
    command check has passed, and the append request goes on to the writer."""

    async def find_command(self, tenant_id: str, command_id: str) -> CommandRecord | None:
        return None


@dataclass
class Deployment:
    pg: PrivatePostgres
    url: str
    prefix: str
    worker: WorkerProcess
    clients: list[KafkaEventStore] = field(default_factory=list)

    async def client(self, mirror: SqlEventLog | None = None) -> CommandBus:
        """A new client store (what an API process opens at start) and its command bus."""
        store = KafkaEventStore(
            BOOTSTRAP, mirror or SqlEventLog(self.url), topics=KafkaTopics(self.prefix),
            postgres_dsn=self.url, request_timeout=REQUEST_TIMEOUT_S,
            mirror_timeout=MIRROR_TIMEOUT_S,
        )
        self.clients.append(store)
        await store.initialize()
        return CommandBus(store, HandlerDeps())

    async def close(self) -> None:
        for store in self.clients:
            await store.close()

    async def fetch(self, sql: str) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.url)
        try:
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    async def progress(self) -> tuple[int, int]:
        """The mirror's head and the SQL projector's tracked position (read first)."""
        conn = await asyncpg.connect(self.url)
        try:
            projected = 0
            if await conn.fetchval("SELECT to_regclass('projection_tracking') IS NOT NULL"):
                projected = await conn.fetchval(
                    "SELECT coalesce(max(position), 0) FROM projection_tracking "
                    "WHERE name = 'sql'")
            head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM kasal_events")
            return int(head), int(projected)
        finally:
            await conn.close()

    async def mirrored(self) -> collections.Counter[str]:
        return collections.Counter(
            row["event_id"] for row in await self.fetch("SELECT event_id FROM kasal_events"))


def cluster_parent() -> Path:
    """A directory for the cluster: its owner (the 'postgres' user when the tests run as
    root) must reach it, and pytest's tmp_path is private to the user running the tests."""
    base = Path(tempfile.mkdtemp(prefix="kasal-pg-restart-"))
    base.chmod(0o755)
    return base


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    base = cluster_parent()
    pg = PrivatePostgres(base / "pg", free_port())
    prefix = new_prefix()
    async with contextlib.AsyncExitStack() as cleanup:  # undone in reverse, even on failure
        cleanup.callback(shutil.rmtree, base, ignore_errors=True)
        cleanup.push_async_callback(asyncio.to_thread, pg.destroy)  # stopped, then deleted
        url = await asyncio.to_thread(pg.up)
        provision(prefix)
        cleanup.callback(delete_topics, prefix)
        env = {
            **os.environ,
            "KASAL_MODE": "distributed", "DATABASE_TYPE": "postgres", "DATABASE_URL": url,
            "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP, "KASAL_KAFKA_PREFIX": prefix,
            "KASAL_KAFKA_PARTITIONS": str(PARTITIONS), "KASAL_KAFKA_SESSION_TIMEOUT_S": "6",
            "KASAL_VECTOR_SEARCH": "false", "LOG_LEVEL": "INFO",
            "KASAL_DATA_DIR": str(tmp_path / "worker"),
        }
        worker = WorkerProcess(env, tmp_path / "worker.log")
        cleanup.callback(worker.stop)
        worker.start()
        assert await asyncio.to_thread(worker.leads.wait, 90), worker.output()[-3000:]
        opened = Deployment(pg, url, prefix, worker)
        cleanup.push_async_callback(opened.close)
        yield opened


class LogEvent(NamedTuple):
    event_id: str
    type: str
    aggregate_id: str
    command_id: str
    partition: int
    offset: int


async def log_events(prefix: str) -> list[LogEvent]:
    """Every event of the Kafka log (read from offset zero of every partition)."""
    tps = [TopicPartition(t, p) for t in KafkaTopics(prefix).event_topics
           for p in range(PARTITIONS)]
    found = []
    async for tp, record in read_records(BOOTSTRAP, tps):
        event = decode_event(record.value)
        found.append(LogEvent(event.event_id, event.type, event.aggregate_id,
                              event.command_id, tp.partition, record.offset))
    return found


async def assert_mirror_holds_log(d: Deployment) -> list[LogEvent]:
    """Every event of the log once in the mirror, and nothing else; returns the log."""
    events = await log_events(d.prefix)
    ids = collections.Counter(event.event_id for event in events)
    assert [e for e in events if ids[e.event_id] > 1] == [], "events twice in the log"

    async def holds() -> bool:
        return await d.mirrored() == ids

    try:
        await until(holds, timeout=20, what="the mirror to hold the log")
    except AssertionError:
        mirrored = await d.mirrored()
        skipped = [f"p{e.partition}@{e.offset}" for e in events if e.event_id not in mirrored]
        offsets = await d.fetch("SELECT * FROM kasal_log_offsets ORDER BY 1, 2")
        raise AssertionError(
            f"{len(skipped)} of the {len(events)} events in the Kafka log never reached the "
            f"mirror ({', '.join(skipped)}); {sum(n > 1 for n in mirrored.values())} twice, "
            f"{len(set(mirrored) - set(ids))} not in the log; the mirror's next offsets: "
            f"{[(r['topic'], r['partition'], r['next_offset']) for r in offsets]}"
        ) from None
    return events


async def test_postgres_restarts_during_projection_lose_and_double_nothing(
    deployment: Deployment,
) -> None:
    d = deployment
    started = time.monotonic()
    commands: dict[int, tuple[m.RegisterAgent, CommandContext]] = {}
    outcomes: dict[int, AppendResult | Exception] = {}

    async def send(bus: CommandBus, i: int) -> bool:
        """Dispatch command ``i`` (again, with its command id, if it was sent before)."""
        if i not in commands:  # a new command id for every command
            commands[i] = (m.RegisterAgent(role=f"Load {i}", goal="Take notes",
                                           backstory="Careful."),
                           CommandContext(TENANT, "user:pg-restart"))
        try:
            outcomes[i] = await bus.dispatch(*commands[i])
        except Exception as error:  # counted by type; retried with its command id below
            outcomes[i] = error
        return isinstance(outcomes[i], AppendResult)

    def acknowledged(indices: range) -> int:
        return sum(isinstance(outcomes.get(i), AppendResult) for i in indices)

    async def acknowledge(bus: CommandBus, i: int) -> int:
        """Dispatch command ``i`` until it is acknowledged; returns the attempts."""
        attempts = 0

        async def answered() -> bool:
            nonlocal attempts
            attempts += 1
            return await send(bus, i)

        await until(answered, timeout=90, interval=0.5,
                    what="the restarted deployment to acknowledge a command")
        return attempts

    async def projecting(before: int) -> bool:
        _, projected = await d.progress()
        return projected > before

    # kept open throughout: an API process's NOTIFY listener (``bootstrap(role="api")``
    # opens one) and a client store; both record when PostgreSQL notifies them
    projected_at: list[float] = []

    def heard(payload: str) -> None:
        if payload:  # "<projection>:<position>" (an empty one: the listener reconnected)
            projected_at.append(time.monotonic())

    api_listener = PgListener(d.url)
    await api_listener.listen(PROJECTED_CHANNEL, heard)
    first_bus = bus = await d.client()
    mirrored_at: list[float] = []
    d.clients[0].subscribe(lambda: mirrored_at.append(time.monotonic()))
    restarted_at: list[float] = []
    pending: list[asyncio.Task[bool]] = []
    probes: dict[int, int] = {}  # command -> attempts until acknowledged
    hung: list[str] = []
    next_i = 0
    back_at = started
    try:
        for how in STOPS:
            burst = range(next_i, next_i + BURST)
            in_flight = range(burst.stop, burst.stop + IN_FLIGHT)
            down = range(in_flight.stop, in_flight.stop + DOWN)
            probe = down.stop
            next_i = probe + PROBE  # the probe: one command
            in_flight_bus = await d.client(InFlightMirror(d.url))
            _, before = await d.progress()
            pending += [asyncio.create_task(send(bus, i)) for i in burst]
            await until(partial(projecting, before), timeout=60, interval=0.05,
                        what="the projector to project the burst's first events")
            head, projected = await d.progress()
            stopping = time.monotonic()
            if how == "fast":
                await asyncio.to_thread(d.pg.stop_fast)
            else:
                d.pg.stop_immediately()
                await until(d.pg.stopped, timeout=30, what="the postmaster to exit")
            await asyncio.gather(*(send(in_flight_bus, i) for i in in_flight))
            await asyncio.gather(*(send(bus, i) for i in down))
            assert acknowledged(range(in_flight.start, down.stop)) == 0

            # the supervisor: the worker exits, PostgreSQL comes back, a new worker starts
            try:
                await until(d.worker.exited, timeout=EXIT_WAIT_S,
                            what="the worker to exit after losing PostgreSQL")
            except AssertionError:
                hung.append(how)
                d.worker.kill()  # as a liveness probe would
                await until(d.worker.exited, timeout=10, what="the killed worker's output")
            exit_s = d.worker.ended_at - stopping
            assert d.worker.process is not None
            status = d.worker.process.returncode
            lost_lock = "lost the PostgreSQL connection holding the leader lock" in \
                d.worker.output()
            await asyncio.to_thread(d.pg.up)
            back_at = time.monotonic()
            restarted_at.append(back_at)
            d.worker.start()
            bus = await d.client()  # and the API process starts again
            assert await asyncio.to_thread(d.worker.leads.wait, 90), d.worker.output()[-3000:]
            leads_s = time.monotonic() - back_at
            probes[probe] = await acknowledge(bus, probe)
            print(
                f"{how} stop, with the mirror's head at {head} and the projection at "
                f"{projected}: the worker {'HUNG (killed)' if how in hung else 'exited'} "
                f"{exit_s:.1f} s later (status {status}, leader lock lost: {lost_lock}); once "
                f"PostgreSQL was back, a new worker led after {leads_s:.1f} s and the "
                f"deployment acknowledged a command after {time.monotonic() - back_at:.1f} s "
                f"({probes[probe]} attempts)"
            )

        after = range(next_i, next_i + AFTER)
        pending += [asyncio.create_task(send(bus, i)) for i in after[:-1]]
        probing = time.monotonic()
        await send(first_bus, after[-1])  # the client store opened before the restarts
        stale_s = time.monotonic() - probing
        await asyncio.gather(*pending)
        assert len(outcomes) == SENT
        assert acknowledged(after[:-1]) == AFTER - 1, {
            i: repr(outcomes[i]) for i in after[:-1] if not isinstance(outcomes[i], AppendResult)
        }
        first_try = collections.Counter(
            "acknowledged" if isinstance(o, AppendResult)
            else "StoreUnavailable" if isinstance(o, StoreUnavailable)
            else f"{type(o).__module__}.{type(o).__name__}"
            for i, o in outcomes.items() if i not in probes
        )
        failures = ", ".join(f"{n} {kind}" for kind, n in sorted(first_try.items())
                             if kind != "acknowledged")
        # every failure is the store's clear "unavailable, retry" (an HTTP 503), never a
        # raw driver error (an HTTP 500)
        assert set(first_try) <= {"acknowledged", "StoreUnavailable"}, first_try
        print(f"commands: sent {SENT}; {len(probes)} probes, acknowledged after "
              f"{' and '.join(map(str, probes.values()))} attempts; of the other "
              f"{SENT - len(probes)}, acknowledged at once {first_try['acknowledged']}, failed "
              f"{SENT - len(probes) - first_try['acknowledged']} ({failures})")

        # what reached the log is in the mirror, including the in-flight requests' events
        logged = {e.command_id for e in await assert_mirror_holds_log(d)}

        # every command that failed is retried with its command id: each is appended once
        failed = [i for i, o in outcomes.items() if not isinstance(o, AppendResult)]
        appended = sum(commands[i][1].command_id in logged for i in failed)
        retried = await asyncio.gather(*(bus.dispatch(*commands[i]) for i in failed),
                                       return_exceptions=True)
        refused = {i: repr(r) for i, r in zip(failed, retried, strict=True)
                   if not isinstance(r, AppendResult)}
        assert refused == {}, f"retries that failed: {refused}"
        results = [o for o in outcomes.values() if isinstance(o, AppendResult)]
        results += [r for r in retried if isinstance(r, AppendResult)]

        # the log: every event once; the mirror: exactly the log
        events = await assert_mirror_holds_log(d)
        registered = {e.aggregate_id for e in events if e.type == "AgentRegistered"}
        assert registered == {r.aggregate_id for r in results}
        assert len(registered) == len(events) == SENT

        # the read model: every agent once, the projector at the mirror's head
        async def caught_up() -> bool:
            head, projected = await d.progress()
            return head == projected

        await until(caught_up, timeout=30, interval=0.05,
                    what="the projection to reach the mirror's head")
        agents = await d.fetch("SELECT id, role FROM agents WHERE tenant_id = 'acme'")
        assert collections.Counter(row["role"] for row in agents) == \
            collections.Counter(f"Load {i}" for i in range(SENT))
        assert {row["id"] for row in agents} == registered
        head, count, audited = (await d.fetch(
            "SELECT (SELECT max(position) FROM kasal_events), (SELECT count(*) FROM kasal_events),"
            " (SELECT count(*) FROM audit_log)"))[0]
        # each event projected once (positions come from a sequence: a crash, or a mirror
        # batch rolled back, leaves gaps between them)
        assert count == audited == len(events)

        def before_after(times: list[float]) -> str:
            later = sum(t > restarted_at[0] for t in times)
            return f"{len(times) - later} before the first restart and {later} after it"

        print(f"retried with the same command id: {len(failed)}, all acknowledged ({appended} "
              "of them had been appended to the log already: answered with that append)")
        print(f"found: {len(events)} events in the Kafka log, none twice, each once in the "
              f"mirror (head at position {head}); {len(agents)} agents in the read model, each "
              "once; the projector at the mirror's head")
        print(f"API side, not restarted: the first client store was woken by the mirror "
              f"{before_after(mirrored_at)}, and answered a command after {stale_s:.1f} s "
              f"with {type(outcomes[after[-1]]).__name__}; the NOTIFY listener heard "
              f"projections {before_after(projected_at)}")
        print(f"took {time.monotonic() - started:.1f} s")
        # the API side lives through the restarts: its LISTEN connections come back
        assert isinstance(outcomes[after[-1]], AppendResult), outcomes[after[-1]]
        assert sum(t > restarted_at[0] for t in mirrored_at) > 0, "the client store went deaf"
        assert sum(t > restarted_at[0] for t in projected_at) > 0, "the NOTIFY listener went deaf"
        assert hung == [], (
            f"the worker did not exit within {EXIT_WAIT_S:g} s of losing PostgreSQL "
            f"({', '.join(hung)} stop), so no supervisor would start it again (if it now "
            f"survives a restart, this test must learn it); see the end of {d.worker.log}"
        )
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await api_listener.close()
