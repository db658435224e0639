"""The tools an agent may name, with the configuration each takes, importable without
importing CrewAI (which takes seconds): command handlers check agents' tools and their
``tool_config`` against it, and a project's import maps crewai-tools classes through it.

A configuration is data recorded in the agent's events (never a pickled object): option
names and string values; an option of kind ``path`` is a path inside the tenant's
workspace (``adapters.crewai.workspace``), checked when the agent is defined and again
when the tool is built; one of kind ``url`` is an http(s) URL (where it may lead is checked
when the tool fetches it: crewai-tools refuses private and reserved addresses).

A network tool names the environment variables it needs (``credentials``): an agent that
names it on a server without them is refused (``tool_credentials_problem``), and so is a run
of it on a worker without them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from adapters.crewai.workspace import WorkspaceError, checked_relative

MAX_OPTION_CHARS = 1000


@dataclass(frozen=True)
class ToolKind:
    summary: str
    crewai_class: str | None = None  # the crewai-tools class it stands for
    options: Mapping[str, str] = field(default_factory=dict)  # -> "path" | "url" | "text"
    credentials: tuple[str, ...] = ()  # environment variables it needs, each of them


CATALOGUE: Mapping[str, ToolKind] = {
    "calculator": ToolKind("arithmetic on an expression (no code runs)"),
    "current_time": ToolKind("the current UTC time"),
    "file_read": ToolKind("crewai-tools' FileReadTool in the tenant's workspace",
                          "FileReadTool", {"file_path": "path"}),
    "file_write": ToolKind("crewai-tools' FileWriterTool in the tenant's workspace",
                           "FileWriterTool"),
    "directory_read": ToolKind("crewai-tools' DirectoryReadTool in the tenant's workspace",
                               "DirectoryReadTool", {"directory": "path"}),
    # crewai-tools' RAG search tools, over the workspace with Kasal's embedder and index
    **{name: ToolKind(f"crewai-tools' {cls} over the tenant's workspace (Kasal's embeddings)",
                      cls, {option: "path"})
       for name, cls, option in (
           ("txt_search", "TXTSearchTool", "txt"), ("csv_search", "CSVSearchTool", "csv"),
           ("json_search", "JSONSearchTool", "json_path"), ("pdf_search", "PDFSearchTool", "pdf"),
           ("docx_search", "DOCXSearchTool", "docx"), ("mdx_search", "MDXSearchTool", "mdx"),
           ("directory_search", "DirectorySearchTool", "directory"))},
    # network tools, run as crewai-tools runs them
    "serper_search": ToolKind("Google search through serper.dev (crewai-tools' SerperDevTool)",
                              "SerperDevTool", credentials=("SERPER_API_KEY",)),
    "brave_search": ToolKind("Brave Search (crewai-tools' BraveSearchTool)",
                             "BraveSearchTool", credentials=("BRAVE_API_KEY",)),
    "serply_search": ToolKind("web search through Serply (crewai-tools' SerplyWebSearchTool)",
                              "SerplyWebSearchTool", credentials=("SERPLY_API_KEY",)),
    "scrape_website": ToolKind("a web page's text (crewai-tools' ScrapeWebsiteTool; public "
                               "addresses only)", "ScrapeWebsiteTool", {"website_url": "url"}),
}
BUILTIN_TOOL_NAMES = frozenset(CATALOGUE)
BY_CREWAI_CLASS = {kind.crewai_class: name for name, kind in CATALOGUE.items()
                   if kind.crewai_class}


def tool_config_problem(name: str, config: Mapping[str, object]) -> str | None:
    """What is wrong with ``config`` for tool ``name`` (None: nothing)."""
    kind = CATALOGUE.get(name)
    if kind is None:
        return f"unknown tool {name!r}"
    unknown = sorted(set(config) - set(kind.options))
    if unknown:
        takes = ", ".join(sorted(kind.options)) or "no options"
        return f"tool {name!r} takes {takes}; not {', '.join(unknown)}"
    for option, value in config.items():
        if not isinstance(value, str) or len(value) > MAX_OPTION_CHARS:
            return f"tool {name!r}: {option} must be text of at most {MAX_OPTION_CHARS} chars"
        if kind.options[option] == "path":
            try:
                checked_relative(value)
            except WorkspaceError as error:
                return f"tool {name!r}: {option}: {error}"
        if kind.options[option] == "url":
            try:
                parts = urlsplit(value)
                host = parts.hostname
            except ValueError:  # an unclosed [IPv6 literal, ...
                host = None
            if host is None or parts.scheme not in ("http", "https"):
                return f"tool {name!r}: {option} must be an http:// or https:// URL"
    return None


def tool_credentials_problem(name: str) -> str | None:
    """The environment variables tool ``name`` needs that this process lacks (None: none)."""
    kind = CATALOGUE.get(name)
    missing = [var for var in (kind.credentials if kind else ()) if not os.environ.get(var)]
    if not missing:
        return None
    return (f"tool {name!r} needs {' and '.join(missing)} in the environment of the processes "
            "that run it: set it there, or remove the tool")
