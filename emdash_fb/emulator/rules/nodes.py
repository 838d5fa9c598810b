"""The syntax tree of a rule expression, as the parser builds it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any  # None, bool, int, float or str


@dataclass(frozen=True, slots=True)
class Name:
    name: str  # a variable: auth, now, root, data, newData, query or a $wildcard


@dataclass(frozen=True, slots=True)
class Member:
    obj: Node
    name: str  # obj.name


@dataclass(frozen=True, slots=True)
class Index:
    obj: Node
    key: Node  # obj[key]


@dataclass(frozen=True, slots=True)
class Call:
    obj: Node
    method: str
    args: tuple[Node, ...]  # obj.method(args...)


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "!" or "-"
    operand: Node


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # arithmetic, comparison or equality operator
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Logical:
    op: str  # "&&" or "||"; kept apart from Binary because it short-circuits
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Conditional:
    test: Node
    then: Node
    otherwise: Node


@dataclass(frozen=True, slots=True)
class ArrayLiteral:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class RegexLiteral:
    pattern: str
    flags: str


Node = (
    Literal
    | Name
    | Member
    | Index
    | Call
    | Unary
    | Binary
    | Logical
    | Conditional
    | ArrayLiteral
    | RegexLiteral
)
