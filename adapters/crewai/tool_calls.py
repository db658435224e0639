"""The tool calls of one run, as the engine reports them: which run and task a call belongs
to, how long it ran, whether it failed, and the recorded result a resumed run gets back.

CrewAI calls tool hooks process-wide, on the agent's thread: ``before`` notes the call on
that thread (its key and its start), each of Kasal's tools (``replaying``) first asks the
run's hooks for a recorded result and otherwise runs, noting a failure (the tool raised,
or returned a ``ToolFailure``), and ``after`` reads the note back for ``tool_used``.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from typing import Any

from crewai import Crew
from crewai.hooks import ToolCallHookContext
from crewai.tools import BaseTool
from crewai.tools.tool_failure import ToolFailure

from adapters.crewai.call_limits import RunLimits
from streams.engine import RunHooks

MAX_ERROR_CHARS = 2000

ToolKey = tuple[str | None, str, str]  # task, tool, input (as ``tool_used`` records them)


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]


class RunObjects:
    """The CrewAI objects one run built: a process-global hook (tool calls) or a delegated
    task CrewAI made up is matched to its run by them."""

    def __init__(self) -> None:
        self.task_names: dict[int, str] = {}  # id(crewai Task) -> task name
        self.agent_ids: set[int] = set()
        self.crew: Crew | None = None
        self.current_task: str | None = None
        self.limits = RunLimits()  # when tasks began; a timeout, once one happened
        self.calling = threading.local()  # the tool call running on this thread

    def tool_key(self, ctx: ToolCallHookContext) -> ToolKey:
        """(task, tool, input) of a call, as ``tool_used`` records it."""
        return (self.task_name_of(ctx.task), ctx.tool_name,
                json.dumps(ctx.tool_input, sort_keys=True, ensure_ascii=False, default=str))

    def task_name_of(self, task: Any) -> str | None:
        """The run's task a model call or tool use belongs to. Work that a hierarchical
        manager delegates runs in a task CrewAI made up: it belongs to the current task."""
        return self.task_names.get(id(task), self.current_task)

    def owns(self, agent: Any, crew: Any) -> bool:
        return (crew is not None and crew is self.crew) or id(agent) in self.agent_ids

    def before(self, ctx: ToolCallHookContext) -> None:
        self.calling.key = self.tool_key(ctx)  # for the tool itself (``replaying``)
        self.calling.started = time.monotonic()
        self.calling.error = None

    def after(self, ctx: ToolCallHookContext) -> tuple[str | None, int | None]:
        """The call's (error, duration in ms), and the thread's note cleared."""
        started: float | None = getattr(self.calling, "started", None)
        error: str | None = getattr(self.calling, "error", None)
        self.calling.key = self.calling.started = self.calling.error = None
        if error is None and isinstance(ctx.raw_tool_result, ToolFailure):  # CrewAI's tools
            error = ctx.raw_tool_result.message[:MAX_ERROR_CHARS]
        duration = None if started is None else round((time.monotonic() - started) * 1000)
        return error, duration


def replaying(tool: BaseTool, hooks: RunHooks, run: RunObjects) -> BaseTool:
    """``tool``, answering a call the log already holds with its recorded result, and
    noting why a call fails (for ``tool_used``)."""
    original = tool._run

    @functools.wraps(original)  # CrewAI reads the signature for the tool's arguments
    def _run(*args: Any, **kwargs: Any) -> Any:
        key = getattr(run.calling, "key", None)
        run.calling.key = None  # CrewAI's retries of a failed call run the tool itself
        if key is not None:
            recorded = hooks.recorded_tool_result(*key)
            if recorded is not None:
                return recorded
        try:
            result = original(*args, **kwargs)
        except Exception as error:  # CrewAI turns it into text for the agent
            run.calling.error = error_text(error)
            raise
        if isinstance(result, ToolFailure):
            run.calling.error = result.message[:MAX_ERROR_CHARS]
        return result

    object.__setattr__(tool, "_run", _run)  # the instance's, before CrewAI wraps the tool
    return tool
