"""An agent's own limits, kept by Kasal's gateway before each paid model call: at most
``max_rpm`` calls in any 60 s, and no call once the task it works on has run
``max_execution_time`` seconds. CrewAI's own are not used: its max_rpm sleeps a whole minute
(past a cancel, and counting replayed calls) and leaves a timer thread per agent; its
max_execution_time raises only after the task has finished anyway (the executor's ``with``
waits for it).

A timeout is sticky for the run (``RunLimits``): CrewAI's delegation tool hands a coworker's
error back to the manager as text, so every later call of the run (the manager's too)
raises it again, and the engine raises it after kickoff."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_S = 60.0


class TaskTimedOut(Exception):
    """A task ran past its agent's max_execution_time."""


@dataclass
class RunLimits:
    """What one run's agents share: when each task began, and a timeout (or a failure CrewAI
    would have swallowed) once one happened."""

    clock: Callable[[], float] = time.monotonic
    started_at: dict[int, float] = field(default_factory=dict)  # id(crewai Task) -> start
    current: int | None = None  # the crew task running now (calls that name no task)
    timed_out: TaskTimedOut | None = None
    failure: Exception | None = None  # e.g. a knowledge query a delegated task could not make
    lock: threading.Lock = field(default_factory=threading.Lock)

    def task_started(self, task_key: int) -> None:
        with self.lock:
            self.started_at[task_key] = self.clock()
            self.current = task_key

    def fail(self, error: Exception) -> None:
        """Stop the run with ``error`` at its next model call, task or end, whatever CrewAI
        does with the exception meanwhile (a delegation turns it into text)."""
        with self.lock:
            self.failure = self.failure or error

    def raise_if_stopped(self) -> None:
        if self.timed_out is not None:
            raise self.timed_out
        if self.failure is not None:
            raise self.failure


@dataclass
class CallLimits:
    run: RunLimits
    max_rpm: int | None = None
    max_execution_time: float | None = None
    calls: deque[float] = field(default_factory=deque)  # the paid calls of the last minute

    def check_time(self, task_key: int | None, task_name: str | None) -> None:
        """Raise the run's timeout, or this task's once it has run its agent's time. A task
        CrewAI made up (a delegation) is timed from this agent's first call on it."""
        run = self.run
        run.raise_if_stopped()
        if self.max_execution_time is None:
            return
        with run.lock:
            key = task_key if task_key is not None else run.current
            if key is None:
                return
            started = run.started_at.setdefault(key, run.clock())
            if run.clock() - started < self.max_execution_time:
                return
            run.timed_out = TaskTimedOut(
                f"task {task_name!r} ran past its agent's max_execution_time of "
                f"{self.max_execution_time:g} s")
        raise run.timed_out

    def take_call(self) -> float:
        """0 when a call may go now (it is counted), else the seconds until one may."""
        if self.max_rpm is None:
            return 0.0
        with self.run.lock:
            now = self.run.clock()
            while self.calls and self.calls[0] <= now - WINDOW_S:
                self.calls.popleft()
            if len(self.calls) < self.max_rpm:
                self.calls.append(now)
                return 0.0
            return self.calls[0] + WINDOW_S - now
