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

CONFINED = "Kasal confines file tools to the tenant's workspace"


@dataclass
class CarriedTool:
    name: str | None  # None: not carried
    options: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # workspace path -> project file
    dropped: list[Dropped] = field(default_factory=list)


def carry_tool(tool: dict[str, Any], who: str, where: str, root: Path | None) -> CarriedTool:
    cls, module = str(tool.get("class")), str(tool.get("module"))
    name = BY_CREWAI_CLASS.get(cls) if module.startswith("crewai_tools") else None
    label = f"{who}: tool {cls} ({module})"
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


def _inside(path: str, root: Path | None) -> str | None:
    """``path`` (as CrewAI resolves it, against the project root) relative to the root."""
    if root is None:
        return None if Path(path).is_absolute() or ".." in Path(path).parts else path
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root.resolve()):
        return None
    return resolved.relative_to(root.resolve()).as_posix()
