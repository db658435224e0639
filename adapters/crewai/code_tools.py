"""A project's own tool in a run: a CrewAI tool whose calls go to a process that runs the
pinned source (``project_tool_host``), one process per bundle per run, started at its first
call and stopped when the run ends.

The tool the agent sees has the name, description and argument schema recorded when the
agent was defined. A call that fails, outlives ``timeout_s`` (its process is killed, the next
call starts another) or is cancelled with its run answers a ``ToolFailure``: the agent reads
``Error: ...``, and ``ToolUsed`` records the error. The process gets the working directory of
the run's tenant workspace and this process's environment without Kasal's own settings
(``env``).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from crewai.tools import BaseTool
from crewai.tools.tool_failure import ToolFailure
from crewai.utilities.pydantic_schema_utils import create_model_from_schema
from pydantic import BaseModel, ConfigDict

from domain.project_code import ProjectTool

START_TIMEOUT_S = 120.0  # importing CrewAI and the project's module
POLL_S = 0.25  # how often a waiting call looks for a cancel
TELEMETRY_OFF = {"CREWAI_DISABLE_TELEMETRY": "true", "CREWAI_TRACING_ENABLED": "false",
                 "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OTEL_SDK_DISABLED": "true"}


class _Failed(Exception):
    """A call that got no answer (the message says why)."""


class CodeHost:
    """The process of one bundle in one run. Calls are one at a time."""

    def __init__(self, tool: ProjectTool, cwd: Path, env: Mapping[str, str], timeout_s: float,
                 cancelled: Callable[[], bool]) -> None:
        self.tool = tool
        self.cwd = cwd
        self.env = {**env, **TELEMETRY_OFF}
        self.timeout_s = timeout_s
        self.cancelled = cancelled
        self.lock = threading.Lock()
        self.process: subprocess.Popen[str] | None = None
        self.replies: queue.Queue[str | None] = queue.Queue()
        self.stderr: IO[str] | None = None
        self.starts = 0  # processes started (for tests and the log)
        self.closed = False  # the run ended: no process starts again

    def call(self, arguments: dict[str, Any]) -> str | ToolFailure:
        with self.lock:
            try:
                if self.closed:
                    raise _Failed("the run has ended; the tool's process was stopped")
                if self.process is None:
                    self._start()
                return str(self._ask({"arguments": arguments}, self.timeout_s)["result"])
            except _Failed as failure:
                return ToolFailure(message=f"Error: {failure}")

    def _start(self) -> None:
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.stderr = tempfile.TemporaryFile(  # noqa: SIM115 -- closed by close()
            "w+", encoding="utf-8", errors="replace")
        self.replies = queue.Queue()
        try:
            # its own session: close() kills what the tool forked too
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-m", "adapters.crewai.project_tool_host"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                cwd=self.cwd, env=self.env, text=True, encoding="utf-8", bufsize=1,
                start_new_session=True,
            )
        except OSError as error:
            self.close()
            raise _Failed(f"project tool {self.tool.name!r}'s process did not start: "
                          f"{error}") from None
        self.starts += 1
        threading.Thread(target=self._read, args=(self.process.stdout, self.replies),
                         daemon=True, name="kasal-code-reader").start()
        reply = self._ask(self.tool.as_payload(), START_TIMEOUT_S, starting=True)
        if not reply.get("ok"):
            self.close()
            raise _Failed(f"project tool {self.tool.name!r} could not be loaded: "
                          f"{reply.get('error')}")

    @staticmethod
    def _read(stream: IO[str] | None, replies: queue.Queue[str | None]) -> None:
        try:
            for line in stream or ():
                replies.put(line)
        except (OSError, ValueError):  # closed under it
            pass
        finally:
            replies.put(None)  # the process closed its output: it ended
            if stream is not None:
                stream.close()  # here, not in close(): a read in progress holds its lock

    def _ask(self, document: dict[str, Any], timeout_s: float,
             starting: bool = False) -> dict[str, Any]:
        process = self.process
        assert process is not None and process.stdin is not None
        try:
            # arguments CrewAI validated into dates, UUIDs...: as text (the tool validates)
            process.stdin.write(json.dumps(document, default=str) + "\n")
            process.stdin.flush()
        except OSError:  # it died: the reader says how
            pass
        deadline = time.monotonic() + timeout_s
        while True:
            if self.cancelled():
                self.close()
                raise _Failed("the run was cancelled; the tool's process was stopped")
            if time.monotonic() > deadline:
                self.close()
                doing = "start" if starting else "answer"
                raise _Failed(f"project tool {self.tool.name!r} did not {doing} within "
                              f"{timeout_s:.0f} s; its process was stopped")
            try:
                line = self.replies.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if line is None:
                code = process.wait()
                tail = self._stderr_tail()
                self.close()
                raise _Failed(f"project tool {self.tool.name!r}'s process ended (exit code "
                              f"{code}){': ' + tail if tail else ''}")
            reply: dict[str, Any] = json.loads(line)
            if not starting and not reply.get("ok"):
                raise _Failed(str(reply.get("error")))
            return reply

    def _stderr_tail(self) -> str:
        if self.stderr is None:
            return ""
        try:
            end = self.stderr.seek(0, os.SEEK_END)
            self.stderr.seek(max(0, end - 4000))
            return " ".join(self.stderr.read()[-1000:].split())
        except (OSError, ValueError):
            return ""

    def close(self, *, final: bool = False) -> None:
        """Stop the process and whatever it started; ``final``: none starts again."""
        self.closed = self.closed or final
        process, self.process = self.process, None
        if process is not None:
            # the whole session: a tool's own children go with it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            with contextlib.suppress(OSError):
                if process.stdin is not None:
                    process.stdin.close()
        if self.stderr is not None:
            self.stderr.close()
            self.stderr = None


class ProjectCode:
    """A run's project tools: one ``CodeHost`` per bundle, all stopped by ``close``."""

    def __init__(self, cwd: Path, env: Mapping[str, str], timeout_s: float,
                 cancelled: Callable[[], bool]) -> None:
        self.cwd, self.env, self.timeout_s, self.cancelled = cwd, env, timeout_s, cancelled
        self.hosts: dict[str, CodeHost] = {}

    def tool(self, bundle: ProjectTool) -> BaseTool:
        host = self.hosts.get(bundle.sha256)
        if host is None:
            host = self.hosts[bundle.sha256] = CodeHost(bundle, self.cwd, self.env,
                                                        self.timeout_s, self.cancelled)
        return ProjectCodeTool(name=bundle.name, description=bundle.description or bundle.name,
                               args_schema=_arguments(bundle), host=host)

    def close(self) -> None:
        for host in self.hosts.values():
            host.close(final=True)


class _NoArguments(BaseModel):
    model_config = ConfigDict(extra="allow")


def _arguments(bundle: ProjectTool) -> type[BaseModel]:
    """The tool's argument model, from the JSON Schema recorded with it."""
    if not bundle.args_schema.get("properties"):
        return _NoArguments
    try:
        return create_model_from_schema(dict(bundle.args_schema),
                                        model_name=f"{bundle.attribute}Arguments")
    except Exception:  # a schema CrewAI cannot model ($ref...): the tool validates its own
        return _NoArguments


class ProjectCodeTool(BaseTool):
    """Stands in for the project's tool in this process; its process runs the real one."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    host: CodeHost

    def _run(self, **kwargs: Any) -> str | ToolFailure:
        return self.host.call(kwargs)


__all__ = ["CodeHost", "ProjectCode", "ProjectCodeTool"]
