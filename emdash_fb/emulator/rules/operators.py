"""JavaScript-style operators over rule values, strict where rules are strict.

Values are None, bool, int/float, str, dict (auth, val() of an object),
list (array literals) and snapshots. ``==`` never coerces types; arithmetic
and ordering refuse mixed types with an EvalError (which denies the rule).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from .errors import EvalError


def is_number(v: Any) -> bool:
    """True for int/float but not bool (a Python int subclass)."""
    return (type(v) is int) or (type(v) is float)


def kind_of(v: Any) -> str:
    """The JS type of a plain value; EvalError for snapshots, regexes and the like."""
    if v is None:
        return "null"
    t = type(v)
    if t is bool:
        return "boolean"
    if t is int or t is float:
        return "number"
    if t is str:
        return "string"
    if t is dict:
        return "object"
    if t is list:
        return "array"
    raise EvalError(f"{type(v).__name__} can't be compared or combined")


def strict_equal(a: Any, b: Any) -> bool:
    """``a === b`` for plain values, comparing objects and arrays by content."""
    kind = kind_of(a)
    if kind != kind_of(b):
        return False
    if kind == "object":
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if kind == "array":
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def require_bool(v: Any, what: str) -> bool:
    if type(v) is not bool:
        raise EvalError(f"{what} needs a boolean, got {kind_of(v)}")
    return v


def require_number(v: Any, op: str) -> int | float:
    if not is_number(v):
        raise EvalError(f"'{op}' needs numbers, got {kind_of(v)}")
    return v


def require_string(v: Any, what: str) -> str:
    if type(v) is not str:
        raise EvalError(f"{what} needs a string, got {kind_of(v)}")
    return v


def to_js_string(v: Any) -> str:
    """String conversion as JS ``'' + v`` does it for primitives."""
    if type(v) is str:
        return v
    if v is None:
        return "null"
    if type(v) is bool:
        return "true" if v else "false"
    if type(v) is int:
        return str(v)
    if type(v) is float:
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        text = repr(v)
        if "e" in text:
            mantissa, exponent = text.split("e")
            sign = "-" if exponent.startswith("-") else "+"
            text = f"{mantissa}e{sign}{exponent.lstrip('+-').lstrip('0') or '0'}"
        return text
    raise EvalError(f"can't turn {kind_of(v)} into a string")


def add(a: Any, b: Any) -> Any:
    """``a + b``: numbers add; a string with a string or a number concatenates.

    Anything else is an EvalError, as on live Firebase: ``'users/' + auth.uid``
    signed out, ``1 + true``, an object or array. (JS would make "null" or "true".)
    """
    if is_number(a) and is_number(b):
        return a + b
    if _concatenable(a) and _concatenable(b) and (type(a) is str or type(b) is str):
        return to_js_string(a) + to_js_string(b)
    raise EvalError(f"'+' needs numbers or strings, got {kind_of(a)} and {kind_of(b)}")


def _concatenable(v: Any) -> bool:
    return type(v) is str or is_number(v)


def subtract(a: Any, b: Any) -> Any:
    return require_number(a, "-") - require_number(b, "-")


def multiply(a: Any, b: Any) -> Any:
    return require_number(a, "*") * require_number(b, "*")


def divide(a: Any, b: Any) -> Any:
    """``a / b``. Any division by zero is NaN, not JS's Infinity: live Firebase
    gives ``(1/0 + '') == 'NaN'`` and ``1/0`` neither above nor below 2."""
    x, y = require_number(a, "/"), require_number(b, "/")
    if y == 0:
        return math.nan
    if type(x) is int and type(y) is int and x % y == 0:
        return x // y
    return x / y


def remainder(a: Any, b: Any) -> Any:
    x, y = require_number(a, "%"), require_number(b, "%")
    if y == 0 or math.isinf(x) or math.isnan(x) or math.isnan(y):
        return math.nan
    if type(x) is int and type(y) is int:
        # JS keeps the dividend's sign; Python's % follows the divisor's
        r = abs(x) % abs(y)
        return -r if x < 0 else r
    return math.fmod(x, y)


def negate(a: Any) -> Any:
    return -require_number(a, "-")


def _ordering(compare: Callable[[Any, Any], bool], symbol: str) -> Callable[[Any, Any], bool]:
    def ordered(a: Any, b: Any) -> bool:
        if (is_number(a) and is_number(b)) or (type(a) is str and type(b) is str):
            return compare(a, b)
        raise EvalError(f"'{symbol}' needs two numbers or two strings")

    return ordered


BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": add,
    "-": subtract,
    "*": multiply,
    "/": divide,
    "%": remainder,
    "==": strict_equal,
    "===": strict_equal,
    "!=": lambda a, b: not strict_equal(a, b),
    "!==": lambda a, b: not strict_equal(a, b),
    "<": _ordering(operator.lt, "<"),
    "<=": _ordering(operator.le, "<="),
    ">": _ordering(operator.gt, ">"),
    ">=": _ordering(operator.ge, ">="),
}
