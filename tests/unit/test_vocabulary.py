"""The event vocabulary is defined once, in the domain, and used everywhere else by name."""

from __future__ import annotations

import ast
from pathlib import Path

from domain.registry import EVENT_CLASSES
from domain.vocabulary import AggregateType, EventType, ExecutionStatus, events_of

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = ("commands", "projections", "adapters", "api", "streams", "kasal")
NAMES = {t.value for t in EventType} | {s.value for s in ExecutionStatus}


def string_literals(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value) for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_no_event_type_or_status_literal_outside_the_domain() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {value!r}"
        for package in PRODUCTION
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, value in string_literals(path)
        if value in NAMES
    ]
    assert found == [], "import these from domain.vocabulary instead:\n" + "\n".join(found)


def test_the_scan_would_see_a_literal() -> None:
    probe = ROOT / "tests" / "unit" / "_vocabulary_probe.py"
    probe.write_text('KIND = "ExecutionCompleted"\n')
    try:
        assert (1, "ExecutionCompleted") in string_literals(probe)
    finally:
        probe.unlink()


def test_the_vocabulary_is_exactly_the_aggregates_events() -> None:
    assert set(EVENT_CLASSES) == {t.value for t in EventType}
    assert set().union(*(events_of(kind) for kind in AggregateType)) == set(EventType)
    assert EventType.EXECUTION_REQUESTED in events_of(AggregateType.EXECUTION)
    assert EventType.API_KEY_REVOKED in events_of(AggregateType.API_KEY)
