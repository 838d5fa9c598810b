"""Compile a rule expression's syntax tree into a tree of closures, and run it.

Compiling happens once when the rules load: names are checked against the
variables in scope at the rule's location, regexes are compiled and methods
resolved, so evaluating a rule per request is only closure calls.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import EvalError, ExpressionError
from .methods import lookup
from .nodes import (
    ArrayLiteral,
    Binary,
    Call,
    Conditional,
    Index,
    Literal,
    Logical,
    Member,
    Name,
    Node,
    RegexLiteral,
    Unary,
)
from .operators import BINARY, kind_of, negate, require_bool, to_js_string
from .parser import parse
from .regex import compile_regex
from .snapshot import Snapshot
from .typecheck import check_rule, scope


class Context:
    """The variables one rule evaluation sees."""

    __slots__ = ("auth", "now", "root", "data", "new_data", "query", "wildcards")

    def __init__(
        self,
        *,
        auth: dict[str, Any] | None,
        now: int,
        root: Snapshot,
        data: Snapshot,
        new_data: Snapshot | None,
        query: dict[str, Any],
        wildcards: dict[str, str],
    ) -> None:
        self.auth = auth
        self.now = now
        self.root = root
        self.data = data
        self.new_data = new_data  # None while judging a read
        self.query = query
        self.wildcards = wildcards


Compiled = Callable[[Context], Any]
Rule = Callable[[Context], bool]


def compile_rule(source: str | bool, wildcards: frozenset[str]) -> Rule:
    """A rule function from a rules-file value; raises ExpressionError on bad syntax
    or on a type error (see typecheck.py).

    The rule is true only when the expression yields exactly ``true``; any
    evaluation error makes it false.
    """
    if type(source) is bool:
        return _constant_rule(source)
    tree = parse(source)
    if isinstance(tree, Literal) and type(tree.value) is bool:
        return _constant_rule(tree.value)
    check_rule(tree, scope(wildcards))
    compiled = _compile(tree, wildcards)

    def rule(ctx: Context) -> bool:
        try:
            return compiled(ctx) is True
        except Exception:  # any failure inside a rule denies, as in Firebase
            return False

    return rule


def _constant_rule(value: bool) -> Rule:
    return (lambda ctx: True) if value else (lambda ctx: False)


def _compile(node: Node, wildcards: frozenset[str]) -> Compiled:
    match node:
        case Literal(value):
            return lambda ctx: value
        case Name(name):
            return _variable(name, wildcards)
        case Member(obj, name):
            return _member(_compile(obj, wildcards), name)
        case Index(obj, key):
            return _index(_compile(obj, wildcards), _compile(key, wildcards))
        case Call(obj, method, args):
            return _call(_compile(obj, wildcards), method, [_compile(a, wildcards) for a in args])
        case Unary(op, operand):
            return _unary(op, _compile(operand, wildcards))
        case Binary(op, left, right):
            return _binary(op, _compile(left, wildcards), _compile(right, wildcards))
        case Logical(op, left, right):
            return _logical(op, _compile(left, wildcards), _compile(right, wildcards))
        case Conditional(test, then, otherwise):
            return _conditional(
                _compile(test, wildcards), _compile(then, wildcards), _compile(otherwise, wildcards)
            )
        case ArrayLiteral(items):
            parts = [_compile(item, wildcards) for item in items]
            return lambda ctx: [part(ctx) for part in parts]
        case RegexLiteral(pattern, flags):
            try:
                regex = compile_regex(pattern, flags)
            except ExpressionError as exc:
                raise ExpressionError(str(exc), node.pos) from None
            return lambda ctx: regex
    raise ExpressionError(f"Unsupported expression {node!r}")  # pragma: no cover


def _variable(name: str, wildcards: frozenset[str]) -> Compiled:
    if name == "auth":
        return lambda ctx: ctx.auth
    if name == "now":
        return lambda ctx: ctx.now
    if name == "root":
        return lambda ctx: ctx.root
    if name == "data":
        return lambda ctx: ctx.data
    if name == "query":
        return lambda ctx: ctx.query
    if name == "newData":

        def new_data(ctx: Context) -> Snapshot:
            if ctx.new_data is None:
                raise EvalError("newData is only defined in .write and .validate rules")
            return ctx.new_data

        return new_data
    if name in wildcards:
        return lambda ctx: ctx.wildcards[name]
    raise ExpressionError(f"Unknown variable '{name}'")


def _property(value: Any, key: Any) -> Any:
    """``value.key`` / ``value[key]``: lenient on maps (missing is null) and on a missing
    value itself (``auth.token.x`` when signed out, a nested token field that isn't
    there: null, as on Firebase, where the comparison then decides), strict elsewhere."""
    t = type(value)
    if value is None:
        return None
    if t is dict:
        if type(key) is not str:
            key = to_js_string(key)
        return value.get(key)
    if key == "length" and t is str:
        # JS counts UTF-16 code units
        return len(value) if value.isascii() else len(value.encode("utf-16-le")) // 2
    if t is list:
        if key == "length":
            return len(value)
        if type(key) is int and 0 <= key < len(value):
            return value[key]
    if t is Snapshot:
        raise EvalError(f"snapshots have no property '{key}'; call a method like val()")
    raise EvalError(f"can't read property '{key}' of {kind_of(value)}")


def _member(obj: Compiled, name: str) -> Compiled:
    return lambda ctx: _property(obj(ctx), name)


def _index(obj: Compiled, key: Compiled) -> Compiled:
    return lambda ctx: _property(obj(ctx), key(ctx))


def _call(obj: Compiled, method: str, args: list[Compiled]) -> Compiled:
    invoke = lookup(method)
    return lambda ctx: invoke(obj(ctx), [arg(ctx) for arg in args])


def _unary(op: str, operand: Compiled) -> Compiled:
    if op == "!":
        return lambda ctx: not require_bool(operand(ctx), "'!'")
    return lambda ctx: negate(operand(ctx))


def _binary(op: str, left: Compiled, right: Compiled) -> Compiled:
    apply = BINARY[op]
    return lambda ctx: apply(left(ctx), right(ctx))


def _logical(op: str, left: Compiled, right: Compiled) -> Compiled:
    if op == "&&":
        return lambda ctx: require_bool(left(ctx), "'&&'") and require_bool(right(ctx), "'&&'")
    return lambda ctx: require_bool(left(ctx), "'||'") or require_bool(right(ctx), "'||'")


def _conditional(test: Compiled, then: Compiled, otherwise: Compiled) -> Compiled:
    return lambda ctx: then(ctx) if require_bool(test(ctx), "'?:'") else otherwise(ctx)
