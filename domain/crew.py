"""The Crew aggregate: members, tasks and process of a CrewAI crew."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from eventsourcing.domain import event
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from domain.artifacts import check_template
from domain.base import Definition, check_text
from domain.errors import InvalidDefinition
from domain.knowledge import check_sources
from domain.vocabulary import AggregateType

PROCESSES = ("sequential", "hierarchical")
MAX_TASKS = 50
MAX_MEMBERS = 50
MAX_SCHEMA_CHARS = 32_000
TASK_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .-]{0,99}$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    expected_output: str
    agent: str | None = None
    context: tuple[str, ...] = ()
    human_input: bool = False
    # a JSON Schema (type object) the task's answer must satisfy: CrewAI's output_json /
    # output_pydantic; None: free text
    output_schema: dict[str, Any] | None = None
    # CrewAI's output_file: the name of the execution's artifact that holds the answer
    # (domain/artifacts.py); may use the crew's {placeholders}
    output_file: str | None = None

    def as_payload(self) -> dict[str, Any]:
        data = asdict(self)
        data["context"] = list(self.context)
        for later in ("output_schema", "output_file"):
            if data[later] is None:
                del data[later]  # the events of tasks without one stay as they were
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> TaskSpec:
        return cls(**{**data, "context": tuple(data.get("context", ()))})


@dataclass(frozen=True)
class CrewSpec:
    name: str
    process: str
    agents: tuple[str, ...]
    tasks: tuple[TaskSpec, ...]
    manager_llm: str | None = None
    memory: bool = False
    # the knowledge sources (ids) every task of the crew is given: Crew(knowledge_sources=)
    knowledge_sources: tuple[str, ...] = ()

    def as_payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "process": self.process,
            "agents": list(self.agents),
            "tasks": [t.as_payload() for t in self.tasks],
            "manager_llm": self.manager_llm,
            "memory": self.memory,
        }
        if self.knowledge_sources:  # the events of crews without them stay as they were
            data["knowledge_sources"] = list(self.knowledge_sources)
        return data

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> CrewSpec:
        return cls(
            name=data["name"],
            process=data["process"],
            agents=tuple(data["agents"]),
            tasks=tuple(TaskSpec.from_payload(t) for t in data["tasks"]),
            manager_llm=data.get("manager_llm"),
            memory=bool(data.get("memory", False)),
            knowledge_sources=tuple(data.get("knowledge_sources", ())),
        )

    def required_inputs(self) -> set[str]:
        """The ``{placeholders}`` that an execution's inputs must fill."""
        names: set[str] = set()
        for task in self.tasks:
            names.update(PLACEHOLDER.findall(task.description))
            names.update(PLACEHOLDER.findall(task.expected_output))
            names.update(PLACEHOLDER.findall(task.output_file or ""))
        return names


def schema_patterns(node: Any, path: str = "") -> list[str]:
    """Where ``node`` uses ``pattern`` or ``patternProperties`` (JSON Pointer-ish paths)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}/{key}"
            if key in ("pattern", "patternProperties"):
                found.append(here.lstrip("/"))
            found.extend(schema_patterns(value, here))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(schema_patterns(value, f"{path}/{index}"))
    return found


def check_output_schema(where: str, schema: Any) -> None:
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise InvalidDefinition(f'{where} must be a JSON Schema of an object ("type": "object")')
    patterns = sorted(set(schema_patterns(schema)))
    if patterns:
        raise InvalidDefinition(
            f"{where} uses {', '.join(patterns)}: regular expressions are not checked on a "
            "model's answer (one can run for hours); describe the strings without them")
    if len(json.dumps(schema)) > MAX_SCHEMA_CHARS:
        raise InvalidDefinition(f"{where} is over {MAX_SCHEMA_CHARS} characters")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        at = "/".join(str(p) for p in error.absolute_path)
        raise InvalidDefinition(
            f"{where} is not a valid JSON Schema{f' at {at}' if at else ''}: {error.message}"
        ) from None


def check_crew_spec(spec: CrewSpec) -> CrewSpec:
    if spec.process not in PROCESSES:
        raise InvalidDefinition(f"process must be one of {', '.join(PROCESSES)}")
    if not spec.agents:
        raise InvalidDefinition("a crew needs at least one agent")
    if len(spec.agents) > MAX_MEMBERS:
        raise InvalidDefinition(f"a crew may have at most {MAX_MEMBERS} agents")
    if len(set(spec.agents)) != len(spec.agents):
        raise InvalidDefinition("agents must not list the same agent twice")
    if not spec.tasks:
        raise InvalidDefinition("a crew needs at least one task")
    if len(spec.tasks) > MAX_TASKS:
        raise InvalidDefinition(f"a crew may have at most {MAX_TASKS} tasks")
    if spec.process == "hierarchical" and not spec.manager_llm:
        raise InvalidDefinition("a hierarchical crew needs a manager_llm")
    seen: set[str] = set()
    files: dict[str, str] = {}
    tasks = []
    for index, task in enumerate(spec.tasks):
        where = f"tasks[{index}]"
        if not TASK_NAME.fullmatch(task.name):
            raise InvalidDefinition(
                f"{where}.name must be 1-100 letters, digits, spaces, '_', '.' or '-'"
            )
        if task.name in seen:
            raise InvalidDefinition(f"{where}.name {task.name!r} is used by an earlier task")
        if task.human_input:
            raise InvalidDefinition(
                f"{where}.human_input is not supported: Kasal runs crews unattended and "
                "cannot wait for human input"
            )
        if task.agent is None and spec.process == "sequential":
            raise InvalidDefinition(f"{where}.agent is required in a sequential crew")
        if task.agent is not None and task.agent not in spec.agents:
            raise InvalidDefinition(f"{where}.agent {task.agent} is not one of the crew's agents")
        for ref in task.context:
            if ref not in seen:
                raise InvalidDefinition(
                    f"{where}.context names {ref!r}, which is not an earlier task of this crew"
                )
        seen.add(task.name)
        if task.output_schema is not None:
            check_output_schema(f"{where}.output_schema", task.output_schema)
        if task.output_file is not None:
            check_template(f"{where}.output_file", task.output_file)
            if task.output_file in files:
                raise InvalidDefinition(
                    f"{where}.output_file {task.output_file!r} is task "
                    f"{files[task.output_file]!r}'s too: each task needs a file of its own")
            files[task.output_file] = task.name
        tasks.append(
            TaskSpec(
                name=task.name,
                description=check_text(f"{where}.description", task.description),
                expected_output=check_text(f"{where}.expected_output", task.expected_output),
                agent=task.agent,
                context=task.context,
                human_input=task.human_input,
                output_schema=task.output_schema,
                output_file=task.output_file,
            )
        )
    return CrewSpec(
        name=check_text("name", spec.name, max_length=200),
        process=spec.process,
        agents=spec.agents,
        tasks=tuple(tasks),
        manager_llm=spec.manager_llm,
        memory=spec.memory,
        knowledge_sources=check_sources("knowledge_sources", spec.knowledge_sources),
    )


class Crew(Definition[CrewSpec]):
    AGGREGATE_TYPE = AggregateType.CREW

    @classmethod
    def define(cls, tenant_id: str, spec: CrewSpec) -> Crew:
        return cls(tenant_id=tenant_id, spec=cls.checked(spec))

    @staticmethod
    def checked(spec: CrewSpec) -> dict[str, Any]:
        return check_crew_spec(spec).as_payload()

    @event("Defined")
    def __init__(self, tenant_id: str, spec: dict[str, Any]) -> None:
        self.tenant_id = tenant_id
        self.spec = CrewSpec.from_payload(spec)
        self.archived = False

    @event("Updated")
    def _updated(self, spec: dict[str, Any]) -> None:
        self.spec = CrewSpec.from_payload(spec)

    @event("Archived")
    def _archived(self) -> None:
        self.archived = True
