"""Crew overhead benchmark: what Kasal adds to a CrewAI run, and runs completed per minute.

Run from the repo root::

    .venv/bin/python bench/crew_overhead.py [--runs N] [--throughput-runs M]

One process, one machine, the offline model (no network, instant answers), so the figures
are CrewAI's own CPU cost plus Kasal's: event sourcing every step, projections, the runner.
It measures and prints; it never asserts a time. The last line is one JSON object.

1. Raw CrewAI: ``Crew.kickoff()`` of a 2-task sequential crew, ``crewai.LLM`` on the
   offline model (through litellm), N times.
2. Through Kasal (embedded, SQLite): ``RequestExecution`` on the command bus until the
   execution shows ``completed`` in the SQL read model, N times, one at a time.
3. The ratio of the medians (the issue's target: <= 1.25).
4. Executions completed per minute with 1, 4 and 16 concurrent runs (M requested at once,
   ``KASAL_MAX_CONCURRENT_EXECUTIONS`` = the concurrency).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.crewai.offline_env import OFFLINE_ENV
from commands import messages as m
from commands.context import CommandContext
from kasal.bootstrap import Kasal, bootstrap
from kasal.settings import Settings

TENANT = "bench"
TASKS = [
    ("research", "Research {topic} and list the key facts.", "Five facts."),
    ("write", "Write a short briefing on {topic} from the research.", "Three paragraphs."),
]
AGENT = {"role": "Analyst", "goal": "Understand {topic}", "backstory": "A careful analyst."}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def register_models(model: str) -> None:
    """The offline model; ``kasal-test/*`` models live with the tests (``tests/models.py``)."""
    from adapters.crewai.offline_llm import register_offline_provider

    register_offline_provider()
    if model.startswith("kasal-test/"):
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.models import register_test_models

        register_test_models()


def raw_crewai(runs: int, storage: Path, model: str) -> list[float]:
    os.environ["CREWAI_STORAGE_DIR"] = str(storage)
    from crewai import LLM, Agent, Crew, Process, Task

    register_models(model)
    timings = []
    for _ in range(runs + 1):  # the first is a warm-up
        agent = Agent(**AGENT, llm=LLM(model=model), verbose=False)
        tasks = [Task(name=n, description=d, expected_output=o, agent=agent)
                 for n, d, o in TASKS]
        crew = Crew(agents=[agent], tasks=tasks, process=Process.sequential, verbose=False)
        start = time.perf_counter()
        output = crew.kickoff(inputs={"topic": "event sourcing"})
        timings.append(time.perf_counter() - start)
        assert "[kasal-" in str(output.raw)  # the offline model (or a test model) answered
    return timings[1:]


async def kasal_instance(
    directory: Path, concurrency: int, model: str = "kasal-offline/default"
) -> tuple[Kasal, str]:
    settings = Settings(KASAL_DATA_DIR=directory, KASAL_MAX_CONCURRENT_EXECUTIONS=concurrency)
    kasal = await bootstrap(settings)
    await kasal.start()
    ctx = CommandContext(tenant_id=TENANT, actor="bench")
    agent = await kasal.bus.dispatch(m.RegisterAgent(**AGENT, llm=model), ctx)
    crew = await kasal.bus.dispatch(
        m.DefineCrew(name="bench", agents=[agent.aggregate_id], tasks=[
            m.TaskFields(name=n, description=d, expected_output=o, agent=agent.aggregate_id)
            for n, d, o in TASKS]),
        CommandContext(tenant_id=TENANT, actor="bench"),
    )
    return kasal, crew.aggregate_id


async def until_completed(kasal: Kasal, execution_ids: list[str]) -> None:
    pending = set(execution_ids)
    while pending:
        await kasal.clock.wait_for(kasal.clock.position + 1, 1.0)
        for execution_id in list(pending):
            view = (await kasal.read_models.get_execution(TENANT, execution_id)).item
            if view and view["status"] in ("completed", "failed", "cancelled"):
                assert view["status"] == "completed", view["error"]
                pending.discard(execution_id)


async def request(kasal: Kasal, crew_id: str) -> str:
    result = await kasal.bus.dispatch(
        m.RequestExecution(crew_id=crew_id, inputs={"topic": "event sourcing"}),
        CommandContext(tenant_id=TENANT, actor="bench"),
    )
    return result.aggregate_id


async def through_kasal(runs: int, directory: Path, model: str) -> list[float]:
    kasal, crew_id = await kasal_instance(directory, 1, model)
    timings = []
    try:
        for _ in range(runs + 1):
            start = time.perf_counter()
            await until_completed(kasal, [await request(kasal, crew_id)])
            timings.append(time.perf_counter() - start)
    finally:
        await kasal.stop()
    return timings[1:]


async def throughput(concurrency: int, runs: int, directory: Path, model: str) -> float:
    kasal, crew_id = await kasal_instance(directory, concurrency, model)
    try:
        await until_completed(kasal, [await request(kasal, crew_id)])  # warm-up
        start = time.perf_counter()
        ids = [await request(kasal, crew_id) for _ in range(runs)]
        await until_completed(kasal, ids)
        elapsed = time.perf_counter() - start
    finally:
        await kasal.stop()
    return runs / elapsed * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="N (default 20)")
    parser.add_argument("--throughput-runs", type=int, default=32, help="M (default 32)")
    parser.add_argument("--model", default="kasal-offline/default",
                        help="kasal-test/slow answers in 0.3 s, like a fast provider")
    args = parser.parse_args()
    for name, value in OFFLINE_ENV.items():  # before anything imports crewai or litellm
        os.environ.setdefault(name, value)
    console = Console()
    with tempfile.TemporaryDirectory(prefix="kasal-crew-bench-") as tmp:
        root = Path(tmp)
        raw = raw_crewai(args.runs, root / "raw", args.model)
        kasal = asyncio.run(through_kasal(args.runs, root / "kasal", args.model))
        rates = {c: asyncio.run(throughput(c, args.throughput_runs, root / f"c{c}", args.model))
                 for c in (1, 4, 16)}
    ratio = statistics.median(kasal) / statistics.median(raw)
    table = Table(title=f"Crew overhead: 2-task sequential crew, {args.model}")
    for column in ("path", "runs", "p50 ms", "p90 ms", "mean ms"):
        table.add_column(column, justify="right" if column != "path" else "left")
    for name, values in (("raw CrewAI kickoff()", raw), ("through Kasal (request → "
                         "completed in the projection)", kasal)):
        table.add_row(name, str(len(values)), f"{statistics.median(values) * 1000:.1f}",
                      f"{percentile(values, 90) * 1000:.1f}",
                      f"{statistics.mean(values) * 1000:.1f}")
    console.print(table)
    console.print(f"ratio Kasal / raw (medians): [bold]{ratio:.2f}[/] (target <= 1.25)")
    rate_table = Table(title=f"Executions completed per minute ({args.throughput_runs} requested)")
    rate_table.add_column("concurrent runs", justify="right")
    rate_table.add_column("completed / min", justify="right")
    for concurrency, rate in rates.items():
        rate_table.add_row(str(concurrency), f"{rate:,.0f}")
    console.print(rate_table)
    figures: dict[str, Any] = {
        "raw_p50_ms": statistics.median(raw) * 1000,
        "kasal_p50_ms": statistics.median(kasal) * 1000,
        "model": args.model,
        "ratio": ratio,
        "completed_per_minute": rates,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
