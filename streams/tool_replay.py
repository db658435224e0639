"""The tool calls a run's log already holds, for the run resumed after a crash: each of
Kasal's tools gets its recorded result back instead of running again (a file written twice,
a clock read anew that would change every later model request and so its recorded answer),
and no call is recorded twice. Calls are matched by (task, tool, input), in the order made."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterable

from domain.envelope import RecordedEvent
from domain.vocabulary import EventType

MAX_TOOL_TEXT = 20_000  # of a tool call's input and output kept in the log
ToolKey = tuple[str | None, str, str]  # task, tool, input


def tool_key(task_name: str | None, tool: str, tool_input: str) -> ToolKey:
    return (task_name, tool, tool_input[:MAX_TOOL_TEXT])


class ToolReplay:
    def __init__(self, events: Iterable[RecordedEvent]) -> None:
        self.lock = threading.Lock()
        self.recorded: dict[ToolKey, collections.deque[str]] = {}
        self.answered: collections.Counter[ToolKey] = collections.Counter()
        self.replayed = 0  # calls answered from the log
        for event in events:
            if event.type == EventType.EXECUTION_TOOL_USED:
                p = event.payload
                self.recorded.setdefault((p["task_name"], p["tool"], p["input"]),
                                         collections.deque()).append(p["output"])

    def result(self, key: ToolKey) -> str | None:
        """The recorded result of the next such call, if the log holds one."""
        with self.lock:
            outputs = self.recorded.get(key)
            if not outputs:
                return None
            self.answered[key] += 1
            self.replayed += 1
            return outputs.popleft()

    def in_log(self, key: ToolKey) -> bool:
        """Whether this call (just made) is in the log already: one ``result`` answered, or
        one the engine could not answer (CrewAI's own tools) made again."""
        with self.lock:
            if self.answered[key] > 0:
                self.answered[key] -= 1
                return True
            outputs = self.recorded.get(key)
            if outputs:
                outputs.popleft()
                return True
            return False
