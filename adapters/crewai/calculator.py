"""``calculator``: arithmetic on an expression by walking its ``ast`` against a whitelist (no
``eval``/``exec``), with bounds on the input size, the exponent and the size of every
intermediate result."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from crewai.tools import BaseTool
from crewai.tools.tool_failure import ToolFailure
from pydantic import BaseModel, Field

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
