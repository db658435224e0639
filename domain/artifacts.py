"""A task's ``output_file``: the file CrewAI would write its answer to becomes an artifact of
the execution instead, kept in the log (``ExecutionArtifactStored``: path, SHA-256, size,
media type, and the content when it is not the task's output as it stands: the JSON of a
task with an output schema; otherwise the output in ``ExecutionTaskCompleted`` of the same
append is the content, not copied again) and served by the read side. Nothing is written
to a disk the run shares: the path only names the artifact within its execution.

A path is relative, ``/``-separated, of at most ``MAX_SEGMENTS`` parts of letters, digits
and ``._- `` (no ``.`` or ``..`` part, no leading dot), and may use the crew's
``{placeholders}`` as CrewAI's does; filled with a run's inputs it must still be such a path
(checked when the run is requested)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from domain.errors import InvalidDefinition

MAX_PATH = 200
MAX_SEGMENTS = 8
SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .-]{0,99}$")
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
MEDIA_TYPES = {
    ".md": "text/markdown", ".markdown": "text/markdown", ".txt": "text/plain",
    ".json": "application/json", ".csv": "text/csv", ".html": "text/html",
    ".htm": "text/html", ".xml": "application/xml", ".yaml": "application/yaml",
    ".yml": "application/yaml", ".py": "text/x-python",
}


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot name an artifact, or None."""
    if not path or len(path) > MAX_PATH:
        return f"must be 1 to {MAX_PATH} characters"
    if path.startswith("/") or "\\" in path:
        return "must be a relative path with '/' between its parts (no leading '/', no '\\')"
    parts = path.split("/")
    if len(parts) > MAX_SEGMENTS:
        return f"may have at most {MAX_SEGMENTS} parts"
    for part in parts:
        if part in ("", ".", ".."):
            return "must not have an empty, '.' or '..' part"
        if not SEGMENT.fullmatch(part) or part.endswith((" ", ".")):
            return (f"part {part!r} must be letters, digits, spaces, '_', '.' or '-', not "
                    "starting with '.' or '-' nor ending with a space or '.'")
    return None


def check_template(where: str, template: str) -> str:
    """A task's ``output_file`` as defined: a path once its placeholders are filled."""
    problem = path_problem(PLACEHOLDER.sub("x", template))
    if problem is not None:
        raise InvalidDefinition(f"{where} {problem}")
    return template


def render(template: str, inputs: dict[str, Any]) -> str:
    """``template`` with the run's inputs filled in (as CrewAI interpolates ``output_file``)."""
    return PLACEHOLDER.sub(lambda m: str(inputs.get(m.group(1), m.group(0))), template)


def check_rendered(where: str, template: str, inputs: dict[str, Any]) -> str:
    path = render(template, inputs)
    problem = path_problem(path)
    if problem is not None:
        raise InvalidDefinition(f"{where} is {path!r} with these inputs: it {problem}")
    return path


def media_type(path: str) -> str:
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return MEDIA_TYPES.get(suffix, "text/plain")


@dataclass(frozen=True)
class Artifact:
    path: str
    sha256: str
    size: int
    media_type: str
    content: str

    @classmethod
    def of(cls, path: str, output: str, output_json: dict[str, Any] | None) -> Artifact:
        """The task's answer as a file: its validated JSON for a task with an output schema
        (indented, as CrewAI writes an ``output_json``), else the answer's text."""
        content = (json.dumps(output_json, indent=2, ensure_ascii=False)
                   if output_json is not None else output)
        data = content.encode("utf-8")
        return cls(path, hashlib.sha256(data).hexdigest(), len(data), media_type(path), content)
