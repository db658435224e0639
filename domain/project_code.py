"""A project's own tool (a ``BaseTool`` subclass or a ``@tool`` function in its ``tools/``):
code, carried as data and pinned by its content hash.

The agent's definition holds the tool's source files, the module and attribute that make
it, its keyword arguments, and the name, description and argument schema the model reads;
the agent's ``tools`` name it ``project:<sha256>``, the SHA-256 of all of that (canonical
JSON): an edit to any file is another tool. A run's snapshot carries the same bundle, so a
run loads exactly the source its agent was defined with, on any worker, and a replay reads
what ran. Whether code runs at all is the operator's setting (``KASAL_ALLOW_PROJECT_CODE``),
checked by the command handlers and again by the engine that would run it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.envelope import canonical_json
from domain.errors import InvalidDefinition
from domain.text import problem_of

PREFIX = "project:"
KINDS = ("class", "object")  # the attribute is a BaseTool subclass / a tool object
MAX_FILES = 50
MAX_BUNDLE_CHARS = 100_000  # one tool's files, all of them
# a run's snapshot carries its agents' bundles; one event must fit one Kafka request
# (adapters/kafka/writer.py: 900,000 bytes) encrypted (base64: 4/3) and JSON-escaped
MAX_RUN_CODE_CHARS = 300_000
MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,9}$")
ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
FILE = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]{0,99}/){0,9}[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}\.py$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_DEPTH = 20
SCHEMA_TYPES = frozenset({"object", "string", "integer", "number", "boolean", "array", "null"})

CODE_OFF = ("this server does not run project code: the operator sets "
            "KASAL_ALLOW_PROJECT_CODE=true to run a project's own tools (they are code, and run "
            "with the workers' rights)")


class ProjectCodeRefused(InvalidDefinition):
    """Project code where the operator has not allowed it."""


@dataclass(frozen=True)
class ProjectTool:
    name: str  # as the model reads it (the tool's ``name``)
    description: str
    args_schema: Mapping[str, Any]  # JSON Schema of its arguments
    module: str  # dotted, importable from the bundle's root
    attribute: str  # the module's global that is the tool (or its class)
    kind: str  # one of KINDS
    files: Mapping[str, str]  # path (from the bundle's root) -> source
    config: Mapping[str, Any] = field(default_factory=dict)  # the class's keyword arguments

    def as_payload(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "args_schema": dict(self.args_schema), "module": self.module,
                "attribute": self.attribute, "kind": self.kind,
                "files": dict(sorted(self.files.items())), "config": dict(self.config)}

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> ProjectTool:
        return cls(**{key: data[key] for key in ("name", "description", "args_schema",
                                                 "module", "attribute", "kind", "files")},
                   config=dict(data.get("config") or {}))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(canonical_json(self.as_payload())).hexdigest()

    @property
    def ref(self) -> str:
        """How the agent's ``tools`` name it."""
        return PREFIX + self.sha256

    @property
    def characters(self) -> int:
        return sum(len(source) for source in self.files.values())

    def summary(self) -> dict[str, Any]:
        """What a reader is shown (not the source)."""
        return {"name": self.name, "module": self.module, "attribute": self.attribute,
                "kind": self.kind, "files": sorted(self.files), "sha256": self.sha256}


def is_project_tool(name: str) -> bool:
    return name.startswith(PREFIX)


def _check_data(where: str, value: Any, depth: int = 0) -> None:
    """JSON every store holds: finite numbers, texts without NUL or lone surrogates."""
    if depth > MAX_DEPTH:
        raise InvalidDefinition(f"{where} nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        problem = problem_of(value)
        if problem is not None:
            raise InvalidDefinition(f"{where} {problem}")
    elif isinstance(value, float) and not math.isfinite(value):
        raise InvalidDefinition(f"{where} must be a finite number")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_data(where, str(key), depth + 1)
            _check_data(f"{where}.{key}", item, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_data(f"{where}[{index}]", item, depth + 1)
    elif not (value is None or isinstance(value, bool | int | float)):
        raise InvalidDefinition(f"{where} must be JSON data")


def _check_schema(where: str, schema: Mapping[str, Any]) -> None:
    """The shape a tool's argument schema must have for CrewAI to build its model."""
    if not schema:
        return
    if schema.get("type", "object") != "object":
        raise InvalidDefinition(f"{where} must be a JSON Schema of an object")
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise InvalidDefinition(f"{where}.properties must be a mapping of argument names")
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            raise InvalidDefinition(f"{where}.properties.{name} must be a JSON Schema")
        kinds = spec.get("type")
        kinds = kinds if isinstance(kinds, list) else [kinds] if kinds is not None else []
        unknown = [k for k in kinds if k not in SCHEMA_TYPES]
        if unknown:
            raise InvalidDefinition(f"{where}.properties.{name}.type must be one of "
                                    f"{', '.join(sorted(SCHEMA_TYPES))}")
    required = schema.get("required", [])
    if not isinstance(required, list) or any(r not in properties for r in required):
        raise InvalidDefinition(f"{where}.required must name some of its properties")


def check_project_tool(where: str, tool: ProjectTool) -> ProjectTool:
    """``InvalidDefinition`` naming what is wrong with the bundle (``where``: its key)."""
    _check_data(where, tool.as_payload())
    if not tool.name.strip() or len(tool.name) > 200:
        raise InvalidDefinition(f"{where}.name must be 1 to 200 characters")
    if len(tool.description) > 10_000:
        raise InvalidDefinition(f"{where}.description must be at most 10,000 characters")
    if not MODULE.fullmatch(tool.module):
        raise InvalidDefinition(f"{where}.module must be a dotted Python module name")
    if not ATTRIBUTE.fullmatch(tool.attribute):
        raise InvalidDefinition(f"{where}.attribute must be a Python identifier")
    if tool.kind not in KINDS:
        raise InvalidDefinition(f"{where}.kind must be one of {', '.join(KINDS)}")
    if not tool.files or len(tool.files) > MAX_FILES:
        raise InvalidDefinition(f"{where}.files must hold 1 to {MAX_FILES} files")
    for path in tool.files:
        if not FILE.fullmatch(path) or "/." in f"/{path}":
            raise InvalidDefinition(
                f"{where}.files: {path!r} must be a relative path of a .py file (parts of "
                "letters, digits, '_', '.' and '-', none starting with '.')")
    module_file = tool.module.replace(".", "/")
    if f"{module_file}.py" not in tool.files and f"{module_file}/__init__.py" not in tool.files:
        raise InvalidDefinition(f"{where}.files must hold module {tool.module} "
                                f"({module_file}.py)")
    if tool.characters > MAX_BUNDLE_CHARS:
        raise InvalidDefinition(
            f"{where}.files hold {tool.characters:,} characters; a project tool carries at most "
            f"{MAX_BUNDLE_CHARS:,}")
    _check_schema(f"{where}.args_schema", tool.args_schema)
    if tool.kind == "object" and tool.config:
        raise InvalidDefinition(f"{where}.config: a tool object takes no arguments")
    return tool


def check_pins(tools: tuple[str, ...], bundles: Mapping[str, ProjectTool]) -> None:
    """Every ``project:<sha256>`` the agent names has its bundle, of that exact content, and
    every bundle is named."""
    named = {name[len(PREFIX):] for name in tools if is_project_tool(name)}
    for sha in sorted(named):
        if not SHA256.fullmatch(sha):
            raise InvalidDefinition(f"tools: {PREFIX}{sha} must name a SHA-256 (64 hex digits)")
        if sha not in bundles:
            raise InvalidDefinition(f"tools: {PREFIX}{sha[:12]}… has no bundle in project_tools")
    for sha, bundle in bundles.items():
        if sha not in named:
            raise InvalidDefinition(f"project_tools.{sha[:12]}…: the agent's tools do not name "
                                    f"it ({PREFIX}{sha})")
        actual = check_project_tool(f"project_tools.{sha[:12]}…", bundle).sha256
        if actual != sha:
            raise InvalidDefinition(
                f"project_tools.{sha[:12]}…: its content hashes to {actual}, not the SHA-256 "
                "it is filed under: the pin must be the content's")


__all__ = ["CODE_OFF", "MAX_RUN_CODE_CHARS", "PREFIX", "ProjectCodeRefused", "ProjectTool",
           "check_pins", "check_project_tool", "is_project_tool"]
