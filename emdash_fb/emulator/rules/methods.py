"""The methods a rule can call: on snapshots and on strings.

``lookup(name)`` is resolved once when an expression is compiled; the
returned function picks the receiver's type at run time, so an unknown method
or a method on the wrong type is an EvalError (deny), never a crash.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import EvalError
from .operators import kind_of, require_string
from .snapshot import Snapshot

Method = Callable[[Any, list[Any]], Any]


def _arity(name: str, args: list[Any], *counts: int) -> None:
    if len(args) not in counts:
        expected = " or ".join(str(c) for c in counts)
        raise EvalError(f"{name}() takes {expected} argument(s), got {len(args)}")


def _path_arg(name: str, args: list[Any]) -> str:
    _arity(name, args, 1)
    return require_string(args[0], f"{name}()")


def _no_args(name: str, call: Callable[[Snapshot], Any]) -> Callable[[Snapshot, list[Any]], Any]:
    def method(snap: Snapshot, args: list[Any]) -> Any:
        _arity(name, args, 0)
        return call(snap)

    return method


def _has_children(snap: Snapshot, args: list[Any]) -> bool:
    _arity("hasChildren", args, 0, 1)
    if not args:
        return snap.has_children()
    keys = args[0]
    if type(keys) is not list:
        raise EvalError(f"hasChildren() needs an array of keys, got {kind_of(keys)}")
    return snap.has_children([require_string(k, "hasChildren()") for k in keys])


_SNAPSHOT_METHODS: dict[str, Callable[[Snapshot, list[Any]], Any]] = {
    "val": _no_args("val", Snapshot.val),
    "child": lambda s, a: s.child(_path_arg("child", a)),
    "parent": _no_args("parent", Snapshot.parent),
    "hasChild": lambda s, a: s.has_child(_path_arg("hasChild", a)),
    "hasChildren": _has_children,
    "exists": _no_args("exists", Snapshot.exists),
    "getPriority": _no_args("getPriority", Snapshot.get_priority),
    "isNumber": _no_args("isNumber", Snapshot.is_number),
    "isString": _no_args("isString", Snapshot.is_string),
    "isBoolean": _no_args("isBoolean", Snapshot.is_boolean),
}


def _string_test(name: str, test: Callable[[str, str], bool]) -> Callable[[str, list[Any]], bool]:
    def method(s: str, args: list[Any]) -> bool:
        _arity(name, args, 1)
        return test(s, require_string(args[0], f"{name}()"))

    return method


def _replace(s: str, args: list[Any]) -> str:
    _arity("replace", args, 2)
    old = require_string(args[0], "replace()")
    new = require_string(args[1], "replace()")
    return s.replace(old, new)


def _matches(s: str, args: list[Any]) -> bool:
    _arity("matches", args, 1)
    if not isinstance(args[0], re.Pattern):
        raise EvalError("matches() needs a regular expression literal like /^a+$/")
    return args[0].search(s) is not None


def _case(name: str, convert: Callable[[str], str]) -> Callable[[str, list[Any]], str]:
    def method(s: str, args: list[Any]) -> str:
        _arity(name, args, 0)
        return convert(s)

    return method


_STRING_METHODS: dict[str, Callable[[str, list[Any]], Any]] = {
    "contains": _string_test("contains", lambda s, sub: sub in s),
    "beginsWith": _string_test("beginsWith", str.startswith),
    "endsWith": _string_test("endsWith", str.endswith),
    "replace": _replace,
    "toLowerCase": _case("toLowerCase", str.lower),
    "toUpperCase": _case("toUpperCase", str.upper),
    "matches": _matches,
}


def lookup(name: str) -> Method:
    """A function ``(receiver, args) -> result`` for calls of method ``name``."""
    on_snapshot = _SNAPSHOT_METHODS.get(name)
    on_string = _STRING_METHODS.get(name)

    def call(receiver: Any, args: list[Any]) -> Any:
        if type(receiver) is Snapshot and on_snapshot is not None:
            return on_snapshot(receiver, args)
        if type(receiver) is str and on_string is not None:
            return on_string(receiver, args)
        owner = "snapshot" if type(receiver) is Snapshot else _describe(receiver)
        raise EvalError(f"no method {name}() on {owner}")

    return call


def _describe(v: Any) -> str:
    try:
        return kind_of(v)
    except EvalError:
        return type(v).__name__
