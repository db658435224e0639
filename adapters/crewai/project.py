"""Reads a standard CrewAI project (``config/agents.yaml``, ``config/tasks.yaml``, the layout
``crewai create crew`` makes) or a single Kasal crew file into command messages.

A crew file is one YAML document: ``{name, process, manager_llm, agents: {key: {...}},
tasks: {key: {...}}}`` with the same fields as the two CrewAI files. A project directory may
add ``config/crew.yaml`` with ``name``, ``process`` and ``manager_llm``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from commands import messages as m
from domain.envelope import canonical_json

AGENT_FIELDS = ("role", "goal", "backstory", "llm", "tools", "allow_delegation", "max_iter")


class ProjectError(ValueError):
    """The project's files are missing or do not describe a crew; the message says which."""


@dataclass(frozen=True)
class CrewProject:
    name: str
    process: str
    manager_llm: str | None
    agents: dict[str, m.RegisterAgent]  # by the YAML key
    tasks: list[dict[str, Any]]  # TaskFields with "agent" still the YAML key
    fingerprint: str  # sha256 of the definitions: re-importing the same project is a no-op

    def crew_command(self, agent_ids: dict[str, str]) -> m.DefineCrew:
        tasks = [
            m.TaskFields(**{**task, "agent": agent_ids[task["agent"]] if task.get("agent")
                            else None})
            for task in self.tasks
        ]
        return m.DefineCrew(
            name=self.name,
            process=self.process,
            agents=[agent_ids[key] for key in self.agents],
            tasks=tasks,
            manager_llm=self.manager_llm,
        )


def _text(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _mapping(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict) or not data:
        raise ProjectError(f"{where} must be a non-empty mapping of names to definitions")
    return data


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ProjectError(f"{path} not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ProjectError(f"{path} is not valid YAML: {error}") from None


def load_project(path: Path, default_llm: str | None = None) -> CrewProject:
    """A CrewAI project directory or a Kasal crew file, as commands."""
    if path.is_dir():
        agents = _mapping(_read_yaml(path / "config" / "agents.yaml"), "config/agents.yaml")
        tasks = _mapping(_read_yaml(path / "config" / "tasks.yaml"), "config/tasks.yaml")
        crew_file = path / "config" / "crew.yaml"
        crew = _read_yaml(crew_file) if crew_file.exists() else {}
        name = (crew or {}).get("name") or path.resolve().name
    else:
        document = _mapping(_read_yaml(path), str(path))
        agents = _mapping(document.get("agents"), f"{path}: agents")
        tasks = _mapping(document.get("tasks"), f"{path}: tasks")
        crew = document
        name = document.get("name") or path.stem
    crew = crew or {}
    agent_commands: dict[str, m.RegisterAgent] = {}
    for key, spec in agents.items():
        spec = _mapping(spec, f"agent {key!r}")
        unknown = set(spec) - set(AGENT_FIELDS) - {"verbose"}
        if unknown:
            raise ProjectError(f"agent {key!r}: unknown fields {', '.join(sorted(unknown))}")
        values = {f: _text(spec[f]) for f in AGENT_FIELDS if spec.get(f) is not None}
        if default_llm and "llm" not in values:
            values["llm"] = default_llm
        try:
            agent_commands[str(key)] = m.RegisterAgent(**values)
        except ValueError as error:
            raise ProjectError(f"agent {key!r}: {error}") from None
    task_list = []
    for key, spec in tasks.items():
        spec = _mapping(spec, f"task {key!r}")
        agent = spec.get("agent")
        if agent is not None and agent not in agent_commands:
            raise ProjectError(f"task {key!r}: agent {agent!r} is not defined in the agents")
        task_list.append({
            "name": str(key),
            "description": _text(spec.get("description", "")),
            "expected_output": _text(spec.get("expected_output", "")),
            "agent": agent,
            "context": list(spec.get("context") or []),
            "human_input": bool(spec.get("human_input", False)),
        })
    definition = {
        "name": name, "process": crew.get("process", "sequential"),
        "manager_llm": crew.get("manager_llm"),
        "agents": {k: v.model_dump(mode="json") for k, v in agent_commands.items()},
        "tasks": task_list,
    }
    return CrewProject(
        name=str(name),
        process=str(definition["process"]),
        manager_llm=definition["manager_llm"],
        agents=agent_commands,
        tasks=task_list,
        fingerprint=hashlib.sha256(canonical_json(definition)).hexdigest()[:16],
    )
