"""Append benchmark: Kasal's command bus and HTTP writes against eventsourcing's SQLite recorder.

Run from the repo root::

    .venv/bin/python bench/append.py [--commands N] [--concurrency C]

Everything runs in one process on a fresh temporary data dir, so the three figures share
a disk and a machine. It measures and prints; it never asserts a time. The last line of
output is one JSON object with every figure.

1. ``CommandBus.dispatch`` of N ``RegisterAgent`` commands on the embedded SQLite event
   store: sequentially, then from C concurrent asyncio tasks sharing the bus.
2. The baseline: eventsourcing's own SQLite recorders inserting N single-event
   ``StoredEvent`` records, one transaction per call, with a payload of Kasal's size.
3. ``POST /api/v1/agents`` N/4 times through uvicorn over TCP (keep-alive), and for every
   10th, the time from sending the POST until ``GET /api/v1/agents/{id}?min_position=``
   returns 200 ("write to visible").
"""

from __future__ import annotations

from adapters.crewai.offline_env import apply as stay_offline

stay_offline()  # before anything imports crewai or litellm

import argparse
import asyncio
import json
import socket
import sqlite3
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import uvicorn
from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteDatastore,
)
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
    print_results,
    timed_concurrent,
    timed_sequential,
)

from adapters.eventstore.sql_store import SqlEventStore
from commands import messages as m
from commands.bus import CommandBus
from commands.context import CommandContext
from commands.handlers import HandlerDeps
from commands.ports import EventStore
from domain.api_key import generate_key, hash_key, key_prefix
from domain.envelope import canonical_json
from kasal.bootstrap import bootstrap, build_event_store
from kasal.settings import Settings
from kasal.web import build_app


def sqlite_settings(data_dir: Path) -> Settings:
    """Embedded SQLite for both the event store and the read models, whatever the env says."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        KASAL_DATA_DIR=data_dir,
        DATABASE_TYPE="sqlite",
        EVENT_STORE_TYPE="sqlite",
        KASAL_ENCRYPTION_KEY=None,
        KASAL_RATE_LIMIT_PER_KEY=0,  # a benchmark's one key is not a client to slow down
        KASAL_RATE_LIMIT_PER_TENANT=0,
    )


async def kasal_pragmas(store: EventStore) -> dict[str, str]:
    """The journal mode and synchronous level of the store's writer connections."""
    assert isinstance(store, SqlEventStore) and store.sqlite, "expected the SQLite event store"
    async with store.writer.connect() as conn:
        journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
        sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
    return {"journal_mode": str(journal), "synchronous": SYNC_NAMES.get(sync, str(sync))}


SYNC_NAMES: dict[Any, str] = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


# --- 1. the command bus ---------------------------------------------------------------
async def bench_bus(data_dir: Path, n: int, concurrency: int) -> dict[str, Any]:
    settings = sqlite_settings(data_dir)
    store = await build_event_store(settings)
    bus = CommandBus(store, HandlerDeps(default_llm=settings.default_llm))
    pragmas = await kasal_pragmas(store)
    commands = [m.RegisterAgent(**agent_body(i)) for i in range(n + WARMUP)]

    async def dispatch(i: int) -> object:
        return await bus.dispatch(commands[i], CommandContext(TENANT, ACTOR))

    try:
        for i in range(WARMUP):
            await dispatch(n + i)
        note = f"journal={pragmas['journal_mode']} synchronous={pragmas['synchronous']}"
        wall, lat = await timed_sequential(n, dispatch)
        sequential = Figures("Kasal bus, sequential", n, wall, lat, note)
        wall, lat = await timed_concurrent(n, concurrency, dispatch)
        concurrent = Figures(f"Kasal bus, {concurrency} tasks", n, wall, lat, note)
        sample = (await store.read_all(0, 1))[0]
        payload_bytes = canonical_json(dict(sample.payload))
        row_bytes = sum(len(str(getattr(sample, name))) for name in ROW_FIELDS) + len(
            payload_bytes
        )
    finally:
        await store.close()
    return {
        "figures": [sequential, concurrent],
        "pragmas": pragmas,
        "url": settings.event_store_url,
        "payload": payload_bytes,
        "row_bytes": row_bytes,
    }


ROW_FIELDS = (
    "event_id", "aggregate_type", "aggregate_id", "version", "type", "schema_version",
    "occurred_at", "tenant_id", "actor", "command_id", "correlation_id", "causation_id",
    "prev_hash", "hash",
)


# --- 2. the baseline: eventsourcing's SQLite recorders ----------------------------------
def bench_recorder(
    db_file: Path,
    recorder_class: type[SQLiteAggregateRecorder],
    n: int,
    state: bytes,
) -> tuple[Figures, dict[str, str]]:
    datastore = SQLiteDatastore(str(db_file))
    recorder = recorder_class(datastore)
    recorder.create_table()
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal = str(cursor.fetchone()[0])
        cursor.execute("PRAGMA synchronous")
        sync = SYNC_NAMES.get(cursor.fetchone()[0], "?")
    events = [
        StoredEvent(originator_id=uuid4(), originator_version=1, topic="bench:Event", state=state)
        for _ in range(n + WARMUP)
    ]
    try:
        for event in events[n:]:
            recorder.insert_events([event])
        latencies: list[int] = []
        started = time.perf_counter_ns()
        for event in events[:n]:
            t0 = time.perf_counter_ns()
            recorder.insert_events([event])
            latencies.append(time.perf_counter_ns() - t0)
        wall = (time.perf_counter_ns() - started) / 1e9
    finally:
        datastore.close()
    note = f"journal={journal} synchronous={sync}"
    name = f"eventsourcing {recorder_class.__name__}"
    return Figures(name, n, wall, latencies, note), {"journal_mode": journal, "synchronous": sync}


# --- 3. HTTP through uvicorn ------------------------------------------------------------
async def bench_http(data_dir: Path, n: int) -> dict[str, Any]:
    kasal = await bootstrap(sqlite_settings(data_dir))
    await kasal.start()
    key = generate_key()
    await kasal.bus.dispatch(
        m.IssueApiKey(name="bench", role="admin", key_hash=hash_key(key), prefix=key_prefix(key)),
        CommandContext(TENANT, "bench-cli"),
    )
    app = build_app(kasal, manage_lifecycle=False)
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say so, and
    # without it Nagle + delayed ACK add ~40 ms to every response (uvicorn writes the
    # response head and body separately). uvicorn's own bind (host/port) gets this right.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if serving.done():
                serving.result()  # raises why it stopped
                raise RuntimeError("uvicorn exited before it started")
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 10 s")
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=VISIBLE_DEADLINE_S,
        ) as client:
            return await http_phase(client, n)
    finally:
        server.should_exit = True
        await serving
        await kasal.stop()


async def http_phase(client: httpx.AsyncClient, n: int) -> dict[str, Any]:
    async def post(i: int) -> httpx.Response:
        response = await client.post("/api/v1/agents", json=agent_body(i))
        if response.status_code != 201:
            raise RuntimeError(f"POST /api/v1/agents: {response.status_code} {response.text}")
        return response

    async def until_visible(agent_id: str, position: int) -> int:
        """GETs until 200; returns how many GETs it took."""
        deadline = time.monotonic() + VISIBLE_DEADLINE_S
        attempts = 0
        while True:
            attempts += 1
            response = await client.get(
                f"/api/v1/agents/{agent_id}", params={"min_position": position}
            )
            if response.status_code == 200:
                return attempts
            if response.status_code not in (404, 503) or time.monotonic() > deadline:
                raise RuntimeError(f"GET agent: {response.status_code} {response.text}")

    for i in range(WARMUP):  # also lets the just-issued key reach the read model
        written = (await post(n + i)).json()
        await until_visible(written["id"], written["position"])

    post_ns: list[int] = []
    visible_ns: list[int] = []
    get_ns: list[int] = []
    get_attempts = 0
    started = time.perf_counter_ns()
    for i in range(n):
        t0 = time.perf_counter_ns()
        response = await post(i)
        t1 = time.perf_counter_ns()
        post_ns.append(t1 - t0)
        if i % VISIBLE_EVERY == 0:
            written = response.json()
            get_attempts += await until_visible(written["id"], written["position"])
            t2 = time.perf_counter_ns()
            visible_ns.append(t2 - t0)
            get_ns.append(t2 - t1)
    wall = (time.perf_counter_ns() - started) / 1e9
    post_wall = wall - sum(get_ns) / 1e9  # the sampled GETs are not POST throughput
    return {
        "figures": [
            Figures("HTTP POST /api/v1/agents", n, post_wall, post_ns, "uvicorn, keep-alive"),
            Figures(
                f"HTTP write→visible (every {VISIBLE_EVERY}th)",
                len(visible_ns),
                sum(visible_ns) / 1e9,
                visible_ns,
                f"POST + GET ?min_position; {get_attempts} GETs",
                is_rate=False,
            ),
        ],
    }


# --- report ---------------------------------------------------------------------------
def software() -> dict[str, str]:
    return {"sqlite": sqlite3.sqlite_version, "eventsourcing": version("eventsourcing"),
            "sqlalchemy": version("sqlalchemy"), "uvicorn": version("uvicorn")}


def print_header(info: dict[str, Any], params: dict[str, Any], data_dir: str) -> None:
    table = header("Kasal append benchmark", info)
    table.add_row(
        "software",
        f"Python {info['python']}, SQLite {info['sqlite']}, eventsourcing "
        f"{info['eventsourcing']}, SQLAlchemy {info['sqlalchemy']}, uvicorn {info['uvicorn']}",
    )
    table.add_row("parameters", ", ".join(f"{k}={v}" for k, v in params.items()))
    table.add_row("data dir", f"{data_dir} (temporary, on disk)")
    console.print(table)


async def run(data_dir: Path, n: int, concurrency: int, n_http: int) -> dict[str, Any]:
    bus = await bench_bus(data_dir / "bus", n, concurrency)
    baseline_dir = data_dir / "eventsourcing"
    baseline_dir.mkdir()
    baseline = [
        bench_recorder(baseline_dir / f"{cls.__name__}.db", cls, n, bus["payload"])
        for cls in (SQLiteApplicationRecorder, SQLiteAggregateRecorder)
    ]
    http = await bench_http(data_dir / "http", n_http)
    return {"bus": bus, "baseline": baseline, "http": http}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=2000, help="N (default 2000)")
    parser.add_argument("--concurrency", type=int, default=8, help="C (default 8)")
    args = parser.parse_args()
    n = max(1, args.commands)
    concurrency = max(1, args.concurrency)
    n_http = max(1, n // 4)
    params = {
        "commands": n,
        "concurrency": concurrency,
        "http_requests": n_http,
        "warmup_per_phase": WARMUP,
        "visible_sample_every": VISIBLE_EVERY,
    }
    info = machine(**software())
    with tempfile.TemporaryDirectory(prefix="kasal-bench-") as tmp:
        print_header(info, params, tmp)
        started = time.perf_counter()
        with console.status("measuring…"):
            results = asyncio.run(run(Path(tmp), n, concurrency, n_http))
        total_s = time.perf_counter() - started

    bus, http = results["bus"], results["http"]
    rows: list[Figures] = [*bus["figures"], *(f for f, _ in results["baseline"]), *http["figures"]]
    print_results(rows, notes="SQLite / notes")
    by_name = {row.name: row for row in rows}
    kasal_seq = bus["figures"][0]
    raw = results["baseline"][0][0]
    ratio = raw.per_s / kasal_seq.per_s if kasal_seq.per_s else 0.0
    console.print(
        f"Kasal event store: {bus['url'].rsplit('/', 1)[-1]}, "
        f"journal={bus['pragmas']['journal_mode']} synchronous={bus['pragmas']['synchronous']}; "
        f"RegisterAgent payload {len(bus['payload'])} B (row ≈ {bus['row_bytes']} B with the "
        f"envelope); baseline state {len(bus['payload'])} B.\n"
        f"eventsourcing sets only journal_mode=WAL; synchronous is SQLite's default "
        f"({results['baseline'][0][1]['synchronous']}).\n"
        f"Sequential Kasal bus vs {raw.name}: {ratio:.1f}x fewer per second. "
        f"HTTP client and server share one event loop and process. Total {total_s:.1f} s."
    )
    report = {
        "machine": info,
        "params": params,
        "kasal_sqlite": bus["pragmas"],
        "eventsourcing_sqlite": results["baseline"][0][1],
        "payload_bytes": len(bus["payload"]),
        "results": {name: row.summary() for name, row in by_name.items()},
        "total_s": round(total_s, 2),
    }
    sys.stdout.write(json.dumps(report, default=str) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
