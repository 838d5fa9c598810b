"""Static types of rule expressions: what Firebase refuses when rules are loaded.

Firebase compiles a rules file with a type system and refuses, at deploy, an
expression whose types can't work: a snapshot compared with a value, an
ordering with a boolean, ternary branches of different types, a method that
doesn't exist on its receiver or is given the wrong arguments, ``matches()``
without a regex literal, a rule that can't be a boolean. This module infers
the set of kinds each sub-expression may have at run time and raises
ExpressionError (with the offset it points at) where no kind can work. Values
that are only known at run time (``auth.*``, ``val()``) are sets of several
kinds, so a check against them passes here and is made again when the rule
runs, where a mismatch is an error that denies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .errors import ExpressionError
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

Type = frozenset[str]

NULL, BOOLEAN, NUMBER, STRING = "null", "boolean", "number", "string"
OBJECT, SNAPSHOT, REGEX, ARRAY, QUERY = "object", "snapshot", "regex", "array", "query"


def _t(*kinds: str) -> Type:
    return frozenset(kinds)


PRIMITIVE = _t(NULL, BOOLEAN, NUMBER, STRING)  # val(), getPriority(), query.startAt ...
ANY = PRIMITIVE | {OBJECT}  # a property of auth or of one of its objects
_EQUATABLE = ANY
_ORDERED = _t(NUMBER, STRING)
_NAMES = {
    NULL: "null",
    BOOLEAN: "a boolean",
    NUMBER: "a number",
    STRING: "a string",
    OBJECT: "an object",
    SNAPSHOT: "a snapshot",
    REGEX: "a regular expression",
    ARRAY: "an array",
    QUERY: "the query variable",
}

QUERY_FIELDS: dict[str, Type] = {
    "orderByKey": _t(BOOLEAN),
    "orderByValue": _t(BOOLEAN),
    "orderByPriority": _t(BOOLEAN),
    "orderByChild": _t(STRING, NULL),
    "startAt": PRIMITIVE,
    "endAt": PRIMITIVE,
    "equalTo": PRIMITIVE,
    "limitToFirst": _t(NUMBER, NULL),
    "limitToLast": _t(NUMBER, NULL),
}


@dataclass(frozen=True, slots=True)
class Signature:
    """A method's parameters (each the kinds it accepts) and its result."""

    params: tuple[Type, ...]
    result: Type
    # Checks arguments whose syntax matters (matches(), hasChildren()); replaces ``params``.
    special: Callable[[_Checker, Call], None] | None = None


def _matches_args(checker: _Checker, call: Call) -> None:
    _arity(call, 1)
    if not isinstance(call.args[0], RegexLiteral):
        raise ExpressionError(
            "Type error: matches() takes a regular expression literal, as in /^[a-z]+$/",
            call.args[0].pos,
        )


def _has_children_args(checker: _Checker, call: Call) -> None:
    _arity(call, 0, 1)
    if not call.args:
        return
    keys = call.args[0]
    if not isinstance(keys, ArrayLiteral):
        raise ExpressionError(
            "Type error: hasChildren() takes an array of strings, as in ['a', 'b']", keys.pos
        )
    if not keys.items:
        raise ExpressionError("Type error: hasChildren() needs at least one key", keys.pos)
    for item in keys.items:
        _expect(checker.infer(item), _t(STRING), "each key of hasChildren()", item.pos)


_SNAPSHOT_METHODS: dict[str, Signature] = {
    "val": Signature((), PRIMITIVE),
    "child": Signature((_t(STRING),), _t(SNAPSHOT)),
    "parent": Signature((), _t(SNAPSHOT)),
    "hasChild": Signature((_t(STRING),), _t(BOOLEAN)),
    "hasChildren": Signature((), _t(BOOLEAN), _has_children_args),
    "exists": Signature((), _t(BOOLEAN)),
    "getPriority": Signature((), PRIMITIVE),
    "isNumber": Signature((), _t(BOOLEAN)),
    "isString": Signature((), _t(BOOLEAN)),
    "isBoolean": Signature((), _t(BOOLEAN)),
}
_STRING_METHODS: dict[str, Signature] = {
    "contains": Signature((_t(STRING),), _t(BOOLEAN)),
    "beginsWith": Signature((_t(STRING),), _t(BOOLEAN)),
    "endsWith": Signature((_t(STRING),), _t(BOOLEAN)),
    "replace": Signature((_t(STRING), _t(STRING)), _t(STRING)),
    "toLowerCase": Signature((), _t(STRING)),
    "toUpperCase": Signature((), _t(STRING)),
    "matches": Signature((_t(REGEX),), _t(BOOLEAN), _matches_args),
}


def check_rule(tree: Node, variables: dict[str, Type]) -> None:
    """Raise ExpressionError unless ``tree`` type-checks as a rule (a boolean).

    ``variables`` maps each name in scope to its type; see ``scope()``.
    """
    kinds = _Checker(variables).infer(tree)
    if BOOLEAN not in kinds:
        raise ExpressionError(
            f"Expression must evaluate to a boolean, not {_describe(kinds)}", tree.pos
        )


def scope(wildcards: frozenset[str]) -> dict[str, Type]:
    """The variables of a rule and their types, with the ``$wildcards`` bound above it."""
    names = {
        "auth": ANY,  # null when signed out; Firebase lets string methods be tried on it
        "now": _t(NUMBER),
        "root": _t(SNAPSHOT),
        "data": _t(SNAPSHOT),
        "newData": _t(SNAPSHOT),
        "query": _t(QUERY),
    }
    names.update(dict.fromkeys(wildcards, _t(STRING)))
    return names


# --- helpers --------------------------------------------------------------------------


def _describe(kinds: Type) -> str:
    if kinds >= ANY - {NULL}:
        return "a value of any type"
    names = sorted(_NAMES[k] for k in kinds)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _expect(kinds: Type, allowed: Type, what: str, pos: int) -> None:
    if not kinds & allowed:
        raise ExpressionError(
            f"Type error: {what} must be {_describe(allowed)}, got {_describe(kinds)}", pos
        )


def _arity(call: Call, *counts: int) -> None:
    if len(call.args) not in counts:
        expected = " or ".join(str(c) for c in counts)
        plural = "" if counts == (1,) else "s"
        raise ExpressionError(
            f"Type error: {call.method}() takes {expected} argument{plural}, got {len(call.args)}",
            call.pos,
        )


class _Checker:
    def __init__(self, variables: dict[str, Type]) -> None:
        self.variables = variables

    def infer(self, node: Node) -> Type:
        """The kinds ``node`` may have at run time; raises ExpressionError if none works."""
        match node:
            case Literal(value):
                return _t(_literal_kind(value))
            case RegexLiteral():
                return _t(REGEX)
            case ArrayLiteral(items):
                for item in items:
                    self.infer(item)
                return _t(ARRAY)
            case Name(name):
                kinds = self.variables.get(name)
                if kinds is None:
                    raise ExpressionError(f"Unknown variable '{name}'", node.pos)
                return kinds
            case Member(obj, name):
                return self.property(self.infer(obj), name, node.pos)
            case Index(obj, key):
                return self.index(self.infer(obj), key, node.pos)
            case Call():
                return self.call(node)
            case Unary(op, operand):
                kinds = self.infer(operand)
                if op == "!":
                    _expect(kinds, _t(BOOLEAN), "the operand of '!'", node.pos)
                    return _t(BOOLEAN)
                _expect(kinds, _t(NUMBER), "the operand of unary '-'", node.pos)
                return _t(NUMBER)
            case Binary(op, left, right):
                return self.binary(op, self.infer(left), self.infer(right), node.pos)
            case Logical(op, left, right):
                _expect(self.infer(left), _t(BOOLEAN), f"the left side of '{op}'", node.pos)
                _expect(self.infer(right), _t(BOOLEAN), f"the right side of '{op}'", node.pos)
                return _t(BOOLEAN)
            case Conditional(test, then, otherwise):
                _expect(self.infer(test), _t(BOOLEAN), "the condition of '?:'", node.pos)
                a, b = self.infer(then), self.infer(otherwise)
                if not a & b:
                    raise ExpressionError(
                        "Type error: both branches of '?:' must have the same type,"
                        f" got {_describe(a)} and {_describe(b)}",
                        node.pos,
                    )
                return a | b
        raise ExpressionError(f"Unsupported expression {node!r}", node.pos)  # pragma: no cover

    def property(self, obj: Type, name: str, pos: int) -> Type:
        """``obj.name``: any name of an object, ``length`` of a string, a field of query."""
        found: set[str] = set()
        if OBJECT in obj:
            found |= ANY
        if STRING in obj and name == "length":
            found.add(NUMBER)
        if QUERY in obj and name in QUERY_FIELDS:
            found |= QUERY_FIELDS[name]
        if not found:
            raise ExpressionError(
                f"No such method/property '{name}' on {_describe(obj)}"
                + ("; call it as a method" if name in _methods_of(obj) else ""),
                pos,
            )
        if NULL in obj:
            found.add(NULL)  # a property of a missing value is null
        return frozenset(found)

    def index(self, obj: Type, key: Node, pos: int) -> Type:
        """``obj[key]``: any string key of an object; a literal name of anything else."""
        key_kinds = self.infer(key)
        if isinstance(key, Literal) and type(key.value) is str and not obj & {OBJECT}:
            return self.property(obj, key.value, pos)
        if OBJECT not in obj:
            raise ExpressionError(
                f"Type error: {_describe(obj)} can only be indexed with a literal name", pos
            )
        _expect(key_kinds, _t(STRING, NUMBER), "a key in brackets", pos)
        return ANY  # null included: a missing key reads as null

    def call(self, node: Call) -> Type:
        receiver = self.infer(node.obj)
        signature = _methods_of(receiver).get(node.method)
        if signature is None:
            raise ExpressionError(
                f"No such method/property '{node.method}' on {_describe(receiver)}", node.pos
            )
        if signature.special is not None:
            signature.special(self, node)
            return signature.result
        types = [self.infer(arg) for arg in node.args]
        _arity(node, len(signature.params))
        for i, (arg, kinds, allowed) in enumerate(
            zip(node.args, types, signature.params, strict=True), start=1
        ):
            _expect(kinds, allowed, f"argument {i} of {node.method}()", arg.pos)
        return signature.result

    def binary(self, op: str, left: Type, right: Type, pos: int) -> Type:
        if op == "+":
            _expect(left, _ORDERED, "the left side of '+'", pos)
            _expect(right, _ORDERED, "the right side of '+'", pos)
            if STRING not in left and STRING not in right:
                return _t(NUMBER)
            return _t(STRING) if _t(STRING) in (left, right) else _ORDERED
        if op in ("-", "*", "/", "%"):
            _expect(left, _t(NUMBER), f"the left side of '{op}'", pos)
            _expect(right, _t(NUMBER), f"the right side of '{op}'", pos)
            return _t(NUMBER)
        if op in ("==", "!=", "===", "!=="):
            for side, kinds in (("left", left), ("right", right)):
                if not kinds & _EQUATABLE:
                    hint = "; compare its val()" if SNAPSHOT in kinds else ""
                    raise ExpressionError(
                        f"Type error: '{op}' can't compare {_describe(kinds)}"
                        f" (the {side} side){hint}",
                        pos,
                    )
            return _t(BOOLEAN)
        # < <= > >=
        _expect(left, _ORDERED, f"the left side of '{op}'", pos)
        _expect(right, _ORDERED, f"the right side of '{op}'", pos)
        if not (left & right & _ORDERED):
            raise ExpressionError(
                f"Type error: '{op}' compares two numbers or two strings,"
                f" got {_describe(left & _ORDERED)} and {_describe(right & _ORDERED)}",
                pos,
            )
        return _t(BOOLEAN)


def _methods_of(kinds: Type) -> dict[str, Signature]:
    methods: dict[str, Signature] = {}
    if SNAPSHOT in kinds:
        methods.update(_SNAPSHOT_METHODS)
    if STRING in kinds:
        methods.update(_STRING_METHODS)
    return methods


def _literal_kind(value: object) -> str:
    if value is None:
        return NULL
    if type(value) is bool:
        return BOOLEAN
    if type(value) is str:
        return STRING
    return NUMBER
