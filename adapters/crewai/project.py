"""Reads a CrewAI project or a single Kasal crew file into command messages.

A project (see ``project_layout``) is read the way CrewAI reads it: where its folder holds
a ``@CrewBase`` class, the crew that class builds is what gets defined (task → agent
bindings, tools, LLMs, process, manager); otherwise ``config/agents.yaml`` and
``config/tasks.yaml`` (and an optional ``config/crew.yaml`` with ``name``, ``process``,
``manager_llm`` and ``memory``). A crew file is one YAML document: ``{name, process,
manager_llm, memory, agents: {key: {...}}, tasks: {key: {...}}}``. Whatever Kasal does not
carry over is listed in ``CrewProject.dropped`` by name, file and line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from adapters.crewai.carry import COSMETIC, Dropped, instead
from adapters.crewai.project_code import from_code
from adapters.crewai.project_knowledge import KnowledgeDoc, carry_knowledge
from adapters.crewai.project_layout import (
    CrewFolder,
    ProjectError,
    find_crews,
    main_inputs,
    read_code,
)
from adapters.crewai.project_tools import carry_tool
from adapters.crewai.tool_names import BUILTIN_TOOL_NAMES
from commands import messages as m
from domain.artifacts import PLACEHOLDER, path_problem
from domain.envelope import canonical_json
from domain.project_code import ProjectTool

__all__ = ["CrewProject", "ProjectError", "load_project"]

AGENT_FIELDS = ("role", "goal", "backstory", "llm", "tools", "allow_delegation", "max_iter",
                "tool_config", "max_rpm", "max_execution_time")
TASK_FIELDS = ("description", "expected_output", "agent", "context", "output_file")
CREW_FIELDS = ("name", "process", "manager_llm", "memory", "agents", "tasks")


@dataclass(frozen=True)
class CrewProject:
    name: str
    process: str
    manager_llm: str | None
    memory: bool
    agents: dict[str, m.RegisterAgent]  # by the YAML key (the @agent method's name)
    tasks: list[dict[str, Any]]  # TaskFields with "agent" still the key
    fingerprint: str  # sha256 of the definitions: re-importing the same project is a no-op
    dropped: tuple[Dropped, ...] = ()
    default_inputs: dict[str, Any] = field(default_factory=dict)  # main.py's literal inputs
    files: dict[str, Path] = field(default_factory=dict)  # workspace path -> the project's file
    # the documents each agent (by key) and the crew ("") know
    knowledge: dict[str, list[KnowledgeDoc]] = field(default_factory=dict)

    def crew_command(self, agent_ids: dict[str, str],
                     knowledge_ids: list[str] | None = None) -> m.DefineCrew:
        tasks = [
            m.TaskFields(**{**task, "agent": agent_ids[task["agent"]] if task.get("agent")
                            else None})
            for task in self.tasks
        ]
        return m.DefineCrew(name=self.name, process=self.process,
                            agents=[agent_ids[key] for key in self.agents], tasks=tasks,
                            manager_llm=self.manager_llm, memory=self.memory,
                            knowledge_sources=knowledge_ids or [])


def _text(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _mapping(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not data:
        raise ProjectError(f"{where} must be a non-empty mapping of names to definitions")
    return data


def _read_yaml(path: Path) -> tuple[Any, dict[tuple[str, ...], int]]:
    """The document, and the line of each key (by its path of keys, two levels deep)."""
    if not path.is_file():
        raise ProjectError(f"{path} not found")
    text = path.read_text(encoding="utf-8")
    try:
        document, node = yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as error:
        raise ProjectError(f"{path} is not valid YAML: {error}") from None
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, at: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode) and len(at) < 3:
            for key, value in node.value:
                lines[(*at, str(key.value))] = key.start_mark.line + 1
                walk(value, (*at, str(key.value)))

    if node is not None:
        walk(node, ())
    return document, lines


def _under(lines: dict[tuple[str, ...], int], key: str) -> dict[tuple[str, ...], int]:
    return {k[1:]: v for k, v in lines.items() if len(k) > 1 and k[0] == key}


class _Builder:
    """Collects the commands and what is dropped, one agent and task at a time."""

    def __init__(self, default_llm: str | None, allow_code: bool = False) -> None:
        self.default_llm = default_llm
        self.allow_code = allow_code  # the project's own tools are carried (as pinned code)
        self.project_tools: dict[str, dict[str, ProjectTool]] = {}  # by agent, by sha256
        self.root: Path | None = None  # the project's root (its tools' paths start there)
        self.agents: dict[str, m.RegisterAgent] = {}
        self.tasks: list[dict[str, Any]] = []
        self.dropped: list[Dropped] = []
        self.tool_config: dict[str, dict[str, dict[str, str]]] = {}  # by agent, by tool
        self.files: dict[str, Path] = {}
        self.knowledge_docs: dict[str, list[KnowledgeDoc]] = {}  # by agent key; "": the crew

    def knowledge(self, key: str, who: str, sources: Any, where: str) -> None:
        docs, dropped = carry_knowledge(who, sources, where)
        self.dropped.extend(dropped)
        if docs:
            self.knowledge_docs[key] = docs

    def drop(self, what: str, where: str, why: str) -> None:
        self.dropped.append(Dropped(what, where, why))

    def tools(self, key: str, tools: list[Any], where: str) -> list[str]:
        kept = []
        for tool in tools:
            if isinstance(tool, str) and tool in BUILTIN_TOOL_NAMES:
                kept.append(tool)
                continue
            if isinstance(tool, dict):
                # the project's own tool class, by its line; a library's, by the agent's
                inside = tool.get("file") and not Path(str(tool["file"])).is_absolute()
                at = f"{tool['file']}:{tool['line']}" if inside else where
                carried = carry_tool(tool, f"agent {key!r}", at, self.root, self.allow_code)
                self.dropped.extend(carried.dropped)
                if carried.name is not None and carried.name not in kept:
                    kept.append(carried.name)
                    if carried.code is not None:
                        self.project_tools.setdefault(key, {})[carried.code.sha256] = \
                            carried.code
                    if carried.options:
                        self.tool_config.setdefault(key, {})[carried.name] = carried.options
                    self.files.update(carried.files)
                continue
            self.drop(f"agent {key!r}: tool {tool!r}", where,
                      f"Kasal has no such tool yet (it has {', '.join(sorted(BUILTIN_TOOL_NAMES))})"
                      ": the agent runs without it")
        return kept

    def agent(self, key: str, values: dict[str, Any], where: str) -> None:
        if self.default_llm and not values.get("llm"):
            values["llm"] = self.default_llm
        if key in self.tool_config:
            values["tool_config"] = {**self.tool_config[key], **(values.get("tool_config") or {})}
        if key in self.project_tools:
            values["project_tools"] = {sha: tool.as_payload()
                                       for sha, tool in self.project_tools[key].items()}
        for limit in ("max_rpm", "max_execution_time"):  # CrewAI reads 0 as no limit
            if str(values.get(limit)).strip() in ("0", "None", ""):
                values.pop(limit, None)
        try:
            self.agents[key] = m.RegisterAgent(**values)
        except ValueError as error:
            raise ProjectError(f"{where}: agent {key!r}: {error}") from None

    def task(self, key: str, values: dict[str, Any], where: str, process: str) -> None:
        agent = values.get("agent")
        if agent is not None and agent not in self.agents:
            raise ProjectError(f"{where}: task {key!r}: agent {agent!r} is not defined in the "
                               f"agents ({', '.join(self.agents)})")
        if agent is None and process == "sequential":
            raise ProjectError(
                f"{where}: task {key!r} has no agent, which a sequential crew needs: bind it "
                f"in config/tasks.yaml (agent: <name>) or in crew.py (Task(..., "
                f"agent=self.<name>())); the agents: {', '.join(self.agents)}")
        output_file = self.output_file(key, values.get("output_file"), where)
        self.tasks.append({
            "name": key, "description": _text(values.get("description", "")),
            "expected_output": _text(values.get("expected_output", "")), "agent": agent,
            "context": [str(c) for c in values.get("context") or []],
            **({"output_schema": values["output_schema"]} if values.get("output_schema") else {}),
            **({"output_file": output_file} if output_file else {}),
        })

    def output_file(self, key: str, value: Any, where: str) -> str | None:
        """A task's output_file as an artifact path (CrewAI drops a leading '/'); one that
        cannot name an artifact is reported, and the answer stays in the result only."""
        if not value:
            return None
        path = str(_text(value)).strip().lstrip("/")
        problem = path_problem(PLACEHOLDER.sub("x", path))
        if problem is None:
            return path
        self.drop(f"task {key!r}: output_file = {path!r}", where,
                  f"no artifact is kept (an artifact path {problem}); the answer is in the "
                  "execution's result")
        return None

    def from_yaml(self, agents: dict[str, Any], tasks: dict[str, Any], process: str,
                  where: tuple[str, dict[tuple[str, ...], int], str, dict[tuple[str, ...], int]]
                  ) -> None:
        agents_file, agent_lines, tasks_file, task_lines = where
        for key, spec in agents.items():
            at = f"{agents_file}:{agent_lines.get((str(key),), 0)}"
            spec = _mapping(spec, f"{at}: agent {key!r}")
            values: dict[str, Any] = {}
            for name, value in spec.items():
                line = f"{agents_file}:{agent_lines.get((str(key), str(name)), 0)}"
                if name == "tools":
                    values["tools"] = self.tools(str(key), list(value or []), line)
                elif name in AGENT_FIELDS:
                    if value is not None:
                        values[name] = _text(value)
                elif name not in COSMETIC:
                    self.drop(f"agent {key!r}: {name}", line, instead("agent", str(name)))
            self.agent(str(key), values, at)
        for key, spec in tasks.items():
            at = f"{tasks_file}:{task_lines.get((str(key),), 0)}"
            spec = _mapping(spec, f"{at}: task {key!r}")
            for name in spec:
                if name not in TASK_FIELDS and name not in COSMETIC:
                    self.drop(f"task {key!r}: {name}",
                              f"{tasks_file}:{task_lines.get((str(key), str(name)), 0)}",
                              instead("task", str(name)))
            self.task(str(key), spec, at, process)

    def fingerprint(self, crew: dict[str, Any]) -> str:
        return hashlib.sha256(canonical_json(self.definition(crew))).hexdigest()[:16]

    def definition(self, crew: dict[str, Any]) -> dict[str, Any]:
        """What the fingerprint covers: a field added later counts only when set, so a
        project imported before it keeps its fingerprint (its import stays a no-op)."""
        agents = {}
        for key, agent in self.agents.items():
            dumped = agent.model_dump(mode="json")
            for optional in ("tool_config", "project_tools"):
                if not dumped.get(optional):
                    dumped.pop(optional, None)
            for limit in ("max_rpm", "max_execution_time"):
                if dumped.get(limit) is None:
                    dumped.pop(limit, None)
            agents[key] = dumped
        definition = {**crew, "tasks": self.tasks, "agents": agents}
        if self.knowledge_docs:  # counts only when set (see above)
            definition["knowledge"] = {
                key: [{"name": d.name, "media_type": d.media_type, "origin": d.origin,
                       "sha256": hashlib.sha256(d.text.encode()).hexdigest()} for d in docs]
                for key, docs in sorted(self.knowledge_docs.items())}
        return definition


def load_project(path: Path, default_llm: str | None = None,
                 crew: str | None = None, allow_code: bool = False) -> CrewProject:
    """A CrewAI project (root, ``src/<pkg>`` or ``config/``) or a Kasal crew file;
    ``allow_code``: its own tools are carried over as pinned code (else reported)."""
    builder = _Builder(default_llm, allow_code)
    if path.is_file():
        document, lines = _read_yaml(path)
        document = _mapping(document, str(path))
        for name in document:
            if name not in CREW_FIELDS:
                builder.drop(f"crew: {name}", f"{path}:{lines.get((str(name),), 0)}",
                             instead("crew", str(name)))
        settings = {"name": document.get("name") or path.stem,
                    "process": document.get("process", "sequential"),
                    "manager_llm": document.get("manager_llm"),
                    "memory": bool(document.get("memory", False))}
        agents = _mapping(document.get("agents"), f"{path}: agents")
        tasks = _mapping(document.get("tasks"), f"{path}: tasks")
        builder.from_yaml(agents, tasks, str(settings["process"]),
                          (str(path), _under(lines, "agents"), str(path), _under(lines, "tasks")))
        return _project(builder, settings, {})
    folder = find_crews(path, crew)
    builder.root = folder.project_root
    return _from_folder(builder, folder)


def _from_folder(builder: _Builder, folder: CrewFolder) -> CrewProject:
    config = folder.folder / "config"
    crew_file = config / "crew.yaml"
    settings: dict[str, Any] = {}
    if crew_file.exists():
        document, crew_lines = _read_yaml(crew_file)
        settings = dict(_mapping(document, folder.relative(crew_file)))
        for name in list(settings):
            if name not in CREW_FIELDS[:4]:  # name, process, manager_llm, memory
                builder.drop(f"crew: {name}",
                             f"{folder.relative(crew_file)}:{crew_lines.get((str(name),), 0)}",
                             instead("crew", str(name)))
                del settings[name]
    settings.setdefault("name", folder.name)
    if folder.has_code:
        lines = {kind: (folder.relative(file), _read_yaml(file)[1])
                 for kind, file in (("agent", config / "agents.yaml"),
                                    ("task", config / "tasks.yaml")) if file.is_file()}
        from_code(builder, read_code(folder), settings, lines)
    else:
        agents, agent_lines = _read_yaml(config / "agents.yaml")
        tasks, task_lines = _read_yaml(config / "tasks.yaml")
        settings.setdefault("process", "sequential")
        builder.from_yaml(
            _mapping(agents, folder.relative(config / "agents.yaml")),
            _mapping(tasks, folder.relative(config / "tasks.yaml")), str(settings["process"]),
            (folder.relative(config / "agents.yaml"), agent_lines,
             folder.relative(config / "tasks.yaml"), task_lines))
    inputs, computed = main_inputs(folder)
    for key, where in computed:
        builder.drop(f"input {key!r}", where,
                     f"computed when main.py runs: give it with --input {key}=VALUE")
    return _project(builder, settings, inputs)


def _project(builder: _Builder, settings: dict[str, Any], inputs: dict[str, Any]) -> CrewProject:
    crew: dict[str, Any] = {
        "name": str(settings["name"]), "process": str(settings.get("process", "sequential")),
        "manager_llm": settings.get("manager_llm"), "memory": bool(settings.get("memory", False)),
    }
    return CrewProject(name=crew["name"], process=crew["process"],
                       manager_llm=crew["manager_llm"], memory=crew["memory"],
                       agents=builder.agents, tasks=builder.tasks,
                       fingerprint=builder.fingerprint(crew), dropped=tuple(builder.dropped),
                       default_inputs=inputs, files=dict(builder.files),
                       knowledge=dict(builder.knowledge_docs))

