"""A tool the crew reader found in the project's own code, described as what would run it
elsewhere (``domain.project_code``): its module, the global that makes it, and its package's
source. Imported by ``crew_reader`` in its subprocess, with the project's code loaded."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def tool_code(tool: Any, function: Any, root: Path) -> dict[str, Any] | None:
    """A tool defined in the project's own code as what would run it elsewhere: the
    module and attribute that make it, and the ``.py`` files of its top-level package
    (or its module alone), by their paths from the folder on the path."""
    target = function if function is not None else type(tool)
    module_name = getattr(target, "__module__", "") or ""
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if module is None or not file or not Path(file).resolve().is_relative_to(root):
        return None
    if _installed(Path(file).resolve()):  # a library (a venv inside the project)
        return None
    if function is None:
        attribute, kind = type(tool).__qualname__, "class"
    else:
        attribute = next((name for name, value in vars(module).items() if value is tool), "")
        kind = "object"
    parts = module_name.split(".")
    path = Path(file).resolve()
    base = path.parent if path.name != "__init__.py" else path.parent.parent
    for _ in parts[1:]:
        base = base.parent
    top = base / parts[0]
    files = sorted(top.rglob("*.py")) if top.is_dir() else [path]
    sources = {str(f.relative_to(base)): f.read_text(encoding="utf-8", errors="replace")
               for f in files if not any(p.startswith((".", "__pycache__"))
                                         for p in f.relative_to(base).parts)}
    schema = getattr(tool, "args_schema", None)
    return {"module": module_name, "attribute": attribute, "kind": kind,
            "name": str(tool.name), "description": str(tool.description or ""),
            "args_schema": schema.model_json_schema() if schema is not None else {},
            "files": sources}


def _installed(path: Path) -> bool:
    """Whether ``path`` is an installed package's (site-packages, the interpreter's own)."""
    import sysconfig

    if {"site-packages", "dist-packages"} & set(path.parts):
        return True
    roots = {sysconfig.get_path(name) for name in ("purelib", "platlib", "stdlib")}
    return any(root and path.is_relative_to(Path(root).resolve()) for root in roots)
