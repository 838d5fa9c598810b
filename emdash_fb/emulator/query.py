"""RTDB REST queries: decoding, validation, Firebase child ordering, filtering.

Owns the path from a raw query string to the selected children of a node:

- ``parse_query_string`` decodes what firebase-admin and pyrebase4 actually send
  (they disagree on what a raw ``+`` means);
- ``parse_query`` validates ``orderBy``/``startAt``/``endAt``/``equalTo``/
  ``limitToFirst``/``limitToLast`` and raises ``QueryError`` with Firebase's
  400 texts;
- ``sort_key`` / ``key_sort_key`` / ``compare_children`` implement Firebase's
  ordering;
- ``Query.apply`` / ``Query.window`` select children of a node in export form
  (see ``values.py``).

Decisions where Firebase is silent or unverified:

- ``null`` is a legal ``startAt``/``endAt``/``equalTo`` (it is the lowest value;
  ``equalTo=null`` selects children whose ordered-by value is missing), so each
  bound carries a ``has_*`` flag. Ordering by ``$key`` rejects it (keys are strings).
- Integer-like keys follow the backend rule that firebase-js-sdk #2212 mirrors:
  ``-?0*\\d{1,10}`` within int32 (leading zeros allowed), ordered numerically,
  equal numbers by length. Strings compare by UTF-16 code units, like the
  server and the JS SDK (Python alone would compare code points).
- ``limitToFirst=0`` is accepted (firebase-admin allows 0) and selects nothing.
- ``shallow=true`` lets limits go without ``orderBy`` (firebase-tools sends
  ``shallow=true&limitToFirst=N``); such a query uses the default order,
  ``$priority`` (which is key order when nothing has a priority).
- A leaf is returned as-is by a query without a range; with a range it
  selects nothing. A filtered object keeps its own ``.priority``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import Any
from urllib.parse import unquote, unquote_plus

from .values import PRIORITY, VALUE, Json, children, get_priority, is_leaf

__all__ = [
    "Query",
    "QueryError",
    "compare_children",
    "key_sort_key",
    "parse_query",
    "parse_query_string",
    "sort_key",
]

# Firebase's own texts (seen in public captures of its REST responses).
ERR_ORDER_BY_REQUIRED = "orderBy must be defined when other query parameters are defined"
ERR_ORDER_BY_INVALID = "orderBy must be a valid JSON encoded path"
ERR_CONSTRAINT = "Constraint index field must be a JSON primitive"
ERR_BOTH_LIMITS = "Only one of limitToFirst and limitToLast may be specified"
ERR_EQUAL_WITH_RANGE = (
    "equalTo cannot be specified in addition to startAfter, startAt, endAt, or endBefore"
)
ERR_KEY_TYPE = "Provided key index type is invalid, must be string"
# Ours, in the same style (no Firebase text found).
ERR_PRIORITY_TYPE = "Provided priority index type is invalid, must be null, number or string"

KEY = "$key"
VALUE_ORDER = "$value"
PRIORITY_ORDER = "$priority"
_SPECIAL_ORDERS = (KEY, VALUE_ORDER, PRIORITY_ORDER)
_RANGE_PARAMS = ("startAt", "endAt", "equalTo")
_LIMIT_PARAMS = ("limitToFirst", "limitToLast")

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_BAD_PATH_CHARS = re.compile(r"[.$#\[\]\x00-\x1f\x7f]")

SortKey = tuple[Any, ...]


class QueryError(ValueError):
    """A bad query; ``str(e)`` is the text for a 400 ``{"error": ...}`` body."""


# -- ordering ---------------------------------------------------------------


_ASTRAL = "\U00010000"


def _utf16_order(s: str) -> str:
    """A string whose code-point order is ``s``'s UTF-16 code-unit order.

    The two orders differ only where an astral character (a surrogate pair in
    UTF-16, so below U+E000) meets one in U+E000..U+FFFF; spelling astral
    characters as their surrogates fixes that. Most strings come back as-is.
    """
    if s.isascii() or max(s) < _ASTRAL:
        return s
    out = []
    for c in s:
        if c >= _ASTRAL:
            cp = ord(c) - 0x10000
            out.append(chr(0xD800 + (cp >> 10)) + chr(0xDC00 + (cp & 0x3FF)))
        else:
            out.append(c)
    return "".join(out)


_INT_FIRST = frozenset("-0123456789")
_INT_LAST = frozenset("0123456789")


def _int_key(key: str) -> int | None:
    """The value of an int32-like key (``-?0*\\d{1,10}``), else None."""
    # The cheap first/last character test rejects push ids and names early.
    if not key or key[0] not in _INT_FIRST or key[-1] not in _INT_LAST:
        return None
    digits = key[1:] if key[0] == "-" else key
    if not (digits.isdigit() and digits.isascii()):
        return None
    n = int(key)
    return n if _INT32_MIN <= n <= _INT32_MAX else None


def key_sort_key(key: str) -> SortKey:
    """Firebase key order: int32-like keys first (numerically), then strings."""
    n = _int_key(key)
    if n is not None:
        # "5" < "05" < "005": equal numbers order by length, then text.
        return (0, n, len(key), key)
    return (1, 0, 0, key if key.isascii() else _utf16_order(key))


_NULL, _FALSE, _TRUE, _OBJECT = (0, 0), (1, 0), (2, 0), (5, 0)


def _rank(node: Json) -> SortKey:
    """(rank, comparable) for a primitive or export-form node.

    null < false < true < numbers < strings < objects (all objects equal).
    """
    t = type(node)
    if t is dict:
        if VALUE not in node:
            return _OBJECT
        node = node[VALUE]
        t = type(node)
    if t is str:
        return (4, node if node.isascii() else _utf16_order(node))
    if t is int or t is float:
        return (3, node)
    if node is None:
        return _NULL
    if t is bool:
        return _TRUE if node else _FALSE
    return _OBJECT


def _key_sorted(pairs: Iterable[tuple[str, Json]]) -> list[tuple[str, Json]]:
    """``(key, value)`` pairs in Firebase key order.

    Equivalent to sorting by ``key_sort_key`` but most of the work stays in C:
    int-like keys are split off by a cheap last-character test, and ASCII
    names sort as plain strings.
    """
    ints: list[tuple[SortKey, tuple[str, Json]]] = []
    names: list[tuple[str, Json]] = []
    for kv in pairs:
        k = kv[0]
        if k and k[-1] in _INT_LAST and (n := _int_key(k)) is not None:
            ints.append(((n, len(k), k), kv))
        else:
            names.append(kv)
    first = itemgetter(0)
    ints.sort(key=first)
    if "".join(map(first, names)).isascii():
        names.sort(key=first)
    else:
        names.sort(key=lambda kv: _utf16_order(kv[0]))
    return [kv for _, kv in ints] + names


def _split_path(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.split("/") if p)


def _descend(node: Json, path: tuple[str, ...]) -> Json:
    for key in path:
        if not isinstance(node, dict) or key == PRIORITY:
            return None
        node = node.get(key)
        if node is None:
            return None
    return node


def _rank_fn(order_by: str | None) -> Callable[[Json], SortKey]:
    """The function giving a child's (rank, comparable) under ``order_by`` (not for $key)."""
    if order_by is None or order_by == PRIORITY_ORDER:
        return lambda node: _rank(node.get(PRIORITY)) if type(node) is dict else _NULL
    if order_by == VALUE_ORDER:
        return _rank
    path = _split_path(order_by)
    if len(path) == 1 and path[0] != PRIORITY:
        (name,) = path
        return lambda node: _rank(node.get(name)) if type(node) is dict else _NULL
    return lambda node: _rank(_descend(node, path))


def sort_key(order_by: str | None, key: str, value: Json) -> SortKey:
    """The sort key of child ``key`` (export-form ``value``) under ``order_by``.

    ``order_by`` is ``"$key"``, ``"$value"``, ``"$priority"``, a child path, or
    ``None`` (Firebase's default order, the same as ``"$priority"``). Ties are
    broken by key order.
    """
    if order_by == KEY:
        return key_sort_key(key)
    return _rank_fn(order_by)(value) + key_sort_key(key)


def compare_children(order_by: str | None, a: tuple[str, Json], b: tuple[str, Json]) -> int:
    """-1, 0 or 1 comparing two ``(key, value)`` children under ``order_by``."""
    ka, kb = sort_key(order_by, *a), sort_key(order_by, *b)
    return (ka > kb) - (ka < kb)


# -- the query ----------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """A parsed RTDB query. An empty ``Query()`` selects everything.

    A bound given as a non-``None`` value sets its ``has_*`` flag itself; pass
    ``has_start_at=True`` (etc.) to mean an explicit ``null`` bound.
    """

    order_by: str | None = None
    start_at: Json = None
    end_at: Json = None
    equal_to: Json = None
    limit_to_first: int | None = None
    limit_to_last: int | None = None
    has_start_at: bool = False
    has_end_at: bool = False
    has_equal_to: bool = False

    def __post_init__(self) -> None:
        for name in ("start_at", "end_at", "equal_to"):
            if getattr(self, name) is not None:
                object.__setattr__(self, f"has_{name}", True)

    @property
    def is_empty(self) -> bool:
        """True when the request carried no query parameters at all."""
        return (
            self.order_by is None
            and not self.has_range
            and self.limit_to_first is None
            and self.limit_to_last is None
        )

    @property
    def has_range(self) -> bool:
        return self.has_start_at or self.has_end_at or self.has_equal_to

    @property
    def has_limit(self) -> bool:
        return self.limit_to_first is not None or self.limit_to_last is not None

    def needs_index(self) -> str | None:
        """The ``.indexOn`` entry this query needs: ``".value"``, a child path, or None."""
        if self.order_by is None or self.order_by in (KEY, PRIORITY_ORDER):
            return None
        if self.order_by == VALUE_ORDER:
            return ".value"
        return self.order_by

    def rules_view(self) -> dict[str, Json]:
        """The rules engine's ``query`` variable.

        Exactly one ordering is set. A query without ``orderBy`` (``shallow``, or
        limits in the default order) reads as ordered by key, as on live Firebase.
        """
        child = self.order_by if self.order_by not in (None, *_SPECIAL_ORDERS) else None
        return {
            "orderByKey": self.order_by in (None, KEY),
            "orderByValue": self.order_by == VALUE_ORDER,
            "orderByPriority": self.order_by == PRIORITY_ORDER,
            "orderByChild": child,
            "startAt": self.start_at if self.has_start_at else None,
            "endAt": self.end_at if self.has_end_at else None,
            "equalTo": self.equal_to if self.has_equal_to else None,
            "limitToFirst": self.limit_to_first,
            "limitToLast": self.limit_to_last,
        }

    # -- selection --

    @cached_property
    def _path(self) -> tuple[str, ...]:
        return _split_path(self.order_by or "")

    @cached_property
    def _child_rank(self) -> Callable[[Json], SortKey]:
        return _rank_fn(self.order_by)

    @cached_property
    def _bounds(self) -> tuple[SortKey | None, SortKey | None]:
        """Inclusive (low, high) bounds: key sort keys for $key, else value ranks."""
        bound = key_sort_key if self.order_by == KEY else _rank
        if self.has_equal_to:
            lo = hi = bound(self.equal_to)
        else:
            lo = bound(self.start_at) if self.has_start_at else None
            hi = bound(self.end_at) if self.has_end_at else None
        return lo, hi

    def in_range(self, key: str, value: Json) -> bool:
        """Whether child ``key`` passes startAt/endAt/equalTo (limits not considered)."""
        lo, hi = self._bounds
        if lo is None and hi is None:
            return True
        r = key_sort_key(key) if self.order_by == KEY else self._child_rank(value)
        return (lo is None or r >= lo) and (hi is None or r <= hi)

    def sort_key(self, key: str, value: Json) -> SortKey:
        """Child ``key``'s position in this query's order."""
        return sort_key(self.order_by, key, value)

    def _ranked(self, kids: dict[str, Json]) -> list[tuple[SortKey, str, Json]]:
        """``(rank, key, child)`` for every child; the cases are inlined for speed."""
        items = kids.items()
        order_by, path = self.order_by, self._path
        if order_by == KEY:
            return [(key_sort_key(k), k, v) for k, v in items]
        if order_by == VALUE_ORDER:
            return [(_rank(v), k, v) for k, v in items]
        if order_by is None or order_by == PRIORITY_ORDER:
            name = PRIORITY
        elif len(path) == 1:
            name = path[0]
        else:
            return [(_rank(_descend(v, path)), k, v) for k, v in items]
        return [(_rank(v.get(name)) if type(v) is dict else _NULL, k, v) for k, v in items]

    def window(self, node: Json) -> dict[str, Json]:
        """The selected children of ``node`` (export form); dict order is unspecified."""
        kids = children(node)
        if not kids:
            return {}
        n = self.limit_to_first if self.limit_to_first is not None else self.limit_to_last
        if not self.has_range:
            if n is None or n >= len(kids):
                return dict(kids)
            if self.order_by == KEY:
                ordered = _key_sorted(kids.items())
                return dict(
                    ordered[:n] if self.limit_to_first is not None else ordered[-n:] if n else []
                )
        if n is None and self._numeric_range is not None:
            return self._numeric_window(kids, *self._numeric_range)
        ranked = self._ranked(kids)
        if self.has_range:
            lo, hi = self._bounds
            if lo is not None:
                ranked = [d for d in ranked if d[0] >= lo]
            if hi is not None:
                ranked = [d for d in ranked if d[0] <= hi]
        if n is None or n >= len(ranked):
            return {k: v for _, k, v in ranked}
        return dict(self._limit(ranked, n))

    @cached_property
    def _numeric_range(self) -> tuple[str, float | None, float | None] | None:
        """(child, low, high) for a startAt/endAt range on one child with number bounds --
        the window a stream of a growing collection asks for (``orderBy="at"&startAt=T``)
        -- or None."""
        path = self._path
        if self.order_by in (None, KEY, VALUE_ORDER, PRIORITY_ORDER) or len(path) != 1:
            return None
        if self.has_equal_to:
            return None

        def number(bound: Json, given: bool) -> float | None | bool:
            if not given:
                return None
            return bound if type(bound) in (int, float) else False

        lo, hi = number(self.start_at, self.has_start_at), number(self.end_at, self.has_end_at)
        if lo is False or hi is False:
            return None
        return path[0], lo, hi  # type: ignore[return-value]

    def _numeric_window(
        self, kids: dict[str, Json], name: str, lo: float | None, hi: float | None
    ) -> dict[str, Json]:
        """The children whose ``name`` is a number within [lo, hi]; children whose value
        is no number are judged by the general order (nulls, booleans sort below numbers,
        strings and objects above)."""
        out: dict[str, Json] = {}
        for k, v in kids.items():
            x = v.get(name) if type(v) is dict else None
            if type(x) in (int, float):
                if (lo is None or x >= lo) and (hi is None or x <= hi):
                    out[k] = v
            elif self.in_range(k, v):
                out[k] = v
        return out

    def ordered(self, node: Json) -> list[tuple[str, Json]]:
        """The selected children of ``node`` as ``(key, value)`` pairs in query order."""
        if self.order_by == KEY:
            return _key_sorted(self.window(node).items())
        ranked = self._ranked(self.window(node))
        ranked.sort(key=lambda d: d[0] + key_sort_key(d[1]))
        return [(k, v) for _, k, v in ranked]

    def _limit(self, ranked: list[tuple[SortKey, str, Json]], n: int) -> list[tuple[str, Json]]:
        """The first (limitToFirst) or last (limitToLast) ``n`` < len(ranked) children."""
        if n == 0:
            return []
        first = self.limit_to_first is not None
        rank0 = itemgetter(0)
        # A sort, not a heap: children are mostly stored in their order already (push ids,
        # server timestamps), which timsort takes in one linear pass -- the very case where a
        # heap of the last n replaces its top at every step.
        ranked = sorted(ranked, key=rank0)
        chosen = ranked[:n] if first else ranked[len(ranked) - n :]
        if self.order_by == KEY:  # key sort keys are unique: no ties
            return [(k, v) for _, k, v in chosen]
        # Equal values order by key, so a run of equal values cut by the limit
        # is re-decided in key order.
        cut = max(map(rank0, chosen)) if first else min(map(rank0, chosen))
        kept = [(k, v) for r, k, v in chosen if r != cut]
        tied = _key_sorted((k, v) for r, k, v in ranked if r == cut)
        need = n - len(kept)
        return kept + (tied[:need] if first else tied[len(tied) - need :])

    def apply(self, node: Json) -> Json:
        """``node`` (export form) reduced to the selected children, or ``None``.

        A leaf or absent node comes back unchanged unless the query has a range,
        which nothing but children can satisfy. The node's own ``.priority`` is
        kept on a non-empty result.
        """
        if self.is_empty or node is None:
            return node
        if is_leaf(node):
            return None if self.has_range else node
        if not self.has_range and not self.has_limit:
            return node
        selected = self.window(node)
        if not selected:
            return None
        if len(selected) == len(children(node)):
            return node
        prio = get_priority(node)
        if prio is not None:
            selected[PRIORITY] = prio
        return selected


# -- parsing ------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _json(text: str) -> Json:
    # NaN/Infinity are not JSON.
    return json.loads(text, parse_constant=_reject_constant)


def _parse_order_by(text: str) -> str:
    try:
        value = _json(text)
    except ValueError:
        raise QueryError(ERR_ORDER_BY_INVALID) from None
    if not isinstance(value, str):
        raise QueryError(ERR_ORDER_BY_INVALID)
    if value in _SPECIAL_ORDERS:
        return value
    path = _split_path(value)
    if not path or any(_BAD_PATH_CHARS.search(p) for p in path):
        raise QueryError(ERR_ORDER_BY_INVALID)
    return "/".join(path)


def _parse_limit(name: str, text: str) -> int:
    if not text.isascii():
        raise QueryError(f"{name} must be an integer")
    if text == "" or (text.startswith("-") and text[1:].isdigit()):
        raise QueryError(f"{name} must be positive")
    if not text.isdigit():
        raise QueryError(f"{name} must be an integer")
    return int(text)


def _parse_bound(order_by: str, text: str) -> Json:
    try:
        value = _json(text)
    except ValueError:
        raise QueryError(ERR_CONSTRAINT) from None
    if isinstance(value, dict | list):
        raise QueryError(ERR_CONSTRAINT)
    if order_by == KEY and not isinstance(value, str):
        raise QueryError(ERR_KEY_TYPE)
    if order_by == PRIORITY_ORDER and isinstance(value, bool):
        raise QueryError(ERR_PRIORITY_TYPE)
    return value


def parse_query(params: Mapping[str, str]) -> Query:
    """A ``Query`` from decoded query parameters; other parameters are ignored.

    Raises ``QueryError`` with Firebase's error text on bad input.
    """
    order_by: str | None = None
    if "orderBy" in params:
        order_by = _parse_order_by(params["orderBy"])
    has_range = any(p in params for p in _RANGE_PARAMS)
    has_limit = any(p in params for p in _LIMIT_PARAMS)
    if order_by is None and (has_range or (has_limit and params.get("shallow") != "true")):
        raise QueryError(ERR_ORDER_BY_REQUIRED)

    first = (
        _parse_limit("limitToFirst", params["limitToFirst"]) if "limitToFirst" in params else None
    )
    last = _parse_limit("limitToLast", params["limitToLast"]) if "limitToLast" in params else None
    if first is not None and last is not None:
        raise QueryError(ERR_BOTH_LIMITS)
    if "equalTo" in params and ("startAt" in params or "endAt" in params):
        raise QueryError(ERR_EQUAL_WITH_RANGE)

    bounds: dict[str, Json] = {}
    for name, field in (("startAt", "start_at"), ("endAt", "end_at"), ("equalTo", "equal_to")):
        if name in params:
            assert order_by is not None
            bounds[field] = _parse_bound(order_by, params[name])
    return Query(
        order_by=order_by,
        limit_to_first=first,
        limit_to_last=last,
        has_start_at="start_at" in bounds,
        has_end_at="end_at" in bounds,
        has_equal_to="equal_to" in bounds,
        **bounds,
    )


# -- raw query strings --------------------------------------------------------

# firebase-admin builds "k=<json>" by hand and requests' requote_uri escapes only
# what is illegal in a URL: these stay raw, while quote_plus (pyrebase4) always
# escapes them (and it never writes %20). Any means "+" is a literal plus; a raw
# "&" can only be left inside a value by _split_pairs re-joining one.
_ADMIN_STYLE = re.compile(r"[$!'()*,/:;=?@&\[\]]|%20")
# Escapes that requote_uri never produces but quote_plus does: "+" means space.
_FORM_ESCAPES = re.compile(r"%(?:2[1346-9A-Ca-cFf]|3[ABDFabdf]|40|5[BDbd])")


def _is_json(text: str) -> bool:
    try:
        _json(text)
    except ValueError:
        return False
    return True


def _split_pairs(raw_query: str) -> list[tuple[str, str]]:
    """Raw ``(key, value)`` pairs, re-joining JSON strings that a raw ``&`` split.

    firebase-admin sends ``equalTo="a&b"`` with the ``&`` raw. A value that
    opens a JSON string without closing it absorbs the following pieces up to
    the first one that makes it valid JSON; if none does, nothing is joined
    (so a malformed value still gets its own 400).
    """
    pieces = raw_query.split("&")
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(pieces):
        piece = pieces[i]
        i += 1
        k, eq, v = piece.partition("=")
        if v.startswith(("%22", '"')) and not _is_json(unquote(v)):
            for j in range(i, len(pieces)):
                joined = "&".join([v, *pieces[i : j + 1]])
                if _is_json(unquote(joined)):
                    v, i = joined, j + 1
                    break
        if k or eq:
            pairs.append((k, v))
    return pairs


def _plus_is_literal(pairs: list[tuple[str, str]]) -> bool:
    raw_style = any(_ADMIN_STYLE.search(v) for _, v in pairs)
    form_style = any(_FORM_ESCAPES.search(v) for _, v in pairs)
    if raw_style != form_style:
        return raw_style
    if raw_style:  # contradictory evidence: fall back to ordinary form decoding
        return False
    # No evidence either way: firebase-admin (emulator mode) always sends `ns`,
    # and pyrebase4 can never send it.
    return any(k == "ns" for k, _ in pairs)


def parse_query_string(raw_query: str) -> dict[str, str]:
    """Decode a raw query string (no leading ``?``) as firebase-admin or pyrebase4 meant it.

    The clients disagree on ``+``: pyrebase4 url-encodes with ``quote_plus``
    (space -> ``+``, ``+`` -> ``%2B``) while firebase-admin sends JSON values
    raw and lets requests escape them (space -> ``%20``, ``+`` and ``&`` stay
    raw). The query is decoded as one or the other by evidence: ``%20`` or a
    raw ``$!'()*,/:;=?@[]`` means firebase-admin; ``%2B``, ``%24`` and similar
    escapes mean form encoding; with no evidence, ``+`` is a plus only when
    ``ns`` is present (firebase-admin always sends it), else a space. A JSON
    string value split by a raw ``&`` is re-joined (see ``_split_pairs``).

    Ambiguous or lossy on the client side, so not recoverable here:
    firebase-admin values containing ``#`` (requests starts a fragment there)
    or text that looks like an escape (``%41`` is sent as ``A``); a ``+`` in
    a form-encoded query with no evidence and no ``ns``; a raw ``&`` in a
    value that is not a JSON string. The first of a repeated parameter wins.
    """
    pairs = _split_pairs(raw_query)
    decode = unquote if _plus_is_literal(pairs) else unquote_plus
    out: dict[str, str] = {}
    for k, v in pairs:
        out.setdefault(decode(k), decode(v))
    return out
