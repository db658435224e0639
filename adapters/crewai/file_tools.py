"""crewai-tools' file tools, confined to the run's tenant workspace (``workspace``).

``FileReadTool``, ``FileWriterTool`` and ``DirectoryReadTool`` keep their CrewAI names,
descriptions and argument schemas; every path the agent gives (and the configured one) is
resolved by ``Workspace.resolve`` before the tool touches the disk, and a path that leaves
the workspace comes back to the agent as an error message, never as a read or a write.
Errors are ``ToolFailure``s: the agent reads the same ``Error: ...`` text, and the call is
recorded as failed (``EventType.EXECUTION_TOOL_USED``'s ``error``).
"""

from __future__ import annotations

import os
from pathlib import PurePosixPath
from typing import Any

from crewai.tools.tool_failure import ToolFailure
from crewai_tools import DirectoryReadTool, FileReadTool, FileWriterTool
from pydantic import PrivateAttr

from adapters.crewai.workspace import Workspace, WorkspaceError

MAX_LISTED = 500
# what one read may bring into a prompt: a larger file is read in windows of lines
MAX_READ_CHARS = 200_000


def failed(message: str) -> ToolFailure:
    return ToolFailure(message=f"Error: {message}")


# crewai-tools declares ``-> str``; CrewAI's BaseTool takes a ToolFailure as well (the
# override's ``type: ignore``)
class WorkspaceFileReadTool(FileReadTool):
    _workspace: Workspace = PrivateAttr()

    def _run(  # type: ignore[override]
        self, file_path: str | None = None, start_line: int | None = 1,
        line_count: int | None = None,
    ) -> str | ToolFailure:
        if file_path is not None:
            try:
                file_path = str(self._workspace.resolve(file_path, must_exist=True))
            except WorkspaceError as error:
                return failed(str(error))
        target = file_path or self._declared_realpath
        try:
            size = os.path.getsize(target) if target and not line_count else 0
            if size > MAX_READ_CHARS:  # bytes: at least as many as its characters, or more
                return failed(
                    f"the file is {size:,} bytes, more than one read takes "
                    f"({MAX_READ_CHARS:,} characters): read it in windows of lines with "
                    "start_line and line_count")
            result: str = super()._run(file_path=file_path, start_line=start_line,
                                       line_count=line_count)
        except OSError as error:
            return failed(error.strerror or type(error).__name__)
        if len(result) > MAX_READ_CHARS:
            return failed(f"those lines hold {len(result):,} characters, more than one read "
                          f"takes ({MAX_READ_CHARS:,}): ask for fewer lines")
        return result.replace(str(self._workspace.root) + "/", "")


class WorkspaceFileWriterTool(FileWriterTool):
    _workspace: Workspace = PrivateAttr()

    def _run(  # type: ignore[override]
        self, filename: str, content: str, directory: str | None = "./",
        overwrite: str | bool = False,
    ) -> str | ToolFailure:
        try:
            target = self._workspace.resolve(str(PurePosixPath(directory or ".") / filename))
        except (WorkspaceError, TypeError) as error:
            return failed(str(error))
        try:
            if target == self._workspace.root or target.is_dir():
                return failed("name a file to write, not a directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            result: str = super()._run(filename=target.name, content=content,
                                       directory=str(target.parent), overwrite=overwrite)
        except OSError as error:
            return failed(f"{error.strerror or type(error).__name__}: {filename!r}")
        if result.startswith("Content successfully written"):
            return f"Content successfully written to {self._workspace.relative(target)}"
        return result.replace(str(self._workspace.root) + "/", "")


class WorkspaceDirectoryReadTool(DirectoryReadTool):
    _workspace: Workspace = PrivateAttr()

    def _run(self, **kwargs: Any) -> str | ToolFailure:
        directory = kwargs.get("directory", self.directory) or "."
        try:
            folder = self._workspace.resolve(str(directory), must_exist=True)
        except WorkspaceError as error:
            return failed(str(error))
        files = [self._workspace.relative(f) for f in sorted(folder.rglob("*"))
                 if f.is_file() and f.resolve().is_relative_to(self._workspace.root)]
        shown = files[:MAX_LISTED]
        more = f"\n({len(files) - MAX_LISTED} more)" if len(files) > MAX_LISTED else ""
        return f"File paths in {self._workspace.relative(folder)}:\n- " + "\n- ".join(
            shown) + more if shown else f"No files in {self._workspace.relative(folder)}"


def file_read(workspace: Workspace, file_path: str | None = None) -> FileReadTool:
    declared = str(workspace.resolve(file_path)) if file_path else None
    tool = WorkspaceFileReadTool(file_path=declared, base_dir=str(workspace.root))
    tool._workspace = workspace
    return tool


def file_write(workspace: Workspace) -> FileWriterTool:
    tool = WorkspaceFileWriterTool(base_dir=str(workspace.root))
    tool._workspace = workspace
    return tool


def directory_read(workspace: Workspace, directory: str | None = None) -> DirectoryReadTool:
    tool = WorkspaceDirectoryReadTool(directory=directory) if directory else \
        WorkspaceDirectoryReadTool()
    tool._workspace = workspace
    return tool
