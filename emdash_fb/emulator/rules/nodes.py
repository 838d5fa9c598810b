"""The syntax tree of a rule expression, as the parser builds it.

Every node keeps ``pos``, the offset in the expression an error about it
points at: an operator's symbol, a member's or method's name, or the first
character of anything else. It takes no part in comparisons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any  # None, bool, int, float or str
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Name:
    name: str  # a variable: auth, now, root, data, newData, query or a $wildcard
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Member:
    obj: Node
    name: str  # obj.name
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Index:
    obj: Node
    key: Node  # obj[key]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    obj: Node
    method: str
    args: tuple[Node, ...]  # obj.method(args...)
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "!" or "-"
    operand: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # arithmetic, comparison or equality operator
    left: Node
    right: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Logical:
    op: str  # "&&" or "||"; kept apart from Binary because it short-circuits
    left: Node
    right: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Conditional:
    test: Node
    then: Node
    otherwise: Node
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ArrayLiteral:
    items: tuple[Node, ...]
    pos: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class RegexLiteral:
    pattern: str
    flags: str
    pos: int = field(default=0, compare=False)


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
