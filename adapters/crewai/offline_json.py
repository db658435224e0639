"""The offline model's JSON answers: for a task with an output schema, the smallest object
valid against it, every string saying what wrote it (a pure function of schema and text)."""

from __future__ import annotations

from typing import Any

MAX_DEPTH = 8
MAX_ITEMS = 10  # a schema's minItems / minLength past these is not the offline model's to fill
MAX_CHARS = 10_000


def instance(schema: dict[str, Any], text: str) -> dict[str, Any]:
    """An object valid against ``schema`` (type object) with ``text`` in its strings."""
    value = _value(schema, schema, text, "answer", 0)
    return value if isinstance(value, dict) else {}


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return target if isinstance(target, dict) else {}
    return node


def _value(node: Any, root: dict[str, Any], text: str, name: str, depth: int) -> Any:
    if not isinstance(node, dict) or depth > MAX_DEPTH:
        return None
    node = _resolve(node, root)
    if "const" in node:
        return node["const"]
    if node.get("enum"):
        return node["enum"][0]
    if "default" in node:
        return node["default"]
    for key in ("anyOf", "oneOf"):
        options = [o for o in node.get(key) or [] if _resolve(o, root).get("type") != "null"]
        if options:
            return _value(options[0], root, text, name, depth + 1)
    if node.get("allOf"):
        return _value(node["allOf"][0], root, text, name, depth + 1)
    kind = node.get("type", "object" if "properties" in node else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        return {key: _value(sub, root, text, key, depth + 1)
                for key, sub in (node.get("properties") or {}).items()}
    if kind == "array":  # one item near the top, the fewest allowed deeper (ends recursion)
        least = min(int(node.get("minItems", 0)), MAX_ITEMS)
        count = max(least, 1) if depth < 3 else least
        if node.get("uniqueItems") or "maxItems" in node:
            count = min(count, 1 if node.get("uniqueItems") else int(node["maxItems"]))
        return [_value(node.get("items", {}), root, text, name, depth + 1) for _ in range(count)]
    if kind in ("integer", "number"):
        low = node.get("minimum", node.get("exclusiveMinimum", 0))
        number = low + 1 if "exclusiveMinimum" in node else max(low, 1)
        number = min(number, node.get("maximum", number))
        if "exclusiveMaximum" in node and number >= node["exclusiveMaximum"]:
            number = (low + node["exclusiveMaximum"]) / 2 if kind == "number" else number - 1
        return int(number) if kind == "integer" else float(number)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(node, f"{name}: {text}")


def _string(node: dict[str, Any], text: str) -> str:
    formats = {"date-time": "2026-01-01T00:00:00Z", "date": "2026-01-01", "time": "00:00:00Z",
               "email": "offline@example.com", "uri": "https://example.com/offline"}
    if node.get("format") in formats:
        return formats[node["format"]]
    low = min(int(node.get("minLength", 0)), MAX_CHARS)
    high = int(node.get("maxLength", MAX_CHARS))
    return text[:high].ljust(low, ".")
