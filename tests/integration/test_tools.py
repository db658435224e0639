"""The built-in tools."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from crewai.tools.tool_failure import ToolFailure

from adapters.crewai.tools import (
    BUILTIN_TOOLS,
    CalculatorError,
    CalculatorTool,
    CurrentTimeTool,
    build_tools,
    evaluate,
    tool_names,
)
from adapters.crewai.workspace import Workspace


@pytest.mark.parametrize(
    ("expression", "result"),
    [
        ("17 * 23", "391"),
        ("(2 + 3) ** 2 / 5", "5"),
        ("2 ^ 10", "1024"),
        ("7 // 2 + 7 % 2", "4"),
        ("-3 + +4", "1"),
        ("sqrt(16) + abs(-2) + max(1, 5) + round(2.6)", "14"),
        ("1 / 3", "0.333333333333333"),
        ("10 ** 100", "1" + "0" * 100),
    ],
)
def test_calculator_computes(expression: str, result: str) -> None:
    assert CalculatorTool().run(expression=expression) == result


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os')", "not allowed"),
        ("().__class__.__bases__", "not allowed"),
        ("open('/etc/passwd')", "not allowed"),
        ("lambda: 1", "not allowed"),
        ("'a' * 10", "is not a number"),
        ("2 ** 100000", "exponent 100000 is too large"),
        ("9 ** 9 ** 9", "is too large"),
        ("99999 ** 999", "the result is too large"),
        ("10.0 ** 999", "too large"),
        ("1 / 0", "division by zero"),
        ("0 ** -1", "negative power"),
        ("1 +", "not a valid arithmetic expression"),
        ("1" * 600, "too long"),
        ("", "empty"),
    ],
)
def test_calculator_refuses_with_a_clear_message(expression: str, reason: str) -> None:
    with pytest.raises(CalculatorError, match=re.escape(reason)):
        evaluate(expression)
    result = CalculatorTool().run(expression=expression)
    assert isinstance(result, ToolFailure)
    assert result.message.startswith("calculator error: ")
    assert reason in result.message


def test_current_time_is_utc_iso() -> None:
    value = CurrentTimeTool().run()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", value)


def test_registry(tmp_path: Path) -> None:
    assert tool_names() == frozenset({
        "calculator", "current_time", "file_read", "file_write", "directory_read",
        "serper_search", "brave_search", "serply_search", "scrape_website", "txt_search",
        "csv_search", "json_search", "pdf_search", "docx_search", "mdx_search",
        "directory_search"}) == frozenset(BUILTIN_TOOLS)
    space = Workspace(tmp_path, "acme")
    first, second = build_tools(["calculator", "current_time"], space)
    assert (first.name, second.name) == ("calculator", "current_time")
    assert build_tools(["calculator"], space)[0] is not first  # fresh instances per run
    with pytest.raises(KeyError, match="unknown tool\\(s\\): web_search; available: "
                                       "brave_search, calculator"):
        build_tools(["calculator", "web_search"], space)
