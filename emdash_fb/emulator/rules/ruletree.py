"""The rule tree: one node per rules-file location, with compiled rules.

Built once from the loaded rules file, checking its structure as it goes.
Children are a dict of named keys plus at most one ``$wildcard``, so finding
the rules for a path is one dict lookup per key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ExpressionError, RulesError
from .evaluate import Rule, compile_rule
from .source import JsonPath, LoadedSource

RULE_KINDS = (".read", ".write", ".validate")
_INDEX_ON = ".indexOn"
# Keys may not contain these; "$" is allowed only as a wildcard's first character.
_BAD_KEY = re.compile(r"[.#\[\]/\x00-\x1f\x7f]|.\$")


@dataclass(slots=True, eq=False)
class RuleNode:
    read: Rule | None = None
    write: Rule | None = None
    validate: Rule | None = None
    index_on: list[str] = field(default_factory=list)
    named: dict[str, RuleNode] = field(default_factory=dict)
    wildcard: str | None = None  # e.g. "$uid"
    wildcard_node: RuleNode | None = None
    # True when this node or a node below it has a .validate; lets validation skip subtrees.
    validates: bool = False

    def step(self, key: str) -> RuleNode | None:
        """The child rule node for ``key``: a named child first, else the wildcard."""
        node = self.named.get(key)
        return node if node is not None else self.wildcard_node


def build_tree(loaded: LoadedSource) -> RuleNode:
    """The rule tree of a loaded rules file; raises RulesError on bad structure."""
    top = loaded.value
    if type(top) is not dict or "rules" not in top:
        raise RulesError('Line 1: The rules file must be an object with a "rules" key')
    for key in top:
        if key != "rules":
            line = loaded.line_of((key,))
            raise RulesError(f"Line {line}: Unknown top-level key '{key}', expected only \"rules\"")
    return _Builder(loaded).node(("rules",), top["rules"], frozenset())


class _Builder:
    def __init__(self, loaded: LoadedSource) -> None:
        self.loaded = loaded

    def fail(self, at: JsonPath, message: str) -> RulesError:
        return RulesError(f"Line {self.loaded.line_of(at)}: {message}")

    def node(self, at: JsonPath, value: Any, wildcards: frozenset[str]) -> RuleNode:
        where = _location(at)
        if type(value) is not dict:
            raise self.fail(at, f"Rules at {where} must be an object, found {_json_type(value)}")
        node = RuleNode()
        for key in value:
            if key.startswith("$") and len(key) > 1 and not _BAD_KEY.search(key):
                self.add_wildcard(node, at, key, value[key], wildcards)
            elif key.startswith("."):
                continue
            elif not key or _BAD_KEY.search(key) or key.startswith("$"):
                raise self.fail((*at, key), f"Invalid key '{key}' at {where}")
            else:
                node.named[key] = self.node((*at, key), value[key], wildcards)
        for key, rule_value in value.items():
            if not key.startswith("."):
                continue
            if key in RULE_KINDS:
                setattr(node, key[1:], self.rule(at, key, rule_value, wildcards))
            elif key == _INDEX_ON:
                node.index_on = self.index_on(at, rule_value)
            else:
                raise self.fail((*at, key), f"Unknown rule key '{key}' at {where}")
        node.validates = node.validate is not None or any(
            child.validates
            for child in (*node.named.values(), node.wildcard_node)
            if child is not None
        )
        return node

    def add_wildcard(
        self, node: RuleNode, at: JsonPath, key: str, value: Any, wildcards: frozenset[str]
    ) -> None:
        if node.wildcard is not None:
            raise self.fail(
                (*at, key),
                f"Only one $wildcard is allowed at {_location(at)}, found {node.wildcard} and {key}",
            )
        if key in wildcards:
            raise self.fail(
                (*at, key), f"Wildcard '{key}' at {_location(at)} is already in use above"
            )
        node.wildcard = key
        node.wildcard_node = self.node((*at, key), value, wildcards | {key})

    def rule(self, at: JsonPath, kind: str, value: Any, wildcards: frozenset[str]) -> Rule:
        if type(value) is not bool and type(value) is not str:
            raise self.fail(
                (*at, kind),
                f"{kind} at {_location(at)} must be a boolean or an expression string,"
                f" found {_json_type(value)}",
            )
        try:
            return compile_rule(value, wildcards)
        except ExpressionError as exc:
            where = (*at, kind)
            column = self.loaded.column_of(where, exc.pos)
            line = f"Line {self.loaded.line_of(where)}"
            if column is not None:
                line += f", column {column}"
            raise RulesError(f"{line}: {exc} in {kind} at {_location(at)}") from None
        except RecursionError:
            raise self.fail(
                (*at, kind), f"Expression nested too deeply in {kind} at {_location(at)}"
            ) from None

    def index_on(self, at: JsonPath, value: Any) -> list[str]:
        names = [value] if type(value) is str else value
        if type(names) is not list or not all(type(n) is str and n for n in names):
            raise self.fail(
                (*at, _INDEX_ON),
                f".indexOn at {_location(at)} must be a string or a list of strings",
            )
        return list(names)


def _location(at: JsonPath) -> str:
    return "/" + "/".join(at)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if type(value) is bool:
        return "a boolean"
    if type(value) in (int, float):
        return "a number"
    if type(value) is str:
        return "a string"
    if type(value) is list:
        return "an array"
    return "an object"
