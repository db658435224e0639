"""The built-in tools an agent may name in its ``tools`` list: Kasal's own (local, no
network), crewai-tools' file tools confined to the tenant's workspace, and crewai-tools'
network tools (``network_tools``).

Each entry of ``BUILTIN_TOOLS`` builds a fresh CrewAI tool (tools keep usage counters, so
runs never share an instance). ``calculator`` evaluates arithmetic by walking the ``ast``
of the expression against a whitelist (no ``eval``/``exec``), with bounds on the input
size, the exponent and the size of every intermediate result.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from crewai.tools import BaseTool
from crewai.tools.tool_failure import ToolFailure
from pydantic import BaseModel, Field

from adapters.crewai.code_tools import ProjectCode
from adapters.crewai.tool_names import (
    BUILTIN_TOOL_NAMES,
    tool_config_problem,
    tool_credentials_problem,
)
from adapters.crewai.workspace import Workspace
from domain.project_code import CODE_OFF, PREFIX, ProjectTool, is_project_tool
from streams.engine import RunHooks

MAX_EXPRESSION_LENGTH = 500
MAX_NODES = 200
MAX_EXPONENT = 1000
MAX_INT_BITS = 4096  # about 1,233 decimal digits


class CalculatorError(ValueError):
    """The expression is not plain arithmetic, or is too big to evaluate safely."""


Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _sqrt(value: Number) -> Number:
    if value < 0:
        raise CalculatorError("sqrt of a negative number is not a real number")
    return math.sqrt(value)


def _round(value: Number, digits: Number | None = None) -> Number:
    if digits is None:
        return round(value)
    if not isinstance(digits, int) or abs(digits) > 100:
        raise CalculatorError("round() takes a whole number of digits between -100 and 100")
    return round(value, digits)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs,
    "round": _round,
    "min": min,
    "max": max,
    "sqrt": _sqrt,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}
_ALLOWED = (
    "numbers, + - * / // % ** (or ^), parentheses, pi, e, abs(), round(), min(), max(), sqrt()"
)


def _check_size(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError(f"the result is too large (more than {MAX_INT_BITS} bits)")
    if isinstance(value, float) and not math.isfinite(value):
        raise CalculatorError("the result is too large (not a finite number)")
    return value


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponent {exponent} is too large (the limit is {MAX_EXPONENT})")
    # a lower bound of the result's size, before computing it: 10 ** 1000 is fine,
    # 99999 ** 1000 is refused without being computed
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and (base.bit_length() - 1) * exponent > MAX_INT_BITS
    ):
        raise CalculatorError(f"the result is too large (more than {MAX_INT_BITS} bits)")
    try:
        result = base**exponent
    except ZeroDivisionError:
        raise CalculatorError("zero cannot be raised to a negative power") from None
    if isinstance(result, complex):
        raise CalculatorError("the result is not a real number")
    return result


class _Evaluator:
    def __init__(self) -> None:
        self.nodes = 0

    def eval(self, node: ast.AST) -> Number:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise CalculatorError(f"the expression is too long (more than {MAX_NODES} parts)")
        if isinstance(node, ast.Expression):
            return self.eval(node.body)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise CalculatorError(f"{node.value!r} is not a number")
            return _check_size(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = self.eval(node.left), self.eval(node.right)
            if isinstance(node.op, ast.Pow):
                return _check_size(_power(left, right))
            if (
                isinstance(node.op, ast.Mult)
                and isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() + right.bit_length() > MAX_INT_BITS + 1
            ):
                raise CalculatorError(f"the result is too large (more than {MAX_INT_BITS} bits)")
            try:
                return _check_size(_BINARY[type(node.op)](left, right))
            except ZeroDivisionError:
                raise CalculatorError("division by zero") from None
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self.eval(node.operand))
        if isinstance(node, ast.Name) and node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
            and 0 < len(node.args) <= 10
        ):
            args = [self.eval(arg) for arg in node.args]
            try:
                return _check_size(_FUNCTIONS[node.func.id](*args))
            except TypeError as error:
                raise CalculatorError(f"bad arguments to {node.func.id}(): {error}") from None
        raise CalculatorError(f"{type(node).__name__} is not allowed; use only {_ALLOWED}")


def evaluate(expression: str) -> Number:
    """Evaluate plain arithmetic. Raises ``CalculatorError`` with a readable reason."""
    text = expression.strip()
    if not text:
        raise CalculatorError("the expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise CalculatorError(
            f"the expression is too long ({len(text)} characters, the limit is "
            f"{MAX_EXPRESSION_LENGTH})"
        )
    text = text.replace("^", "**")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        raise CalculatorError(f"not a valid arithmetic expression ({error})") from None
    try:
        return _Evaluator().eval(tree)
    except OverflowError:
        raise CalculatorError("the result is too large") from None
    except RecursionError:
        raise CalculatorError("the expression is nested too deeply") from None


def format_number(value: Number) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")
    return str(value)


class CalculatorInput(BaseModel):
    expression: str = Field(
        description="An arithmetic expression, e.g. '17 * 23' or '(2 + 3) ** 2 / 5'."
    )


class CalculatorTool(BaseTool):
    name: str = "calculator"
    description: str = (
        "Evaluates an arithmetic expression exactly and returns the number. Supports "
        + _ALLOWED
        + "."
    )
    args_schema: type[BaseModel] = CalculatorInput

    def _run(self, expression: str) -> str | ToolFailure:
        try:
            return format_number(evaluate(expression))
        except CalculatorError as error:
            return ToolFailure(
                message=f"calculator error: {error}. The input was {expression[:100]!r}.",
                code="invalid_expression",
            )


class CurrentTimeInput(BaseModel):
    pass


class CurrentTimeTool(BaseTool):
    name: str = "current_time"
    description: str = "Returns the current date and time in UTC, in ISO 8601 format."
    args_schema: type[BaseModel] = CurrentTimeInput

    def _run(self) -> str:
        return datetime.now(UTC).replace(microsecond=0).isoformat()


@dataclass(frozen=True)
class ToolContext:
    """What a tool is built with: the run's tenant's workspace, and the run's hooks (the
    search tools search through them; None outside a run)."""

    workspace: Workspace
    hooks: RunHooks | None = None


Builder = Callable[[ToolContext, Mapping[str, str]], BaseTool]


def _file_tool(name: str) -> Builder:
    """The builder of crewai-tools' file tool ``name`` (crewai-tools is imported on first use:
    it takes seconds); the tool's options are its builder's keyword arguments."""

    def build(context: ToolContext, options: Mapping[str, str]) -> BaseTool:
        from adapters.crewai import file_tools

        builder: Callable[..., BaseTool] = getattr(file_tools, name)
        return builder(context.workspace, **options)

    return build


def _network_tool(name: str) -> Builder:
    """The builder of crewai-tools' network tool ``name`` (no workspace: it fetches)."""

    def build(_: ToolContext, options: Mapping[str, str]) -> BaseTool:
        from adapters.crewai import network_tools

        builder: Callable[..., BaseTool] = getattr(network_tools, name)
        return builder(**options)

    return build


def _search_tool(name: str) -> Builder:
    """The builder of a RAG search tool over the workspace (``search_tools``)."""

    def build(context: ToolContext, options: Mapping[str, str]) -> BaseTool:
        from adapters.crewai.search_tools import KINDS, search_tool

        path = options.get(KINDS[name].file_option)
        return search_tool(name, context.workspace, context.hooks, path)

    return build


# each builds a fresh instance (tools keep usage counters, so runs never share one) from the
# tenant's workspace and the agent's options for it (crewai-tools is imported on first use)
BUILTIN_TOOLS: dict[str, Builder] = {
    "calculator": lambda _, __: CalculatorTool(),
    "current_time": lambda _, __: CurrentTimeTool(),
    "file_read": _file_tool("file_read"),
    "file_write": _file_tool("file_write"),
    "directory_read": _file_tool("directory_read"),
    "serper_search": _network_tool("serper_search"),
    "brave_search": _network_tool("brave_search"),
    "serply_search": _network_tool("serply_search"),
    "scrape_website": _network_tool("scrape_website"),
    **{name: _search_tool(name) for name in ("txt_search", "csv_search", "json_search",
                                             "pdf_search", "docx_search", "mdx_search",
                                             "directory_search")},
}


def tool_names() -> frozenset[str]:
    return frozenset(BUILTIN_TOOLS)


assert tool_names() == BUILTIN_TOOL_NAMES, "adapters/tool_names.py must list every built-in tool"


def check_tools(names: tuple[str, ...] | list[str],
                config: Mapping[str, Mapping[str, str]] | None = None,
                project_tools: Mapping[str, ProjectTool] | None = None,
                allow_project_code: bool = False) -> None:
    """Unknown names raise ``KeyError``; options a tool does not take, a path outside
    the workspace, credentials missing from this process's environment, or a project's own
    tool where this process may not run project code, ``ValueError``."""
    bundles = project_tools or {}
    unknown = [name for name in names if name not in BUILTIN_TOOLS
               and not (is_project_tool(name) and name[len(PREFIX):] in bundles)]
    if unknown:
        raise KeyError(
            f"unknown tool(s): {', '.join(sorted(unknown))}; "
            f"available: {', '.join(sorted(BUILTIN_TOOLS))}"
        )
    for name in names:
        if is_project_tool(name):
            if not allow_project_code:
                raise ValueError(f"the agent names project code ({bundles[name[len(PREFIX):]].name}"
                                 f", {name}); {CODE_OFF}")
            continue
        problem = tool_config_problem(name, (config or {}).get(name, {})) or \
            tool_credentials_problem(name)
        if problem is not None:
            raise ValueError(problem)


def build_tools(names: tuple[str, ...] | list[str], workspace: Workspace,
                config: Mapping[str, Mapping[str, str]] | None = None,
                hooks: RunHooks | None = None,
                project_tools: Mapping[str, ProjectTool] | None = None,
                code: ProjectCode | None = None) -> list[BaseTool]:
    """Fresh instances of the named tools, checked first (``check_tools``); a project's own
    tools run in ``code``'s processes (None: project code is not allowed here)."""
    check_tools(names, config, project_tools, allow_project_code=code is not None)
    context = ToolContext(workspace, hooks)
    tools = []
    for name in names:
        if is_project_tool(name):
            assert code is not None and project_tools is not None  # check_tools saw to it
            tools.append(code.tool(project_tools[name[len(PREFIX):]]))
        else:
            tools.append(BUILTIN_TOOLS[name](context, (config or {}).get(name, {})))
    return tools


__all__ = [
    "BUILTIN_TOOLS",
    "CalculatorError",
    "CalculatorTool",
    "CurrentTimeTool",
    "build_tools",
    "evaluate",
    "tool_names",
]
