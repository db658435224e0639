"""What the benchmarks share: the workload, the console, a phase's figures and timings.

Imported by the scripts in this folder (``python bench/<script>.py`` puts it on the path).
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

TENANT = "bench"
ACTOR = "bench"
WARMUP = 20  # operations before each measured phase, not counted
VISIBLE_EVERY = 10  # sample every 10th HTTP write for write-to-visible
VISIBLE_DEADLINE_S = 30.0


def agent_body(i: int) -> dict[str, Any]:
    """A realistic RegisterAgent body (its stored payload is a few hundred bytes)."""
    return {
        "role": f"Research analyst {i}",
        "goal": "Find and summarise recent, reliable sources on the topic you are given.",
        "backstory": (
            "A careful analyst who checks every claim against two independent sources "
            "and writes short, plain summaries."
        ),
        "tools": ["calculator", "current_time"],
        "max_iter": 15,
    }

console = Console(highlight=False)
if not console.is_terminal:  # piped output: wide enough for the table on one line per row
    console = Console(highlight=False, width=150)


# --- figures ------------------------------------------------------------------------
@dataclass
class Figures:
    name: str
    ops: int
    wall_s: float
    latencies_ns: list[int] = field(repr=False)
    note: str = ""
    is_rate: bool = True  # False: ops are samples of a latency, ops/s means nothing

    @property
    def per_s(self) -> float:
        return self.ops / self.wall_s if self.wall_s and self.is_rate else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ops": self.ops,
            "wall_s": round(self.wall_s, 4),
            "per_s": round(self.per_s, 1),
            "mean_ms": round(mean_ms(self.latencies_ns), 3),
            "p50_ms": round(percentile_ms(self.latencies_ns, 50), 3),
            "p99_ms": round(percentile_ms(self.latencies_ns, 99), 3),
            "max_ms": round(max(self.latencies_ns, default=0) / 1e6, 3),
            "note": self.note,
        }


def percentile_ms(latencies_ns: list[int], pct: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not latencies_ns:
        return 0.0
    ordered = sorted(latencies_ns)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil(n * pct / 100)
    return ordered[int(rank) - 1] / 1e6


def mean_ms(latencies_ns: list[int]) -> float:
    return sum(latencies_ns) / len(latencies_ns) / 1e6 if latencies_ns else 0.0


async def timed_sequential(
    n: int, op: Callable[[int], Awaitable[object]]
) -> tuple[float, list[int]]:
    latencies: list[int] = []
    started = time.perf_counter_ns()
    for i in range(n):
        t0 = time.perf_counter_ns()
        await op(i)
        latencies.append(time.perf_counter_ns() - t0)
    return (time.perf_counter_ns() - started) / 1e9, latencies


async def timed_concurrent(
    n: int, concurrency: int, op: Callable[[int], Awaitable[object]]
) -> tuple[float, list[int]]:
    latencies: list[int] = []
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:  # the tasks share one iterator: n operations in all
            t0 = time.perf_counter_ns()
            await op(i)
            latencies.append(time.perf_counter_ns() - t0)

    started = time.perf_counter_ns()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.perf_counter_ns() - started) / 1e9, latencies


# --- reporting ------------------------------------------------------------------------
def machine(**software: str) -> dict[str, Any]:
    """The machine a run measured, and the versions of the ``software`` it names."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 0
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "cpu": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        **software,
    }


def header(title: str, info: dict[str, Any]) -> Table:
    """A run's header table, its machine row filled in; the caller adds the rest."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "machine",
        f"{info['cpu_count']} CPUs ({info['cpus_usable']} usable), {info['cpu']}, "
        f"{info['platform']}",
    )
    return table


def print_results(rows: list[Figures], notes: str = "notes") -> None:
    table = Table(title="Results (latency per operation)", title_justify="left")
    table.add_column("benchmark")
    for column in ("ops", "wall s", "ops/s", "mean ms", "p50 ms", "p99 ms", "max ms"):
        table.add_column(column, justify="right")
    table.add_column(notes)
    for row in rows:
        s = row.summary()
        latency = [f"{s[k]:.2f}" if row.latencies_ns else "-"
                   for k in ("mean_ms", "p50_ms", "p99_ms", "max_ms")]
        per_s = f"{s['per_s']:,.0f}" if row.is_rate else "-"
        table.add_row(s["name"], str(s["ops"]), f"{s['wall_s']:.2f}", per_s, *latency,
                      s["note"])
    console.print(table)
