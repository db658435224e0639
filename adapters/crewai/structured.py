"""Structured task outputs: a task with an output schema (a JSON Schema: what CrewAI's
``output_json`` / ``output_pydantic`` models say) is told to answer with one JSON object valid
against it, and its answer is parsed and validated here. A valid answer is the task's
``output_json``; one that is not keeps its text and says why (``output_problem``), as CrewAI
keeps the raw text when it cannot convert an answer."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import jsonschema

SCHEMA_MARK = "Answer with one JSON object valid against this JSON Schema, and nothing else: "
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_INPUT_LIKE = re.compile(r"\{(?=[A-Za-z_])")  # JSON's own braces never precede a letter
MAX_NESTING = 64
MAX_PROBLEM_CHARS = 500


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _nesting(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_NESTING and isinstance(node, dict | list):
            stack.extend((v, depth + 1) for v in (node.values() if isinstance(node, dict)
                                                   else node))
    return deepest


def instructed(expected_output: str, schema: dict[str, Any]) -> str:
    """The expected output a model is given: the task's own, then the schema (one line).
    A ``{name}`` in the schema's strings is written ``\\u007bname}``: CrewAI fills every
    ``{name}`` of the expected output with the run's inputs (or refuses an unknown one)."""
    dumped = _INPUT_LIKE.sub(r"\\u007b", json.dumps(schema, separators=(",", ":")))
    return f"{expected_output}\n{SCHEMA_MARK}{dumped}"


def schema_in(text: str) -> dict[str, Any] | None:
    """The schema ``instructed`` put in ``text`` (a prompt), if any."""
    at = text.find(SCHEMA_MARK)
    if at < 0:
        return None
    try:
        found, _ = json.JSONDecoder().raw_decode(text[at + len(SCHEMA_MARK):])
    except json.JSONDecodeError:
        return None
    return found if isinstance(found, dict) else None


@dataclass(frozen=True)
class Structured:
    value: dict[str, Any] | None
    problem: str | None


def structured(raw: str, schema: dict[str, Any]) -> Structured:
    """``raw`` (a model's final answer) as the JSON object ``schema`` describes, or why not."""
    text = raw.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    start = text.find("{")
    if start < 0:
        return Structured(None, "the answer holds no JSON object")
    try:
        value, _ = json.JSONDecoder(parse_constant=_no_constant).raw_decode(text[start:])
    except json.JSONDecodeError as error:
        return Structured(None, f"the answer's JSON does not parse: {error.msg} at {error.pos}")
    except (ValueError, RecursionError) as error:
        return Structured(None, f"the answer's JSON is not storable: {str(error)[:200]}")
    if not isinstance(value, dict):
        return Structured(None, "the answer's JSON is not an object")
    if _nesting(value) > MAX_NESTING:
        return Structured(None, f"the answer's JSON nests deeper than {MAX_NESTING} levels")
    try:
        errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value),
                        key=lambda e: [str(p) for p in e.absolute_path])
    except Exception as error:  # a $ref that resolves to nothing, say: the schema's fault
        return Structured(None, f"the schema cannot be applied: {type(error).__name__}: "
                                f"{str(error)[:300]}")
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(the object)"
        problem = f"not valid against the schema at {where}: {first.message}"
        return Structured(None, problem[:MAX_PROBLEM_CHARS])
    return Structured(value, None)
