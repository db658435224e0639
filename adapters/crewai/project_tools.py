"""A project's crewai-tools objects as Kasal tools with their options.

A crewai-tools class Kasal has (``tool_names.CATALOGUE``) becomes that tool; its path
options, which CrewAI resolves against the project root, become the same relative path in
the tenant's workspace, and the file is copied there at import. What else the object was
configured with is reported; a path outside the project drops the tool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.crewai.carry import Dropped
from adapters.crewai.tool_names import BY_CREWAI_CLASS, CATALOGUE
from domain.errors import InvalidDefinition
from domain.project_code import ProjectTool, check_project_tool

CONFINED = "Kasal confines file tools to the tenant's workspace"
CODE_REFUSED = ("a project's own tool is code, which this server does not run: the operator "
                "sets KASAL_ALLOW_PROJECT_CODE=true to carry it over (its source pinned by "
                "hash); the agent runs without it")


@dataclass
class CarriedTool:
    name: str | None  # None: not carried
    options: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # workspace path -> project file
    dropped: list[Dropped] = field(default_factory=list)
    code: ProjectTool | None = None  # a project's own tool: its bundle (name: its pin)


def carry_tool(tool: dict[str, Any], who: str, where: str, root: Path | None,
               allow_code: bool = False) -> CarriedTool:
    cls, module = str(tool.get("class")), str(tool.get("module"))
    name = BY_CREWAI_CLASS.get(cls) if module.startswith("crewai_tools") else None
    label = f"{who}: tool {cls} ({module})"
    if tool.get("code") and not module.startswith("crewai_tools"):
        if tool["code"]["kind"] == "object":  # a @tool function: its class is CrewAI's Tool
            label = f"{who}: tool {tool['code']['name']!r} ({tool['code']['module']})"
        if not allow_code:
            return CarriedTool(None, dropped=[Dropped(label, where, CODE_REFUSED)])
        return carry_code(tool, label, where)
    if name is None:
        available = ", ".join(sorted(BY_CREWAI_CLASS))
        return CarriedTool(None, dropped=[Dropped(
            label, where, f"Kasal has no such tool yet (of crewai-tools it has {available})"
                          ": the agent runs without it")])
    kind = CATALOGUE[name]
    carried = CarriedTool(name)
    for option, value in (tool.get("config") or {}).items():
        if option not in kind.options:
            why = CONFINED if option == "base_dir" else "ignored: Kasal does not carry it over"
            carried.dropped.append(Dropped(f"{label} option {option}", where, why))
            continue
        if kind.options[option] == "path" and isinstance(value, str):
            relative = _inside(value, root)
            if relative is None:
                return CarriedTool(None, dropped=[Dropped(
                    f"{label} {option}={value!r}", where,
                    f"the path is outside the project; {CONFINED}: the agent runs without it")])
            carried.options[option] = relative
            source = (root / relative) if root is not None else None
            if source is not None and source.is_file():
                carried.files[relative] = source
        elif isinstance(value, str):
            carried.options[option] = value
    return carried


def _plain(value: Any) -> bool:
    """Data a tool's constructor can take again (no object the reader could only name)."""
    if isinstance(value, dict):
        return not ({"object", "callable", "llm", "tool", "model"} & set(value)) and all(
            _plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, bool | int | float | str)


def carry_code(tool: dict[str, Any], label: str, where: str) -> CarriedTool:
    """A project's own tool as a pinned bundle; an option that is not data is reported (the
    tool is built without it), a bundle over the limits drops the tool, naming them."""
    code = tool["code"]
    dropped = []
    config: dict[str, Any] = {}
    if code["kind"] == "class":
        for option, value in (tool.get("config") or {}).items():
            if _plain(value):
                config[option] = value
            else:
                dropped.append(Dropped(f"{label} option {option}", where,
                                       "not data Kasal can record: the tool is built without it"))
    if not code.get("attribute"):
        return CarriedTool(None, dropped=[Dropped(label, where, "it is not a global of its "
                                                  "module: the agent runs without it")])
    bundle = ProjectTool(name=code["name"], description=code["description"],
                         args_schema=code["args_schema"], module=code["module"],
                         attribute=code["attribute"], kind=code["kind"],
                         files=code["files"], config=config)
    try:
        check_project_tool("the tool", bundle)
    except InvalidDefinition as error:
        return CarriedTool(None, dropped=[Dropped(label, where,
                                                  f"{error}: the agent runs without it")])
    return CarriedTool(bundle.ref, dropped=dropped, code=bundle)


def _inside(path: str, root: Path | None) -> str | None:
    """``path`` (as CrewAI resolves it, against the project root) relative to the root."""
    if root is None:
        return None if Path(path).is_absolute() or ".." in Path(path).parts else path
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root.resolve()):
        return None
    return resolved.relative_to(root.resolve()).as_posix()
