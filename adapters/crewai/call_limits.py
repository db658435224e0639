"""An agent's own limits, kept by Kasal's gateway before each paid model call: at most
``max_rpm`` calls in any 60 s, and no call once its task has run ``max_execution_time``
seconds. CrewAI's own are not used: its max_rpm sleeps a whole minute (past a cancel, and
counting replayed calls) and leaves a timer thread per agent; its max_execution_time
raises only after the task has finished anyway (the executor's ``with`` waits for it)."""

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
class CallLimits:
    max_rpm: int | None = None
    max_execution_time: float | None = None
    started_at: Callable[[str | None], float | None] = lambda _: None  # a task's start
    clock: Callable[[], float] = time.monotonic
    calls: deque[float] = field(default_factory=deque)  # the paid calls of the last minute
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check_time(self, task_name: str | None) -> None:
        started = self.started_at(task_name)
        if self.max_execution_time is None or started is None:
            return
        if self.clock() - started >= self.max_execution_time:
            raise TaskTimedOut(f"task {task_name!r} ran past its agent's max_execution_time "
                               f"of {self.max_execution_time:g} s")

    def take_call(self) -> float:
        """0 when a call may go now (it is counted), else the seconds until one may."""
        if self.max_rpm is None:
            return 0.0
        with self.lock:
            now = self.clock()
            while self.calls and self.calls[0] <= now - WINDOW_S:
                self.calls.popleft()
            if len(self.calls) < self.max_rpm:
                self.calls.append(now)
                return 0.0
            return self.calls[0] + WINDOW_S - now
