"""The built-in tools an agent may name in its ``tools`` list: Kasal's own (local, no
network), crewai-tools' file tools confined to the tenant's workspace, and crewai-tools'
network tools (``network_tools``).

Each entry of ``BUILTIN_TOOLS`` builds a fresh CrewAI tool (tools keep usage counters, so
runs never share an instance). ``calculator`` is in ``adapters.crewai.calculator``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from crewai.tools import BaseTool
from pydantic import BaseModel

from adapters.crewai.calculator import CalculatorError, CalculatorTool, evaluate
from adapters.crewai.code_tools import ProjectCode
from adapters.crewai.tool_names import (
    BUILTIN_TOOL_NAMES,
    tool_config_problem,
    tool_credentials_problem,
)
from adapters.crewai.workspace import Workspace
from domain.project_code import CODE_OFF, PREFIX, ProjectTool, is_project_tool
from streams.engine import RunHooks


class CurrentTimeInput(BaseModel):
    pass


class CurrentTimeTool(BaseTool):
    name: str = "current_time"
    description: str = "Returns the current date and time in UTC, in ISO 8601 format."
    args_schema: type[BaseModel] = CurrentTimeInput

    def _run(self) -> str:
        return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class ToolContext:
    """What a tool is built with: the run's tenant's workspace, and the run's hooks (the
    search tools search through them; None outside a run)."""

    workspace: Workspace
    hooks: RunHooks | None = None


Builder = Callable[[ToolContext, Mapping[str, str]], BaseTool]


def _file_tool(name: str) -> Builder:
    """The builder of crewai-tools' file tool ``name`` (crewai-tools is imported on first use:
    it takes seconds); the tool's options are its builder's keyword arguments."""

    def build(context: ToolContext, options: Mapping[str, str]) -> BaseTool:
        from adapters.crewai import file_tools

        builder: Callable[..., BaseTool] = getattr(file_tools, name)
        return builder(context.workspace, **options)

    return build


def _network_tool(name: str) -> Builder:
    """The builder of crewai-tools' network tool ``name`` (no workspace: it fetches)."""

    def build(_: ToolContext, options: Mapping[str, str]) -> BaseTool:
        from adapters.crewai import network_tools

        builder: Callable[..., BaseTool] = getattr(network_tools, name)
        return builder(**options)

    return build


def _search_tool(name: str) -> Builder:
    """The builder of a RAG search tool over the workspace (``search_tools``)."""

    def build(context: ToolContext, options: Mapping[str, str]) -> BaseTool:
        from adapters.crewai.search_tools import KINDS, search_tool

        path = options.get(KINDS[name].file_option)
        return search_tool(name, context.workspace, context.hooks, path)

    return build


# each builds a fresh instance (tools keep usage counters, so runs never share one) from the
# tenant's workspace and the agent's options for it (crewai-tools is imported on first use)
BUILTIN_TOOLS: dict[str, Builder] = {
    "calculator": lambda _, __: CalculatorTool(),
    "current_time": lambda _, __: CurrentTimeTool(),
    "file_read": _file_tool("file_read"),
    "file_write": _file_tool("file_write"),
    "directory_read": _file_tool("directory_read"),
    "serper_search": _network_tool("serper_search"),
    "brave_search": _network_tool("brave_search"),
    "serply_search": _network_tool("serply_search"),
    "scrape_website": _network_tool("scrape_website"),
    **{name: _search_tool(name) for name in ("txt_search", "csv_search", "json_search",
                                             "pdf_search", "docx_search", "mdx_search",
                                             "directory_search")},
}


def tool_names() -> frozenset[str]:
    return frozenset(BUILTIN_TOOLS)


assert tool_names() == BUILTIN_TOOL_NAMES, "adapters/tool_names.py must list every built-in tool"


def check_tools(names: tuple[str, ...] | list[str],
                config: Mapping[str, Mapping[str, str]] | None = None,
                project_tools: Mapping[str, ProjectTool] | None = None,
                allow_project_code: bool = False) -> None:
    """Unknown names raise ``KeyError``; options a tool does not take, a path outside
    the workspace, credentials missing from this process's environment, or a project's own
    tool where this process may not run project code, ``ValueError``."""
    bundles = project_tools or {}
    unknown = [name for name in names if name not in BUILTIN_TOOLS
               and not (is_project_tool(name) and name[len(PREFIX):] in bundles)]
    if unknown:
        raise KeyError(
            f"unknown tool(s): {', '.join(sorted(unknown))}; "
            f"available: {', '.join(sorted(BUILTIN_TOOLS))}"
        )
    for name in names:
        if is_project_tool(name):
            if not allow_project_code:
                raise ValueError(f"the agent names project code ({bundles[name[len(PREFIX):]].name}"
                                 f", {name}); {CODE_OFF}")
            continue
        problem = tool_config_problem(name, (config or {}).get(name, {})) or \
            tool_credentials_problem(name)
        if problem is not None:
            raise ValueError(problem)


def build_tools(names: tuple[str, ...] | list[str], workspace: Workspace,
                config: Mapping[str, Mapping[str, str]] | None = None,
                hooks: RunHooks | None = None,
                project_tools: Mapping[str, ProjectTool] | None = None,
                code: ProjectCode | None = None) -> list[BaseTool]:
    """Fresh instances of the named tools, checked first (``check_tools``); a project's own
    tools run in ``code``'s processes (None: project code is not allowed here)."""
    check_tools(names, config, project_tools, allow_project_code=code is not None)
    context = ToolContext(workspace, hooks)
    tools = []
    for name in names:
        if is_project_tool(name):
            assert code is not None and project_tools is not None  # check_tools saw to it
            tools.append(code.tool(project_tools[name[len(PREFIX):]]))
        else:
            tools.append(BUILTIN_TOOLS[name](context, (config or {}).get(name, {})))
    return tools


__all__ = [
    "BUILTIN_TOOLS",
    "CalculatorError",
    "CalculatorTool",
    "CurrentTimeTool",
    "build_tools",
    "evaluate",
    "tool_names",
]
