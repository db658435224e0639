"""Distributed benchmark: Kasal's command bus over the Kafka event store, against raw aiokafka.

Run from the repo root, with the local services up (``make services-up``)::

    .venv/bin/python bench/distributed.py [--commands N] [--concurrency C] [--partitions P]

Everything runs in one process on a private deployment: a fresh topic prefix on the broker
(``KASAL_TEST_KAFKA_BOOTSTRAP``, default 127.0.0.1:59092) with P partitions (default 6), a
fresh schema in PostgreSQL (``KASAL_TEST_POSTGRES_URL``) for the log mirror and the read
models, and an in-process log worker (the single writer of each partition and the log
mirror). The Kasal figures and the baseline share the broker, the machine and the process.
It measures and prints; it never asserts a time. The last line of output is one JSON object
with every figure. The topics and the schema are deleted at the end.

1. ``CommandBus.dispatch`` of N ``RegisterAgent`` commands on ``KafkaEventStore``:
   sequentially, then from C concurrent asyncio tasks sharing the bus. A dispatch returns
   once the writer has produced the event (``acks=all``) and answered, AND the log mirror
   has copied it into PostgreSQL: the latency is that whole round trip. No projector runs
   during these two phases.
2. Projection: an ``InProcessRuntime`` with a ``SqlProjector`` (tailing the mirror through
   ``read_all``, woken by ``bus.subscribe(runtime.notify)``) first catches up with the events
   of phase 1 (events/s), then N/4 more commands are dispatched sequentially and N/4 from C
   tasks while it runs. For every one of those commands: the time from the dispatch's RETURN
   until the projector's tracked position (``on_progress``) reaches the returned position
   (0 when it already had at return), and the same from the dispatch's START.
3. The baseline: one ``AIOKafkaProducer(acks="all", enable_idempotence=True, linger_ms=0)``
   (Kasal's client settings) sending N records of the size of one Kasal event record (the
   encoded event, its command header, a uuid key) to a scratch topic ``<prefix>.bench-raw``
   with P partitions: ``send_and_wait`` one at a time, from C concurrent tasks, and all N
   pipelined (futures gathered).
4. HTTP on its own distributed deployment (a fresh topic prefix and PostgreSQL database, an
   in-process ``kasal worker`` running the projectors, the API's Kasal served by uvicorn over
   TCP): N/4 ``POST /api/v1/agents`` sequentially on one keep-alive connection and N/4 from C
   tasks (the 201 means the events are durable in Kafka and mirrored), and for every 10th the
   time from sending the POST until ``GET /api/v1/agents/{id}?min_position=`` answers 200.
"""

from __future__ import annotations

from adapters.crewai.offline_env import apply as stay_offline

stay_offline()  # before anything imports crewai or litellm

import argparse
import asyncio
import bisect
import json
import logging
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from aiokafka import AIOKafkaProducer
from figures import (
    ACTOR,
    TENANT,
    VISIBLE_DEADLINE_S,
    VISIBLE_EVERY,
    WARMUP,
    Figures,
    agent_body,
    console,
    header,
    machine,
    percentile_ms,
    print_results,
    timed_concurrent,
    timed_sequential,
)
from sqlalchemy.engine import make_url

from adapters.eventstore.sql_log import SqlEventLog
from adapters.kafka.admin import KafkaTopicAdmin, TopicSpec, kasal_topics
from adapters.kafka.client_store import KafkaEventStore
from adapters.kafka.log_worker import LogWorker, WorkerConfig
from adapters.kafka.records import AppendRequest, command_header, encode_event
from adapters.kafka.topics import KafkaTopics
from adapters.sql.engines import make_engine
from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from commands.errors import StoreUnavailable
from commands.ports import AppendResult, CommandRecord
from domain.api_key import generate_key, hash_key, key_prefix
from domain.envelope import NewEvent
from domain.ids import new_id
from kasal.bootstrap import bootstrap
from kasal.settings import Settings
from kasal.web import build_app
from kasal.worker import run_worker
from projections.sql_projector import SqlProjector
from streams.runtime import InProcessRuntime

BOOTSTRAP = os.environ.get("KASAL_TEST_KAFKA_BOOTSTRAP") or "127.0.0.1:59092"
POSTGRES_URL = (
    os.environ.get("KASAL_TEST_POSTGRES_URL")
    or "postgresql://kasal:kasal@127.0.0.1:55432/kasal_test"
)
PROJECTED_DEADLINE_S = 60.0

# --- the private deployment -------------------------------------------------------------
def plain_postgres_url(url: str) -> str:
    """The URL for a raw asyncpg connection (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def postgres_execute(sql: str) -> str:
    conn = await asyncpg.connect(plain_postgres_url(POSTGRES_URL))
    try:
        await conn.execute(sql)
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def delete_topics(prefix: str) -> list[str]:
    """The deployment's topics."""
    with KafkaTopicAdmin(BOOTSTRAP) as admin:
        doomed = sorted(t for t in admin.list_topics() if t.startswith(prefix))
        admin.delete_topics(doomed)
    return doomed


@dataclass
class Deployment:
    prefix: str
    schema: str
    partitions: int
    worker: LogWorker | None = None
    store: KafkaEventStore | None = None
    startup: dict[str, float] = field(default_factory=dict)


def client_store(prefix: str, schema: str) -> KafkaEventStore:
    return KafkaEventStore(
        BOOTSTRAP, SqlEventLog(POSTGRES_URL, schema=schema), topics=KafkaTopics(prefix),
        postgres_dsn=POSTGRES_URL,
    )


async def open_deployment(deployment: Deployment) -> None:
    t0 = time.perf_counter()
    with KafkaTopicAdmin(BOOTSTRAP) as admin:
        admin.ensure_topics(
            kasal_topics(prefix=deployment.prefix, partitions=deployment.partitions)
        )
    t1 = time.perf_counter()
    deployment.worker = LogWorker(
        WorkerConfig(BOOTSTRAP, POSTGRES_URL, deployment.partitions, deployment.prefix,
                     deployment.schema)
    )
    await deployment.worker.start()
    t2 = time.perf_counter()
    deployment.store = client_store(deployment.prefix, deployment.schema)
    await deployment.store.initialize()
    t3 = time.perf_counter()
    deployment.startup.update(
        provision_s=round(t1 - t0, 3), worker_start_s=round(t2 - t1, 3),
        store_init_s=round(t3 - t2, 3),
    )


async def close_deployment(deployment: Deployment) -> None:
    try:
        if deployment.store is not None:
            await deployment.store.close()
    finally:
        if deployment.worker is not None:
            await deployment.worker.stop()


# --- 1. the command bus -----------------------------------------------------------------
async def first_dispatch(bus: CommandBus) -> float:
    """The first command after the worker started (it may wait for partition assignment);
    retried with the same command id while the store says the outcome is unknown."""
    ctx = CommandContext(TENANT, ACTOR)
    t0 = time.perf_counter()
    for attempt in range(4):
        try:
            await bus.dispatch(m.RegisterAgent(**agent_body(-1)), ctx)
            break
        except StoreUnavailable as error:
            if attempt == 3:
                raise
            console.print(f"[yellow]first dispatch: {error}; retrying[/]")
    return time.perf_counter() - t0


def dispatcher(
    bus: CommandBus, results: list[AppendResult] | None = None
) -> Callable[[int], Awaitable[AppendResult]]:
    async def dispatch(i: int) -> AppendResult:
        result = await bus.dispatch(m.RegisterAgent(**agent_body(i)), CommandContext(TENANT, ACTOR))
        if results is not None:
            results.append(result)
        return result

    return dispatch


async def bench_bus(bus: CommandBus, n: int, concurrency: int) -> list[Figures]:
    dispatch = dispatcher(bus)
    for i in range(WARMUP):
        await dispatch(i)
    note = "returns: durable in Kafka + mirrored"
    wall, lat = await timed_sequential(n, dispatch)
    sequential = Figures("Kasal bus, sequential", n, wall, lat, note)
    for i in range(WARMUP):
        await dispatch(i)
    wall, lat = await timed_concurrent(n, concurrency, dispatch)
    concurrent = Figures(f"Kasal bus, {concurrency} tasks", n, wall, lat, note)
    return [sequential, concurrent]


# --- 2. event-to-projection lag ---------------------------------------------------------
class ProgressLog:
    """The projector's tracked positions over time (``on_progress``), to look lags up in."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.positions: list[int] = []
        self.times_ns: list[int] = []
        self.changed = asyncio.Event()

    def __call__(self, name: str, position: int) -> None:
        if name != self.name:
            return
        if self.positions and position <= self.positions[-1]:
            return
        self.positions.append(position)
        self.times_ns.append(time.perf_counter_ns())
        self.changed.set()

    @property
    def position(self) -> int:
        return self.positions[-1] if self.positions else 0

    def reached_at(self, position: int) -> int:
        """When the tracked position first reached ``position`` (perf_counter_ns)."""
        index = bisect.bisect_left(self.positions, position)
        return self.times_ns[index]

    async def wait_for(self, position: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while self.position < position:
                self.changed.clear()
                await self.changed.wait()


@dataclass
class Sample:
    started_ns: int
    returned_ns: int
    position: int
    projected_at_return: bool


async def lag_phase(
    bus: CommandBus, progress: ProgressLog, n: int, concurrency: int, label: str
) -> tuple[Figures, Figures, Figures, int]:
    """n dispatches (sequential when concurrency is 1) while the projector runs; every one
    is a lag sample. Returns bus figures, lag from return, lag from start, #already."""
    samples: list[Sample] = []

    async def dispatch(i: int) -> AppendResult:
        t0 = time.perf_counter_ns()
        result = await bus.dispatch(m.RegisterAgent(**agent_body(i)), CommandContext(TENANT, ACTOR))
        t1 = time.perf_counter_ns()
        samples.append(Sample(t0, t1, result.position, progress.position >= result.position))
        return result

    if concurrency == 1:
        wall, lat = await timed_sequential(n, dispatch)
    else:
        wall, lat = await timed_concurrent(n, concurrency, dispatch)
    await progress.wait_for(max(s.position for s in samples), PROJECTED_DEADLINE_S)
    from_return = [
        max(0, progress.reached_at(s.position) - s.returned_ns) for s in samples
    ]
    from_start = [progress.reached_at(s.position) - s.started_ns for s in samples]
    already = sum(s.projected_at_return for s in samples)
    bus_figures = Figures(f"Kasal bus, {label}, projector on", n, wall, lat,
                          "the runtime tails the mirror meanwhile")
    lag_return = Figures(
        f"lag from return, {label}", len(from_return), sum(from_return) / 1e9, from_return,
        f"return -> projected; {already} already at return", is_rate=False,
    )
    lag_start = Figures(
        f"lag from dispatch start, {label}", len(from_start), sum(from_start) / 1e9,
        from_start, "dispatch start -> projected", is_rate=False,
    )
    return bus_figures, lag_return, lag_start, already


async def bench_projection(
    store: KafkaEventStore, bus: CommandBus, schema: str, n: int, concurrency: int
) -> dict[str, Any]:
    engine = make_engine(POSTGRES_URL, schema=schema, immediate=True)
    projector = SqlProjector(engine)
    await projector.initialize()
    runtime = InProcessRuntime(store, [projector])
    progress = ProgressLog(projector.name)
    runtime.on_progress(progress)
    bus.subscribe(runtime.notify)
    try:
        head = await store.head_position()
        t0 = time.perf_counter_ns()
        await runtime.start()
        await progress.wait_for(head, PROJECTED_DEADLINE_S)
        catch_up_s = (time.perf_counter_ns() - t0) / 1e9
        catch_up = Figures(
            "projector catch-up (events)", head, catch_up_s, [], "read_all from the mirror, "
            f"batch {runtime.batch_size}",
        )
        dispatch = dispatcher(bus)
        for i in range(WARMUP):
            await dispatch(i)
        sequential = await lag_phase(bus, progress, n, 1, "sequential")
        concurrent = await lag_phase(bus, progress, n, concurrency, f"{concurrency} tasks")
    finally:
        await runtime.stop()
        await engine.dispose()
    return {
        "catch_up": catch_up,
        "figures": [*sequential[:3], *concurrent[:3]],
        "already_at_return": {"sequential": sequential[3], "concurrent": concurrent[3]},
    }


# --- 3. the baseline: raw aiokafka --------------------------------------------------------
async def record_shape(store: KafkaEventStore) -> dict[str, Any]:
    """One Kasal event record as the writer produces it, and the append request before it."""
    event = (await store.read_all(0, 1))[0]
    value = encode_event(event)
    command = CommandRecord(TENANT, event.command_id, "0" * 64)
    header = command_header(command)
    new_event = NewEvent(**{name: getattr(event, name) for name in NewEvent.__dataclass_fields__})
    request = AppendRequest(new_id(), store.client_id, 0, (new_event,), command).encode()
    return {
        "value": value,
        "header": header,
        "key_bytes": len(event.aggregate_id.encode()),
        "record_bytes": len(value) + len(header[0]) + len(header[1])
        + len(event.aggregate_id.encode()),
        "request_bytes": len(request),
    }


async def bench_raw(
    prefix: str, partitions: int, n: int, concurrency: int, value: bytes,
    header: tuple[str, bytes],
) -> list[Figures]:
    topic = f"{prefix}.bench-raw"
    with KafkaTopicAdmin(BOOTSTRAP) as admin:
        admin.ensure_topics([TopicSpec(topic, partitions, 1, {"cleanup.policy": "delete"})])
    producer = AIOKafkaProducer(
        bootstrap_servers=BOOTSTRAP, acks="all", enable_idempotence=True, linger_ms=0,
        client_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
    )
    await producer.start()
    keys = [str(uuid.uuid4()).encode() for _ in range(n + WARMUP)]
    headers = [header]

    async def send(i: int) -> object:
        return await producer.send_and_wait(topic, value, key=keys[i], headers=headers)

    note = 'acks="all", idempotent, linger_ms=0'
    try:
        for i in range(WARMUP):
            await send(n + i)
        wall, lat = await timed_sequential(n, send)
        sequential = Figures("raw aiokafka, sequential", n, wall, lat, note)
        wall, lat = await timed_concurrent(n, concurrency, send)
        concurrent = Figures(f"raw aiokafka, {concurrency} tasks", n, wall, lat, note)

        sent_ns: list[int] = []

        async def pipelined_one(future: Awaitable[object], t0: int) -> None:
            await future
            sent_ns.append(time.perf_counter_ns() - t0)

        started = time.perf_counter_ns()
        waits = []
        for i in range(n):
            t0 = time.perf_counter_ns()
            future = await producer.send(topic, value, key=keys[i], headers=headers)
            waits.append(pipelined_one(future, t0))
        await asyncio.gather(*waits)
        wall = (time.perf_counter_ns() - started) / 1e9
        pipelined = Figures(
            "raw aiokafka, pipelined", n, wall, sent_ns, f"all {n} sends in flight; " + note
        )
    finally:
        await producer.stop()
    return [sequential, concurrent, pipelined]


# --- 4. HTTP on the distributed deployment -----------------------------------------------
@dataclass
class HttpDeployment:
    """The API's own private deployment: a fresh database (the log mirror and the read
    models, as ``kasal`` keeps them in ``public``) and a fresh topic prefix."""

    prefix: str
    database: str
    partitions: int
    startup: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return make_url(POSTGRES_URL).set(database=self.database).render_as_string(
            hide_password=False
        )


async def wait_started(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + 10
    while not server.started:
        if serving.done():
            serving.result()  # raises why it stopped
            raise RuntimeError("uvicorn exited before it started")
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start within 10 s")
        await asyncio.sleep(0.01)


async def start_worker(settings: Settings, stack: AsyncExitStack) -> None:
    """``kasal worker`` in this process; returns once it leads (its projectors run)."""
    stop = asyncio.Event()
    leading = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop, leading=leading), name="bench-worker")

    async def stop_worker() -> None:
        stop.set()
        await worker

    stack.push_async_callback(stop_worker)
    led = asyncio.create_task(leading.wait())
    try:
        await asyncio.wait({worker, led}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
    finally:
        led.cancel()
    if worker.done():
        await worker  # it failed: raise its error
        raise RuntimeError("the worker ended before it led")
    if not leading.is_set():
        raise RuntimeError("the worker did not start its projectors within 120 s")


async def bench_http(deployment: HttpDeployment, n: int, concurrency: int) -> list[Figures]:
    """Stands up the worker, the API's Kasal and uvicorn on the deployment, measures, and
    always tears all of it down (server, API, worker, database, topics)."""
    startup = deployment.startup
    async with AsyncExitStack() as stack:
        t0 = time.perf_counter()
        await postgres_execute(f'CREATE DATABASE "{deployment.database}"')

        async def drop_storage() -> None:  # runs last: everything using it has stopped
            deleted: list[str] = []
            try:
                deleted = delete_topics(deployment.prefix)
            finally:
                await postgres_execute(
                    f'DROP DATABASE IF EXISTS "{deployment.database}" WITH (FORCE)'
                )
            console.print(
                f"cleaned up: {len(deleted)} topics under {deployment.prefix}, "
                f"database {deployment.database}"
            )

        stack.push_async_callback(drop_storage)
        with KafkaTopicAdmin(BOOTSTRAP) as admin:
            admin.ensure_topics(
                kasal_topics(prefix=deployment.prefix, partitions=deployment.partitions)
            )
        data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="kasal-bench-"))
        settings = Settings(
            _env_file=None,
            KASAL_DATA_DIR=Path(data_dir),
            KASAL_MODE="distributed",
            KASAL_RATE_LIMIT_PER_KEY=0,
            KASAL_RATE_LIMIT_PER_TENANT=0,
            DATABASE_TYPE="postgres",
            DATABASE_URL=deployment.url,
            KAFKA_BOOTSTRAP_SERVERS=BOOTSTRAP,
            KASAL_KAFKA_PREFIX=deployment.prefix,
            KASAL_KAFKA_PARTITIONS=deployment.partitions,
            KASAL_VECTOR_SEARCH=False,
        )
        t1 = time.perf_counter()
        await start_worker(settings, stack)
        t2 = time.perf_counter()
        kasal = await bootstrap(settings, role="api")
        await kasal.start()
        stack.push_async_callback(kasal.stop)
        key = generate_key()
        await kasal.bus.dispatch(
            m.IssueApiKey(name="bench", role="admin", key_hash=hash_key(key),
                          prefix=key_prefix(key)),
            CommandContext(tenant_id=TENANT, actor=ACTOR),
        )
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say so (see
        # bench/append.py); without it Nagle + delayed ACK add ~40 ms to every response.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        app = build_app(kasal, manage_lifecycle=False)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="bench-uvicorn")

        async def stop_server() -> None:
            server.should_exit = True
            await serving

        stack.push_async_callback(stop_server)
        await wait_started(server, serving)
        t3 = time.perf_counter()
        startup.update(
            provision_s=round(t1 - t0, 3), worker_leading_s=round(t2 - t1, 3),
            api_start_s=round(t3 - t2, 3),
        )
        client = await stack.enter_async_context(httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=VISIBLE_DEADLINE_S,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=None),
        ))
        return await http_phase(client, n, concurrency)
    raise AssertionError("unreachable")  # the exit stack never swallows an error


async def http_phase(client: httpx.AsyncClient, n: int, concurrency: int) -> list[Figures]:
    async def post(i: int) -> dict[str, Any]:
        response = await client.post("/api/v1/agents", json=agent_body(i))
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/v1/agents: {response.status_code} {response.text}")
        written: dict[str, Any] = response.json()
        return written

    get_attempts = [0]

    async def until_visible(written: dict[str, Any]) -> None:
        """GETs ``?min_position=`` until 200 (each GET waits server-side for the position,
        up to ``KASAL_MIN_POSITION_TIMEOUT``, then answers 503)."""
        deadline = time.monotonic() + VISIBLE_DEADLINE_S
        while True:
            get_attempts[0] += 1
            response = await client.get(
                f"/api/v1/agents/{written['id']}", params={"min_position": written["position"]}
            )
            if response.status_code == 200:
                return
            if response.status_code not in (404, 503) or time.monotonic() > deadline:
                raise RuntimeError(f"GET agent: {response.status_code} {response.text}")

    for i in range(WARMUP):  # the first POST also waits for the key to be projected
        await until_visible(await post(n + i))

    # sequential: one connection, the sampled GETs between POSTs (not counted as POST time)
    post_ns: list[int] = []
    visible_ns: list[int] = []
    get_ns = 0
    get_attempts[0] = 0
    started = time.perf_counter_ns()
    for i in range(n):
        t0 = time.perf_counter_ns()
        written = await post(i)
        t1 = time.perf_counter_ns()
        post_ns.append(t1 - t0)
        if i % VISIBLE_EVERY == 0:
            await until_visible(written)
            t2 = time.perf_counter_ns()
            visible_ns.append(t2 - t0)
            get_ns += t2 - t1
    wall = (time.perf_counter_ns() - started - get_ns) / 1e9
    sequential_gets = get_attempts[0]
    note = "201 = durable in Kafka + mirrored; uvicorn, keep-alive"
    rows = [
        Figures("HTTP POST agents, sequential", n, wall, post_ns, note),
        Figures(
            f"HTTP write→visible, sequential (every {VISIBLE_EVERY}th)", len(visible_ns),
            sum(visible_ns) / 1e9, visible_ns,
            f"POST start -> GET ?min_position 200; {sequential_gets} GETs", is_rate=False,
        ),
    ]

    for i in range(WARMUP):
        await post(n + WARMUP + i)
    # C tasks: the sampled GETs run beside the POSTs (extra load), so the posting tasks
    # never wait for them; the POST wall ends with the last POST
    visible_ns = []
    get_attempts[0] = 0
    checks: list[asyncio.Task[None]] = []

    async def check(t0: int, written: dict[str, Any]) -> None:
        await until_visible(written)
        visible_ns.append(time.perf_counter_ns() - t0)

    async def post_sampled(i: int) -> None:
        t0 = time.perf_counter_ns()
        written = await post(n + 2 * WARMUP + i)
        if i % VISIBLE_EVERY == 0:
            checks.append(asyncio.create_task(check(t0, written)))

    try:
        wall, post_lat = await timed_concurrent(n, concurrency, post_sampled)
        await asyncio.gather(*checks)
    finally:
        for task in checks:
            task.cancel()
    rows += [
        Figures(f"HTTP POST agents, {concurrency} tasks", n, wall, post_lat, note),
        Figures(
            f"HTTP write→visible, {concurrency} tasks (every {VISIBLE_EVERY}th)",
            len(visible_ns), sum(visible_ns) / 1e9, visible_ns,
            f"GETs beside the POSTs; {get_attempts[0]} GETs", is_rate=False,
        ),
    ]
    return rows


# --- report ---------------------------------------------------------------------------
def print_header(info: dict[str, Any], params: dict[str, Any]) -> None:
    table = header("Kasal distributed benchmark", info)
    table.add_row(
        "software",
        f"Python {info['python']}, PostgreSQL {info['postgresql']}, aiokafka "
        f"{info['aiokafka']}, kafka-python "
        f"{info['kafka-python']}, SQLAlchemy {info['sqlalchemy']}",
    )
    table.add_row("parameters", ", ".join(f"{k}={v}" for k, v in params.items()))
    table.add_row(
        "deployment",
        f"Kafka {BOOTSTRAP} prefix {params['prefix']}, PostgreSQL "
        f"{make_url(POSTGRES_URL).render_as_string(hide_password=True)} schema "
        f"{params['schema']} (both temporary)",
    )
    table.add_row(
        "HTTP deployment",
        f"Kafka prefix {params['http_prefix']}, PostgreSQL database "
        f"{params['http_database']}, kasal worker + API (role=api) + uvicorn in-process "
        f"(all temporary)",
    )
    console.print(table)


async def run(deployment: Deployment, n: int, concurrency: int, n_lag: int) -> dict[str, Any]:
    await open_deployment(deployment)
    assert deployment.store is not None
    store = deployment.store
    bus = CommandBus(store)
    deployment.startup["first_dispatch_s"] = round(await first_dispatch(bus), 3)
    bus_figures = await bench_bus(bus, n, concurrency)
    shape = await record_shape(store)
    projection = await bench_projection(store, bus, deployment.schema, n_lag, concurrency)
    raw = await bench_raw(
        deployment.prefix, deployment.partitions, n, concurrency, shape["value"],
        shape["header"],
    )
    return {"bus": bus_figures, "projection": projection, "raw": raw, "shape": shape}


async def main_async(
    deployment: Deployment, http: HttpDeployment, params: dict[str, Any], n: int,
    concurrency: int, n_lag: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Creates the schema, runs the phases, and always tears the deployments down (the
    HTTP phase runs on its own deployment once the first one is gone)."""
    postgres_version = await postgres_execute(f'CREATE SCHEMA "{deployment.schema}"')
    try:
        info = machine(postgresql=postgres_version, aiokafka=version("aiokafka"),
                       sqlalchemy=version("sqlalchemy"))
        info["kafka-python"] = version("kafka-python")
        print_header(info, params)
        results = await run(deployment, n, concurrency, n_lag)
    finally:
        try:
            await close_deployment(deployment)
        finally:
            deleted: list[str] = []
            try:
                deleted = delete_topics(deployment.prefix)
            finally:
                await postgres_execute(f'DROP SCHEMA IF EXISTS "{deployment.schema}" CASCADE')
            console.print(
                f"cleaned up: {len(deleted)} topics under {deployment.prefix}, "
                f"schema {deployment.schema}"
            )
    results["http"] = await bench_http(http, n_lag, concurrency)
    return info, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=2000, help="N (default 2000)")
    parser.add_argument("--concurrency", type=int, default=16, help="C (default 16)")
    parser.add_argument("--partitions", type=int, default=6, help="P (default 6)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    n = max(1, args.commands)
    concurrency = max(1, args.concurrency)
    n_lag = max(1, n // 4)
    deployment = Deployment(
        prefix="bench" + uuid.uuid4().hex[:10],
        schema="bench_" + uuid.uuid4().hex[:12],
        partitions=max(1, args.partitions),
    )
    http = HttpDeployment(
        prefix="bench" + uuid.uuid4().hex[:10],
        database="bench_" + uuid.uuid4().hex[:12],
        partitions=deployment.partitions,
    )
    params = {
        "commands": n,
        "concurrency": concurrency,
        "partitions": deployment.partitions,
        "lag_commands_per_phase": n_lag,
        "warmup_per_phase": WARMUP,
        "prefix": deployment.prefix,
        "schema": deployment.schema,
        "http_requests_per_phase": n_lag,
        "visible_sample_every": VISIBLE_EVERY,
        "http_prefix": http.prefix,
        "http_database": http.database,
    }
    started = time.perf_counter()
    with console.status("measuring…"):
        info, results = asyncio.run(
            main_async(deployment, http, params, n, concurrency, n_lag)
        )
    total_s = time.perf_counter() - started

    projection = results["projection"]
    raw: list[Figures] = results["raw"]
    rows: list[Figures] = [
        *results["bus"], projection["catch_up"], *projection["figures"], *raw,
        *results["http"],
    ]
    print_results(rows)
    kasal_seq, kasal_conc = results["bus"]
    raw_seq, raw_conc, raw_pipe = raw
    shape = results["shape"]
    seq_ratio = raw_seq.per_s / kasal_seq.per_s if kasal_seq.per_s else 0.0
    conc_ratio = raw_conc.per_s / kasal_conc.per_s if kasal_conc.per_s else 0.0
    p50_ratio = (
        percentile_ms(kasal_seq.latencies_ns, 50) / percentile_ms(raw_seq.latencies_ns, 50)
        if raw_seq.latencies_ns else 0.0
    )
    startup = deployment.startup
    hs = http.startup
    console.print(
        f"Startup: provision {startup['provision_s']:.2f} s, worker start "
        f"{startup['worker_start_s']:.2f} s, client store {startup['store_init_s']:.2f} s, "
        f"first dispatch {startup['first_dispatch_s']:.2f} s.\n"
        f"Kasal event record: {len(shape['value'])} B value + {shape['key_bytes']} B key + "
        f"{len(shape['header'][1])} B command header ≈ {shape['record_bytes']} B; the append "
        f"request before it is {shape['request_bytes']} B. The raw baseline sends records of "
        f"that shape.\n"
        f"Sequential Kasal bus vs raw sequential send_and_wait: {seq_ratio:.1f}x fewer per "
        f"second (p50 {p50_ratio:.1f}x longer); with {concurrency} tasks: {conc_ratio:.1f}x "
        f"fewer; raw pipelined reaches {raw_pipe.per_s:,.0f} records/s.\n"
        f"One Kasal dispatch = request to {deployment.prefix}.commands, writer produces the "
        f"event, writer's reply, mirror commit into PostgreSQL, position lookup. Lag figures "
        f"are per command of the projector-on phases (every command sampled).\n"
        f"HTTP (own deployment: prefix {http.prefix}, database {http.database}): provision "
        f"{hs['provision_s']:.2f} s, worker leading {hs['worker_leading_s']:.2f} s, API + "
        f"uvicorn {hs['api_start_s']:.2f} s. The HTTP client, uvicorn, the "
        f"API and the worker (writer, mirror, projectors) share one event loop and process. "
        f"Total {total_s:.1f} s."
    )
    report = {
        "machine": info,
        "params": params,
        "bootstrap": BOOTSTRAP,
        "startup_s": startup,
        "http_startup_s": http.startup,
        "record_bytes": {
            "event_value": len(shape["value"]),
            "key": shape["key_bytes"],
            "command_header": len(shape["header"][1]),
            "record": shape["record_bytes"],
            "append_request": shape["request_bytes"],
        },
        "results": {row.name: row.summary() for row in rows},
        "projected_at_return": projection["already_at_return"],
        "ratios": {
            "raw_seq_per_s_over_kasal_seq_per_s": round(seq_ratio, 2),
            "kasal_seq_p50_over_raw_seq_p50": round(p50_ratio, 2),
            "raw_concurrent_per_s_over_kasal_concurrent_per_s": round(conc_ratio, 2),
        },
        "total_s": round(total_s, 2),
    }
    sys.stdout.write(json.dumps(report, default=str) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
