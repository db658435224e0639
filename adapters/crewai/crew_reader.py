"""Reads the crews a CrewAI project's code builds, the way CrewAI builds them.

Run in a subprocess with the project's folder on the path (its code runs, as ``crewai run``
would run it): ``python -m adapters.crewai.crew_reader FOLDER`` finds the ``@CrewBase``
classes of the ``.py`` files in FOLDER, builds each crew through its ``@crew`` method and
prints one JSON document: every agent and task by its method name with the fields that
differ from CrewAI's defaults, described as data (a tool by class and configuration, an
LLM by model, a pydantic output by its JSON Schema, a function by file and line), or the
file, line and message of what stopped the code from loading. It never runs a crew.
``adapters.crewai.project`` decides what Kasal carries and reports the rest.
"""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from adapters.crewai.code_reader import tool_code
from adapters.crewai.reader_stubs import no_knowledge_storage, no_rag_adapter

# fields CrewAI sets by itself (ids, caches, back-references, executors)
INTERNAL = frozenset({
    "id", "i18n", "security_config", "agents", "tasks", "crew", "agent_executor",
    "tools_handler", "cache_handler", "formatting_errors", "config", "after_kickoff_callbacks",
    "before_kickoff_callbacks", "used_tools", "delegations", "processed_by_agents",
    "retry_count", "output", "start_time", "end_time", "execution_duration", "name",
    "verbose", "original_role", "original_goal", "original_backstory", "original_description",
    "original_expected_output", "prompt_context", "knowledge", "adapted_agent", "_token_process",
})
TOOL_INTERNAL = frozenset({"name", "description", "args_schema", "env_vars",
                           "package_dependencies", "current_usage_count", "adapter"})
DEPTH = 4
CREW_DECORATORS = {"agent", "task", "crew", "before_kickoff", "after_kickoff"}


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def crew_classes(source: str, filename: str) -> dict[str, dict[str, Any]]:
    """The ``@CrewBase`` classes in a module's source: line and decorated methods by kind."""
    found: dict[str, dict[str, Any]] = {}
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.ClassDef) and any(
            _decorator_name(d) == "CrewBase" for d in node.decorator_list
        ):
            methods: dict[str, dict[str, int]] = {kind: {} for kind in CREW_DECORATORS}
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    for decorator in item.decorator_list:
                        kind = _decorator_name(decorator)
                        if kind in CREW_DECORATORS:
                            methods[kind][item.name] = item.lineno
            found[node.name] = {"line": node.lineno, **methods}
    return found


class Describer:
    """Plain data for CrewAI's objects; agents and tasks by the method that builds them."""

    def __init__(self, names: dict[int, str], root: Path) -> None:
        self.names = names
        self.root = root

    def where(self, obj: Any) -> dict[str, Any]:
        try:
            file = inspect.getsourcefile(obj) or ""
            line = inspect.getsourcelines(obj)[1]
        except (TypeError, OSError):
            return {}
        return {"file": self._relative(file), "line": line}

    def _relative(self, file: str) -> str:
        try:
            return str(Path(file).resolve().relative_to(self.root))
        except ValueError:
            return file

    def value(self, value: Any, depth: int = 0) -> Any:  # one case per kind
        from crewai import Agent, Task
        from crewai.knowledge.source.base_knowledge_source import BaseKnowledgeSource
        from crewai.llms.base_llm import BaseLLM
        from crewai.tools import BaseTool
        from pydantic import BaseModel

        if value is None or isinstance(value, bool | int | float | str):
            return value
        if isinstance(value, enum.Enum):
            return self.value(value.value, depth)
        if depth > DEPTH:
            return {"object": type(value).__qualname__}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v, depth + 1) for v in value]
        if isinstance(value, dict):
            return {str(k): self.value(v, depth + 1) for k, v in value.items()}
        if isinstance(value, Agent | Task):
            kind = "agent" if isinstance(value, Agent) else "task"
            return {kind: self.names.get(id(value)) or getattr(value, "role", None)
                    or getattr(value, "name", None)}
        if isinstance(value, BaseLLM):
            return {"llm": model_name(value), "settings": llm_settings(value)}
        if isinstance(value, BaseTool):
            return self.tool(value, depth)
        if isinstance(value, BaseKnowledgeSource):
            return self.knowledge(value)
        if isinstance(value, type) and issubclass(value, BaseModel):
            return {"model": value.__qualname__, "schema": value.model_json_schema(),
                    **self.where(value)}
        if isinstance(value, BaseModel):
            return {"object": type(value).__qualname__, "module": type(value).__module__,
                    "fields": {f: self.value(getattr(value, f, None), depth + 1)
                               for f in sorted(value.model_fields_set)}}
        if callable(value):
            target = inspect.unwrap(value)
            return {"callable": getattr(target, "__qualname__", type(value).__qualname__),
                    **self.where(target)}
        return {"object": type(value).__qualname__}

    def knowledge(self, source: Any) -> dict[str, Any]:
        """A knowledge source by its class and the text it read, per file (as CrewAI's
        class parsed it: a PDF's text, a JSON file flattened...)."""
        content = getattr(source, "content", None)
        documents: list[dict[str, str | None]]
        if isinstance(content, dict):
            documents = [{"origin": self._relative(str(path)), "text": str(text)}
                         for path, text in content.items()]
        elif isinstance(content, str):
            documents = [{"origin": None, "text": content}]
        else:
            documents = []
        return {"knowledge": type(source).__qualname__, "module": type(source).__module__,
                "documents": documents, "chunk_size": getattr(source, "chunk_size", None),
                "chunk_overlap": getattr(source, "chunk_overlap", None)}

    def tool(self, tool: Any, depth: int) -> dict[str, Any]:
        kind = type(tool)
        described: dict[str, Any] = {
            "tool": tool.name, "class": kind.__qualname__, "module": kind.__module__,
            "config": {f: self.value(v, depth + 1) for f, v in self.fields(tool).items()
                       if f not in TOOL_INTERNAL},
        }
        function = getattr(tool, "func", None)
        described.update(self.where(function if callable(function) else kind))
        code = tool_code(tool, function if callable(function) else None, self.root)
        if code is not None:
            described["code"] = code
        return described

    def fields(self, obj: Any) -> dict[str, Any]:
        """The fields that differ from the model's defaults (as CrewAI resolved them)."""
        import warnings

        out: dict[str, Any] = {}
        for name, field in type(obj).model_fields.items():
            if name in INTERNAL:
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                current = getattr(obj, name, None)
            try:
                default = field.get_default(call_default_factory=True)
                unchanged = bool(current == default)
            except Exception:  # a default that cannot be built or compared
                unchanged = False
            if not unchanged and not type(current).__name__.startswith("_Not"):
                out[name] = self.value(current)
        return out


def llm_settings(llm: Any) -> list[str]:
    """The settings an LLM object has beyond what its model string alone would give."""
    from crewai import LLM

    try:
        plain = LLM(model=model_name(llm))
    except Exception:  # the model string alone cannot be built: all differs
        return sorted(llm.model_fields_set - {"model"})
    settings = []
    for name in type(llm).model_fields:
        mine, theirs = getattr(llm, name, None), getattr(plain, name, None)
        if name == "additional_params":  # the agent adds its callbacks there
            mine = {k: v for k, v in (mine or {}).items() if k != "callbacks"}
            theirs = {k: v for k, v in (theirs or {}).items() if k != "callbacks"}
        try:
            same = bool(mine == theirs)
        except Exception:  # values that cannot be compared count as set
            same = False
        if not same:
            settings.append(name)
    return sorted(settings)


def model_name(llm: Any) -> str:
    model = str(getattr(llm, "model", "") or "")
    provider = getattr(llm, "provider", None)
    if "/" in model or not provider:
        return model
    return f"{provider}/{model}"


def _failure(error: BaseException, root: Path) -> dict[str, Any]:
    """The file and line in the project where loading stopped, and what to do."""
    file, line = "", 0
    if isinstance(error, SyntaxError) and error.filename:
        file, line = error.filename, error.lineno or 0
    else:
        for frame in traceback.extract_tb(error.__traceback__):
            if Path(frame.filename).resolve().is_relative_to(root):
                file, line = frame.filename, frame.lineno or 0
    message = f"{type(error).__name__}: {error}"
    if isinstance(error, ModuleNotFoundError) and error.name:
        package = error.name.split(".")[0].replace("_", "-")
        message = (f"the project imports {error.name!r}, which is not installed beside Kasal: "
                   f"install it (pip install {package}) or remove the import")
    if file and Path(file).resolve().is_relative_to(root):
        file = str(Path(file).resolve().relative_to(root))
    if not file:
        message += " (raised inside CrewAI while it built the crew: do crew.py and the names " \
                   "in config/agents.yaml and config/tasks.yaml agree?)"
    return {"file": file, "line": line, "message": message}


def package_root(folder: Path) -> Path:
    """The folder that goes on the path: the first parent that is not a package."""
    root = folder
    while (root / "__init__.py").is_file():
        root = root.parent
    return root


def read(folder: Path, project_root: Path) -> dict[str, Any]:
    no_knowledge_storage()
    no_rag_adapter()
    folder = folder.resolve()
    root = package_root(folder)
    sys.path[:0] = [str(root), str(project_root)]
    crews = []
    for file in sorted(folder.glob("*.py")):
        source = file.read_text(encoding="utf-8", errors="replace")
        if "CrewBase" not in source:
            continue
        module_name = ".".join(file.relative_to(root).with_suffix("").parts)
        try:
            classes = crew_classes(source, str(file))
            module = importlib.import_module(module_name)
            for class_name, methods in classes.items():
                crews.append(read_crew(getattr(module, class_name), methods, file, project_root))
        except Exception as error:  # the project's own code failed: report it
            return {"error": _failure(error, project_root)}
    return {"crews": crews}


def read_crew(cls: Any, methods: dict[str, Any], file: Path,
              project_root: Path) -> dict[str, Any]:
    instance = cls()
    if not methods["crew"]:
        raise TypeError(f"{cls.__name__} has no @crew method")
    crew = getattr(instance, next(iter(methods["crew"])))()
    names: dict[int, str] = {}
    for kind in ("agent", "task"):
        for name in methods[kind]:
            names[id(getattr(instance, name)())] = name
    describe = Describer(names, project_root)
    where = str(file.relative_to(project_root)) if file.is_relative_to(project_root) else str(file)
    agents_config = dict(getattr(instance, "agents_config", None) or {})
    tasks_config = dict(getattr(instance, "tasks_config", None) or {})

    def entry(obj: Any, kind: str) -> dict[str, Any]:
        key = names.get(id(obj), "")
        yaml_fields = sorted((agents_config if kind == "agent" else tasks_config).get(key) or {})
        line = methods[kind].get(key) or next(iter(methods["crew"].values()), 0)
        return {"key": key or getattr(obj, "role", ""), "file": where, "line": line,
                "yaml": yaml_fields, "fields": describe.fields(obj),
                "unknown": [f for f in yaml_fields if f not in type(obj).model_fields]}

    manager = getattr(crew, "manager_agent", None)
    return {
        "class": cls.__name__, "file": where, "line": methods["line"],
        "name": getattr(instance, "_crew_name", None) or cls.__name__,
        "agents": [entry(a, "agent") for a in crew.agents if a is not manager],
        "tasks": [entry(t, "task") for t in crew.tasks],
        "fields": {k: v for k, v in describe.fields(crew).items() if k != "manager_agent"},
        "manager_agent": None if manager is None else entry(manager, "agent"),
        "hooks": {name: line for kind in ("before_kickoff", "after_kickoff")
                  for name, line in methods[kind].items()},
        "default_llm": _default_model(),
    }


def _default_model() -> str:
    from crewai.constants import DEFAULT_LLM_MODEL

    return os.environ.get("MODEL") or os.environ.get("OPENAI_MODEL_NAME") or DEFAULT_LLM_MODEL


def main() -> None:
    folder, project_root = Path(sys.argv[1]), Path(sys.argv[2]).resolve()
    os.chdir(project_root)
    out = sys.stdout
    sys.stdout = sys.stderr  # what the project's code prints stays out of the document
    try:
        document = read(folder, project_root)
    except Exception as error:  # reported as data, the caller prints one line
        document = {"error": _failure(error, project_root)}
    out.write(json.dumps(document, default=str))
    out.flush()


if __name__ == "__main__":
    main()
