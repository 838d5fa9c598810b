"""The query module: Firebase ordering, filters, limits, 400 texts, client encodings."""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from emdash_fb.emulator.query import (
    Query,
    QueryError,
    compare_children,
    key_sort_key,
    parse_query,
    parse_query_string,
    sort_key,
)

Json = Any


def keys_in_order(q: Query, node: Json) -> list[str]:
    return [k for k, _ in q.ordered(node)]


def selected(q: Query, node: Json) -> set[str]:
    out = q.apply(node)
    return set() if out is None else {k for k in out if k != ".priority"}


# -- ordering -----------------------------------------------------------------


def test_value_order_across_types() -> None:
    node = {
        "obj": {"x": 1},
        "s_b": "b",
        "s_a": "a",
        "s_empty": "",
        "s_10": "10",
        "s_2": "2",
        "n_big": 10,
        "n_float": 1.5,
        "n_neg": -3,
        "n_zero": 0,
        "t": True,
        "f": False,
        "prio_leaf": {".value": 1.75, ".priority": "zzz"},
    }
    assert keys_in_order(Query(order_by="$value"), node) == [
        "f",
        "t",
        "n_neg",
        "n_zero",
        "n_float",
        "prio_leaf",
        "n_big",
        "s_empty",
        "s_10",
        "s_2",
        "s_a",
        "s_b",
        "obj",
    ]


def test_equal_values_order_by_key_with_int_keys_first() -> None:
    node = {"b": 1, "a": 1.0, "10": 1, "9": 1, "obj2": {"z": 1}, "obj1": {"y": 2}}
    assert keys_in_order(Query(order_by="$value"), node) == [
        "9",
        "10",
        "a",
        "b",
        "obj1",
        "obj2",
    ]


def test_key_order_int_like_keys_first_numerically() -> None:
    keys = [
        "b",
        "a",
        "10",
        "9",
        "-1",
        "-10",
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "5",
        "05",
        "005",
        "0",
        "1a",
        "-",
        "-a",
        "A",
        "Z",
        "_",
        "~",
        "01234567890",
        "12345678901",
    ]
    node = {k: True for k in keys}
    assert keys_in_order(Query(order_by="$key"), node) == [
        "-2147483648",
        "-10",
        "-1",
        "0",
        "5",
        "05",
        "005",
        "9",
        "10",
        "01234567890",  # leading zeros allowed: it is 1234567890
        "2147483647",
        # strings, by UTF-16 code units
        "-",
        "-2147483649",
        "-a",
        "12345678901",
        "1a",
        "2147483648",
        "A",
        "Z",
        "_",
        "a",
        "b",
        "~",
    ]


def test_key_sort_key_rejects_unicode_digits_and_signs() -> None:
    # Python's isdigit() accepts these; Firebase's [0-9] does not.
    for key in ("\u0663", "1\u0663", "+1", "1.0", " 1", "1 "):
        assert key_sort_key(key)[0] == 1, key
    assert key_sort_key("-0")[:2] == (0, 0)


def test_strings_compare_by_utf16_code_units() -> None:
    # U+1F600 is a surrogate pair (0xD83D...) in UTF-16, so it sorts before
    # U+FFFD, although its code point is larger.
    emoji, replacement, e_acute = "\U0001f600", "\ufffd", "\u00e9"
    node = {"k1": replacement, "k2": emoji, "k3": e_acute, "k4": "z"}
    assert keys_in_order(Query(order_by="$value"), node) == ["k4", "k3", "k2", "k1"]
    assert keys_in_order(Query(order_by="$key"), {replacement: 1, emoji: 1, "z": 1}) == [
        "z",
        emoji,
        replacement,
    ]
    # Mixed with ASCII names in one sort.
    assert keys_in_order(Query(order_by="$key"), {"b" + emoji: 1, "b\uffff": 1, "a": 1}) == [
        "a",
        "b" + emoji,
        "b\uffff",
    ]


def test_child_order_missing_child_is_null_and_objects_last() -> None:
    node = {
        "missing": {"other": 1},
        "leaf": 7,  # a leaf child has no children: its "age" is null
        "obj": {"age": {"nested": 1}},
        "str": {"age": "10"},
        "num": {"age": 10},
        "small": {"age": 2},
        "bool": {"age": True},
        "prio": {"age": {".value": 3, ".priority": 1}},
    }
    assert keys_in_order(Query(order_by="age"), node) == [
        "leaf",
        "missing",
        "bool",
        "small",
        "prio",
        "num",
        "str",
        "obj",
    ]


def test_nested_child_path() -> None:
    node = {
        "a": {"meta": {"ts": 3}},
        "b": {"meta": {"ts": 1}},
        "c": {"meta": 5},  # meta is a leaf: meta/ts is missing
        "d": {"meta": {"ts": 2}, ".priority": 9},
    }
    q = parse_query({"orderBy": '"/meta//ts/"'})
    assert q.order_by == "meta/ts"
    assert keys_in_order(q, node) == ["c", "b", "d", "a"]
    q = parse_query({"orderBy": '"meta/ts"', "startAt": "2", "endAt": "3"})
    assert selected(q, node) == {"a", "d"}


def test_priority_order() -> None:
    node = {
        "none_b": 1,
        "none_a": {"x": 1},
        "str_b": {".value": 1, ".priority": "b"},
        "str_a": {"x": 2, ".priority": "a"},
        "num_10": {".value": 1, ".priority": 10},
        "num_2": {"x": 3, ".priority": 2},
        "num_2b": {".value": "v", ".priority": 2.0},
        "7": {".value": 1, ".priority": 2},
    }
    assert keys_in_order(Query(order_by="$priority"), node) == [
        "none_a",
        "none_b",
        "7",
        "num_2",
        "num_2b",
        "num_10",
        "str_a",
        "str_b",
    ]
    q = parse_query({"orderBy": '"$priority"', "startAt": "2", "endAt": '"a"'})
    assert selected(q, node) == {"7", "num_2", "num_2b", "num_10", "str_a"}
    q = parse_query({"orderBy": '"$priority"', "equalTo": "null"})
    assert selected(q, node) == {"none_a", "none_b"}


def test_sort_key_and_compare_children_agree_with_query_order() -> None:
    assert compare_children("$key", ("9", 1), ("10", 1)) == -1
    assert compare_children("$value", ("a", 2), ("b", 1)) == 1
    assert compare_children("$value", ("a", 1), ("a", 1.0)) == 0
    assert compare_children("c", ("a", {"c": "x"}), ("b", {"c": 5})) == 1
    assert sort_key(None, "a", {"x": 1, ".priority": 1}) > sort_key(None, "b", {"x": 1})
    node = {"x": {"c": 2}, "y": {"c": 1}, "z": {}}
    assert Query(order_by="c").sort_key("y", node["y"]) < sort_key("c", "x", node["x"])


# -- filters and limits -----------------------------------------------------------

SCORES = {
    "alice": {"score": 5, "team": "red"},
    "bob": {"score": 3, "team": "blue"},
    "carol": {"score": 5, "team": "blue"},
    "dave": {"score": 9},
    "erin": {"score": "high"},
    "frank": {"team": "red"},
    "10": {"score": 3},
}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, set(SCORES)),
        ({"startAt": "5"}, {"alice", "carol", "dave", "erin"}),
        ({"endAt": "5"}, {"frank", "10", "bob", "alice", "carol"}),
        ({"startAt": "4", "endAt": "9"}, {"alice", "carol", "dave"}),
        ({"startAt": "9", "endAt": "4"}, set()),
        ({"equalTo": "5"}, {"alice", "carol"}),
        ({"equalTo": "null"}, {"frank"}),
        ({"equalTo": '"high"'}, {"erin"}),
        ({"equalTo": '"5"'}, set()),
        ({"startAt": "null", "endAt": "null"}, {"frank"}),
        ({"startAt": "true"}, set(SCORES) - {"frank"}),
        ({"startAt": '""'}, {"erin"}),
        ({"limitToFirst": "2"}, {"frank", "10"}),
        ({"limitToFirst": "3"}, {"frank", "10", "bob"}),
        ({"limitToLast": "2"}, {"dave", "erin"}),
        ({"limitToLast": "4"}, {"alice", "carol", "dave", "erin"}),
        ({"limitToFirst": "100"}, set(SCORES)),
        ({"limitToFirst": "0"}, set()),
        ({"limitToLast": "0"}, set()),
        # the range first, then the limit
        ({"startAt": "4", "limitToFirst": "1"}, {"alice"}),
        ({"startAt": "4", "limitToLast": "1"}, {"erin"}),
        ({"endAt": "5", "limitToLast": "2"}, {"alice", "carol"}),
        ({"endAt": "5", "limitToFirst": "2"}, {"frank", "10"}),
        ({"startAt": "3", "endAt": "5", "limitToFirst": "3"}, {"10", "bob", "alice"}),
        ({"startAt": "3", "endAt": "5", "limitToLast": "3"}, {"bob", "alice", "carol"}),
        ({"equalTo": "5", "limitToFirst": "1"}, {"alice"}),
        ({"equalTo": "5", "limitToLast": "1"}, {"carol"}),
        ({"equalTo": "3", "limitToLast": "5"}, {"10", "bob"}),
    ],
)
def test_child_filters_and_limits(params: dict[str, str], expected: set[str]) -> None:
    q = parse_query({"orderBy": '"score"', **params})
    assert selected(q, SCORES) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"startAt": '"5"'}, {"5", "10", "a", "b"}),  # numerically, then all names
        ({"endAt": '"5"'}, {"-1", "3", "5"}),
        ({"startAt": '"9"', "endAt": '"a"'}, {"10", "a"}),
        ({"startAt": '"-"'}, {"a", "b"}),
        ({"equalTo": '"10"'}, {"10"}),
        ({"equalTo": '"010"'}, set()),
        ({"limitToFirst": "2"}, {"-1", "3"}),
        ({"limitToLast": "3"}, {"10", "a", "b"}),
        ({"startAt": '"4"', "limitToFirst": "2"}, {"5", "10"}),
        ({"endAt": '"9"', "limitToLast": "2"}, {"3", "5"}),
    ],
)
def test_key_filters_compare_keys_in_key_order(params: dict[str, str], expected: set[str]) -> None:
    node = {k: {"v": k} for k in ("b", "a", "10", "5", "3", "-1")}
    assert selected(parse_query({"orderBy": '"$key"', **params}), node) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"startAt": "2"}, {"two", "three", "str", "obj"}),  # objects sort last
        ({"endAt": "true"}, {"false", "true"}),
        ({"startAt": "false", "endAt": "false"}, {"false"}),
        ({"equalTo": "2"}, {"two"}),
        ({"equalTo": "2.0"}, {"two"}),
        ({"startAt": '"a"'}, {"str", "obj"}),
        ({"startAt": '"a"', "endAt": '"z"'}, {"str"}),
        ({"limitToLast": "1"}, {"obj"}),
        ({"limitToFirst": "1"}, {"false"}),
        ({"startAt": "1", "limitToFirst": "1"}, {"two"}),
    ],
)
def test_value_filters(params: dict[str, str], expected: set[str]) -> None:
    node = {"false": False, "true": True, "two": 2, "three": 3, "str": "b", "obj": {"x": 1}}
    assert selected(parse_query({"orderBy": '"$value"', **params}), node) == expected


def test_limit_cut_inside_a_run_of_equal_values_is_settled_by_key() -> None:
    # 200 children, all with value 1 except the extremes; the limit ends inside
    # the run of 1s, which must be cut in key order. Both the heap path
    # (small limit) and the sort path (large limit) are exercised.
    node: dict[str, Json] = {f"k{i:03d}": 1 for i in range(200)}
    node["low"] = 0
    node["high"] = 2
    ones = sorted(k for k in node if k.startswith("k"))
    q = Query(order_by="$value", limit_to_first=3)
    assert selected(q, node) == {"low", ones[0], ones[1]}
    q = Query(order_by="$value", limit_to_last=3)
    assert selected(q, node) == {"high", ones[-1], ones[-2]}
    q = Query(order_by="$value", limit_to_first=150)
    assert selected(q, node) == {"low", *ones[:149]}
    q = Query(order_by="$value", limit_to_last=150)
    assert selected(q, node) == {"high", *ones[-149:]}


def test_limit_on_int_like_keys_uses_numeric_key_order_for_ties() -> None:
    node = {str(i): "same" for i in range(1, 30)}
    q = Query(order_by="$value", limit_to_first=3)
    assert selected(q, node) == {"1", "2", "3"}
    q = Query(order_by="$key", limit_to_last=2)
    assert selected(q, node) == {"28", "29"}


# -- apply: shapes ----------------------------------------------------------------


def test_apply_shapes() -> None:
    node = {"a": 1, "b": 2, ".priority": "p"}
    limit_only = Query(order_by="$key", limit_to_first=1)
    ranged = Query(order_by="$value", start_at=2)
    order_only = Query(order_by="$value")
    assert Query().is_empty and Query().apply(node) is node
    assert not order_only.is_empty and order_only.apply(node) is node
    assert limit_only.apply(node) == {"a": 1, ".priority": "p"}
    assert ranged.apply(node) == {"b": 2, ".priority": "p"}
    assert Query(order_by="$value", start_at=5).apply(node) is None
    assert Query(order_by="$key", limit_to_first=5).apply(node) is node
    # Leaves and absent nodes: only a range can exclude them.
    for leaf in (5, "text", {".value": 5, ".priority": 1}):
        assert limit_only.apply(leaf) == leaf
        assert order_only.apply(leaf) == leaf
        assert ranged.apply(leaf) is None
    assert limit_only.apply(None) is None
    # The caller's node is never modified.
    assert node == {"a": 1, "b": 2, ".priority": "p"}


def test_window_and_ordered() -> None:
    q = Query(order_by="score", start_at=3, limit_to_last=3)
    assert q.window(SCORES) == {k: SCORES[k] for k in ("carol", "dave", "erin")}
    assert [k for k, _ in q.ordered(SCORES)] == ["carol", "dave", "erin"]
    everything = Query(order_by="score")
    assert [k for k, _ in everything.ordered(SCORES)] == [
        "frank",
        "10",
        "bob",
        "alice",
        "carol",
        "dave",
        "erin",
    ]
    assert q.window(None) == {} and q.window(4) == {}
    assert q.in_range("bob", SCORES["bob"]) and not q.in_range("frank", SCORES["frank"])
    assert Query(order_by="$key", end_at="b").in_range("10", 1)
    assert not Query(order_by="$key", end_at="10").in_range("b", 1)


def test_null_bound_flags() -> None:
    q = parse_query({"orderBy": '"x"', "equalTo": "null"})
    assert q.has_equal_to and q.equal_to is None and not q.has_start_at
    assert Query(order_by="x", start_at=0).has_start_at
    assert not Query(order_by="x").has_start_at
    assert Query(order_by="x", has_end_at=True).apply({"a": {"x": 1}, "b": 2}) == {"b": 2}


def test_apply_is_fast_on_ten_thousand_children() -> None:
    rnd = random.Random(7)
    node = {
        f"-N{i:07d}{rnd.randrange(10**6):06d}": {"ts": rnd.random(), "n": i % 50, "s": f"u{i}"}
        for i in range(10_000)
    }
    node.update({str(i): {"ts": rnd.random(), "n": 3} for i in range(2_000)})
    queries = [
        Query(order_by="ts", limit_to_last=20),
        Query(order_by="n", limit_to_first=30),
        Query(order_by="n", limit_to_first=6_000),
        Query(order_by="$key", limit_to_first=10),
        Query(order_by="$key", start_at="-N0005000", limit_to_last=10),
        Query(order_by="s", start_at="u5", end_at="u6"),
        Query(order_by="$priority", limit_to_first=5),
        Query(order_by="$value", limit_to_first=5),
    ]
    for q in queries:
        best = min(_timed(q, node) for _ in range(3))
        # A few ms normally; a cmp_to_key sort or per-child re-sorting takes
        # hundreds of ms here.
        assert best < 0.1, (q, best)


def _timed(q: Query, node: Json) -> float:
    t = time.perf_counter()
    q.apply(node)
    return time.perf_counter() - t


# -- cross-check against a plain reference implementation -------------------------

_REF_INT = re.compile(r"-?0*[0-9]{1,10}")


def _ref_key(k: str) -> tuple:
    u16 = k.encode("utf-16-be", "surrogatepass")
    if _REF_INT.fullmatch(k) and -(2**31) <= int(k) < 2**31:
        return (0, int(k), len(k), u16)
    return (1, 0, 0, u16)


def _ref_value(v: Json) -> tuple:
    if isinstance(v, dict) and ".value" in v:
        v = v[".value"]
    if v is None:
        return (0,)
    if isinstance(v, bool):
        return (1 + v,)
    if isinstance(v, int | float):
        return (3, v)
    if isinstance(v, str):
        return (4, v.encode("utf-16-be", "surrogatepass"))
    return (5,)


def _ref_target(order_by: str, k: str, v: Json) -> tuple:
    if order_by == "$key":
        return _ref_key(k)
    if order_by == "$value":
        return _ref_value(v)
    if order_by == "$priority":
        return _ref_value(v.get(".priority") if isinstance(v, dict) else None)
    for part in order_by.split("/"):
        v = v.get(part) if isinstance(v, dict) and ".value" not in v else None
    return _ref_value(v)


def _ref_select(q: Query, node: dict[str, Json]) -> set[str]:
    ob = q.order_by or "$priority"
    kids = [(k, v) for k, v in node.items() if k != ".priority"]
    bound = _ref_key if ob == "$key" else _ref_value
    lo = hi = None
    if q.has_equal_to:
        lo = hi = bound(q.equal_to)
    if q.has_start_at:
        lo = bound(q.start_at)
    if q.has_end_at:
        hi = bound(q.end_at)
    kids = [
        (k, v)
        for k, v in kids
        if (lo is None or _ref_target(ob, k, v) >= lo)
        and (hi is None or _ref_target(ob, k, v) <= hi)
    ]
    kids.sort(key=lambda kv: (_ref_target(ob, *kv), _ref_key(kv[0])))
    if q.limit_to_first is not None:
        kids = kids[: q.limit_to_first]
    if q.limit_to_last is not None:
        kids = kids[max(0, len(kids) - q.limit_to_last) :]
    return {k for k, _ in kids}


def test_matches_reference_on_random_data_and_queries() -> None:
    rnd = random.Random(20240611)
    key_pool = [
        *(str(i) for i in range(-3, 25)),
        "007",
        "2147483648",
        *(f"-N{rnd.randrange(10**5):05d}x" for _ in range(20)),
        *"abcxyzABC_~",
        "\u00e9",
        "\ufffd",
        "\U0001f600",
        "a\U0001f600",
    ]
    prim_pool: list[Json] = [
        False,
        True,
        0,
        1,
        1.0,
        2.5,
        -4,
        "",
        "a",
        "b",
        "10",
        "\U0001f600",
        "\ufffd",
    ]

    def value() -> Json:
        r = rnd.random()
        prim = rnd.choice(prim_pool)
        if r < 0.25:
            return prim
        if r < 0.35:
            return {".value": prim, ".priority": rnd.choice([1, 2, "p", "q"])}
        child: dict[str, Json] = {}
        if rnd.random() < 0.7:
            child["c"] = rnd.choice([prim, prim, {"d": rnd.choice(prim_pool)}])
        if rnd.random() < 0.3:
            child[".priority"] = rnd.choice([0, 1, 2, "p"])
        child["other"] = 1
        return child

    for _ in range(400):
        node = {k: value() for k in rnd.sample(key_pool, rnd.randrange(1, 40))}
        order_by = rnd.choice(["$key", "$value", "$priority", "c", "c/d"])
        if order_by == "$key":
            pick = lambda: rnd.choice(key_pool + ["5", "-", "zz"])  # noqa: E731
        elif order_by == "$priority":
            pick = lambda: rnd.choice([None, 0, 1, 2, "p", "q"])  # noqa: E731
        else:
            pick = lambda: rnd.choice([None, *prim_pool])  # noqa: E731
        kwargs: dict[str, Json] = {"order_by": order_by}
        shape = rnd.randrange(4)
        if shape == 1:
            kwargs.update(start_at=pick(), has_start_at=True)
        elif shape == 2:
            kwargs.update(end_at=pick(), has_end_at=True)
            if rnd.random() < 0.5:
                kwargs.update(start_at=pick(), has_start_at=True)
        elif shape == 3:
            kwargs.update(equal_to=pick(), has_equal_to=True)
        limit = rnd.choice([None, None, 0, 1, 2, 3, 5, 20])
        if limit is not None:
            kwargs["limit_to_first" if rnd.random() < 0.5 else "limit_to_last"] = limit
        q = Query(**kwargs)
        assert selected(q, node) == _ref_select(q, node), (q, node)
        expected_order = sorted(
            q.window(node), key=lambda k: (_ref_target(order_by, k, node[k]), _ref_key(k))
        )
        assert [k for k, _ in q.ordered(node)] == expected_order, (q, node)


# -- parse_query --------------------------------------------------------------


def test_parse_query_values_and_unrelated_params() -> None:
    q = parse_query(
        {
            "orderBy": '"$key"',
            "startAt": '"a"',
            "limitToLast": "3",
            "auth": "token",
            "ns": "x",
            "print": "pretty",
            "format": "export",
            "timeout": "3s",
            "shallow": "false",
        }
    )
    assert q == Query(order_by="$key", start_at="a", limit_to_last=3)
    assert parse_query({"auth": "t", "ns": "x"}).is_empty
    q = parse_query({"orderBy": '"n"', "startAt": "1.5", "endAt": "1e3"})
    assert (q.start_at, q.end_at) == (1.5, 1000.0)
    q = parse_query({"orderBy": '"\\u0024value"', "equalTo": "false"})
    assert (q.order_by, q.equal_to, q.has_equal_to) == ("$value", False, True)


def test_shallow_allows_limits_without_order_by() -> None:
    # firebase-tools sends shallow=true&limitToFirst=N with no orderBy.
    q = parse_query({"shallow": "true", "limitToFirst": "2"})
    assert q.order_by is None and q.limit_to_first == 2 and not q.is_empty
    node = {"b": 1, "a": {"x": 1}, "c": {".value": 1, ".priority": 1}, "10": 2}
    assert selected(q, node) == {"10", "a"}  # default order: priority, then key
    with pytest.raises(QueryError, match="^orderBy must be defined"):
        parse_query({"shallow": "true", "startAt": "1"})


def test_needs_index_and_rules_view() -> None:
    assert parse_query({"orderBy": '"$key"'}).needs_index() is None
    assert parse_query({"orderBy": '"$priority"'}).needs_index() is None
    assert parse_query({"orderBy": '"$value"'}).needs_index() == ".value"
    assert parse_query({"orderBy": '"a/b"'}).needs_index() == "a/b"
    assert Query().needs_index() is None
    view = parse_query({"orderBy": '"a/b"', "startAt": "null", "limitToFirst": "5"}).rules_view()
    assert view == {
        "orderByKey": False,
        "orderByValue": False,
        "orderByPriority": False,
        "orderByChild": "a/b",
        "startAt": None,
        "endAt": None,
        "equalTo": None,
        "limitToFirst": 5,
        "limitToLast": None,
    }
    view = parse_query({"orderBy": '"$key"', "equalTo": '"k"', "limitToLast": "1"}).rules_view()
    assert view["orderByKey"] and view["equalTo"] == "k" and view["limitToLast"] == 1
    assert view["orderByChild"] is None and not view["orderByValue"]
    assert parse_query({"orderBy": '"$value"'}).rules_view()["orderByValue"]
    assert parse_query({"orderBy": '"$priority"', "endAt": "3"}).rules_view()["endAt"] == 3
    assert parse_query({"orderBy": '"$priority"'}).rules_view()["orderByPriority"]


ORDER_BY_REQUIRED = "orderBy must be defined when other query parameters are defined"
BAD_PATH = "orderBy must be a valid JSON encoded path"
NOT_PRIMITIVE = "Constraint index field must be a JSON primitive"
KEY_TYPE = "Provided key index type is invalid, must be string"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"orderBy": "$key"}, BAD_PATH),
        ({"orderBy": "name"}, BAD_PATH),
        ({"orderBy": "'name'"}, BAD_PATH),
        ({"orderBy": "1"}, BAD_PATH),
        ({"orderBy": "null"}, BAD_PATH),
        ({"orderBy": '["a"]'}, BAD_PATH),
        ({"orderBy": ""}, BAD_PATH),
        ({"orderBy": '""'}, BAD_PATH),
        ({"orderBy": '"/"'}, BAD_PATH),
        ({"orderBy": '"a.b"'}, BAD_PATH),
        ({"orderBy": '"a/$b"'}, BAD_PATH),
        ({"orderBy": '"$other"'}, BAD_PATH),
        ({"orderBy": '"a#"'}, BAD_PATH),
        ({"orderBy": '"a[0]"'}, BAD_PATH),
        ({"orderBy": '"a\\u0001"'}, BAD_PATH),
        ({"orderBy": "$key", "startAt": "oops"}, BAD_PATH),
        ({"startAt": '"a"'}, ORDER_BY_REQUIRED),
        ({"endAt": '"a"'}, ORDER_BY_REQUIRED),
        ({"equalTo": '"a"'}, ORDER_BY_REQUIRED),
        ({"limitToFirst": "1"}, ORDER_BY_REQUIRED),
        ({"limitToLast": "1"}, ORDER_BY_REQUIRED),
        ({"limitToFirst": "1", "limitToLast": "1"}, ORDER_BY_REQUIRED),
        ({"shallow": "false", "limitToFirst": "1"}, ORDER_BY_REQUIRED),
        ({"shallow": "true", "equalTo": "1"}, ORDER_BY_REQUIRED),
        (
            {"orderBy": '"$key"', "limitToFirst": "1", "limitToLast": "1"},
            "Only one of limitToFirst and limitToLast may be specified",
        ),
        ({"orderBy": '"$key"', "limitToFirst": "abc"}, "limitToFirst must be an integer"),
        ({"orderBy": '"$key"', "limitToFirst": "1.5"}, "limitToFirst must be an integer"),
        ({"orderBy": '"$key"', "limitToFirst": "+1"}, "limitToFirst must be an integer"),
        ({"orderBy": '"$key"', "limitToFirst": '"1"'}, "limitToFirst must be an integer"),
        ({"orderBy": '"$key"', "limitToFirst": "\u0663"}, "limitToFirst must be an integer"),
        ({"orderBy": '"$key"', "limitToLast": "x"}, "limitToLast must be an integer"),
        ({"orderBy": '"$key"', "limitToFirst": "-1"}, "limitToFirst must be positive"),
        ({"orderBy": '"$key"', "limitToFirst": ""}, "limitToFirst must be positive"),
        ({"orderBy": '"$key"', "limitToLast": "-5"}, "limitToLast must be positive"),
        (
            {"orderBy": '"a"', "equalTo": "1", "startAt": "1"},
            "equalTo cannot be specified in addition to startAfter, startAt, endAt, or endBefore",
        ),
        (
            {"orderBy": '"a"', "equalTo": "1", "endAt": "1"},
            "equalTo cannot be specified in addition to startAfter, startAt, endAt, or endBefore",
        ),
        ({"orderBy": '"a"', "startAt": "abc"}, NOT_PRIMITIVE),
        ({"orderBy": '"a"', "endAt": "a b"}, NOT_PRIMITIVE),
        ({"orderBy": '"a"', "equalTo": ""}, NOT_PRIMITIVE),
        ({"orderBy": '"a"', "equalTo": '"unterminated'}, NOT_PRIMITIVE),
        ({"orderBy": '"a"', "equalTo": '{"x": 1}'}, NOT_PRIMITIVE),
        ({"orderBy": '"a"', "startAt": "[1]"}, NOT_PRIMITIVE),
        ({"orderBy": '"a"', "startAt": "NaN"}, NOT_PRIMITIVE),
        ({"orderBy": '"a"', "startAt": "Infinity"}, NOT_PRIMITIVE),
        ({"orderBy": '"$key"', "startAt": "1"}, KEY_TYPE),
        ({"orderBy": '"$key"', "endAt": "true"}, KEY_TYPE),
        ({"orderBy": '"$key"', "equalTo": "null"}, KEY_TYPE),
        (
            {"orderBy": '"$priority"', "startAt": "true"},
            "Provided priority index type is invalid, must be null, number or string",
        ),
    ],
)
def test_parse_query_errors(params: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_query(params)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


# -- parse_query_string -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # firebase-admin: raw JSON through requests (space %20, plus raw, $ raw)
        ("equalTo=%22a%20b+c%22&orderBy=%22name%22&ns=x", {"equalTo": '"a b+c"'}),
        ("orderBy=%22$key%22&startAt=%22+1%22", {"startAt": '"+1"'}),
        ("equalTo=%22a+b@x.com%22&orderBy=%22email%22", {"equalTo": '"a+b@x.com"'}),
        ("equalTo=%22+1%22&orderBy=%22name%22&ns=x", {"equalTo": '"+1"'}),
        # pyrebase4: urlencode/quote_plus, never sends ns
        ("orderBy=%22name%22&equalTo=%22a+b%2Bc%22", {"equalTo": '"a b+c"'}),
        ("orderBy=%22%24key%22&startAt=%22%2B1%22", {"startAt": '"+1"'}),
        ("orderBy=%22name%22&equalTo=%22a+b%22", {"equalTo": '"a b"'}),
        ("auth=e.y.J&orderBy=%22name%22&equalTo=%22%C3%A9+x%22", {"equalTo": '"\u00e9 x"'}),
        # contradictory evidence: plain form decoding
        ("a=%20$&b=%2B&c=x+y", {"a": " $", "b": "+", "c": "x y"}),
        # shapes
        ("", {}),
        ("a&b=&=c&&a=2", {"a": "", "b": "", "": "c"}),
        ("x=1=2", {"x": "1=2"}),
        ("q=%ZZ%", {"q": "%ZZ%"}),
        # a raw '&' inside a JSON string is re-joined; a malformed value is not
        ("equalTo=%22a&b%22&orderBy=%22n%22", {"equalTo": '"a&b"', "orderBy": '"n"'}),
        ('equalTo="a+&+b"&orderBy="n"', {"equalTo": '"a+&+b"', "orderBy": '"n"'}),
        ("startAt=%22abc&orderBy=%22n%22", {"startAt": '"abc', "orderBy": '"n"'}),
        ("startAt=%22abc&x&y", {"startAt": '"abc', "x": "", "y": ""}),
        ("equalTo=%22a+%26+b%22&orderBy=%22n%22", {"equalTo": '"a & b"'}),
    ],
)
def test_parse_query_string(raw: str, expected: dict[str, str]) -> None:
    out = parse_query_string(raw)
    for k, v in expected.items():
        assert out[k] == v, (raw, k)
    if raw in ("", "a&b=&=c&&a=2", "startAt=%22abc&x&y"):
        assert out == expected


def test_unjoined_malformed_value_keeps_its_own_error() -> None:
    params = parse_query_string("startAt=%22abc&orderBy=%22n%22")
    with pytest.raises(QueryError, match=f"^{NOT_PRIMITIVE}$"):
        parse_query(params)


# -- what the real clients send ------------------------------------------------------


class Recorder:
    """A real aiohttp server on a free port recording each request's raw query."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        assert self._ready.wait(10), "recording server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = runner.addresses[0][1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    async def _handle(self, request: web.Request) -> web.Response:
        # The same raw string the emulator hands parse_query_string, and what
        # aiohttp's own decoding makes of it.
        self.seen.append((request.rel_url.raw_query_string, dict(request.query)))
        return web.json_response(None)

    def last(self) -> tuple[str, dict[str, str]]:
        assert self.seen, "no request recorded"
        return self.seen[-1]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder() as rec:
        yield rec


@pytest.fixture
def admin_db(recorder: Recorder, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import firebase_admin
    from firebase_admin import db

    monkeypatch.setenv("FIREBASE_DATABASE_EMULATOR_HOST", f"127.0.0.1:{recorder.port}")
    app = firebase_admin.initialize_app(
        options={"databaseURL": "https://demo-capture.firebaseio.com"},
        name=f"query-capture-{recorder.port}",
    )
    try:
        yield db.reference("/items", app=app)
    finally:
        firebase_admin.delete_app(app)


@pytest.fixture
def pyre_db(recorder: Recorder) -> Any:
    import pyrebase

    fb = pyrebase.initialize_app(
        {
            "apiKey": "demo-key",
            "authDomain": "demo-capture.firebaseapp.com",
            "databaseURL": f"http://127.0.0.1:{recorder.port}",
            "storageBucket": "demo-capture.appspot.com",
        }
    )
    return fb.database()


SPACE_PLUS = "a b+c"


def test_firebase_admin_sends_space_as_pct20_and_plus_raw(
    admin_db: Any, recorder: Recorder
) -> None:
    admin_db.order_by_child("name").equal_to(SPACE_PLUS).get()
    raw, aiohttp_view = recorder.last()
    assert raw == "equalTo=%22a%20b+c%22&orderBy=%22name%22&ns=demo-capture"
    # aiohttp's form decoding turns the literal plus into a space ...
    assert aiohttp_view["equalTo"] == '"a b c"'
    # ... parse_query_string does not.
    params = parse_query_string(raw)
    assert params == {"equalTo": '"a b+c"', "orderBy": '"name"', "ns": "demo-capture"}
    assert parse_query(params).equal_to == SPACE_PLUS


def test_pyrebase_sends_quote_plus(pyre_db: Any, recorder: Recorder) -> None:
    pyre_db.child("items").order_by_child("name").equal_to(SPACE_PLUS).get()
    raw, aiohttp_view = recorder.last()
    assert raw == "orderBy=%22name%22&equalTo=%22a+b%2Bc%22"
    assert aiohttp_view["equalTo"] == '"a b+c"'
    params = parse_query_string(raw)
    assert params == {"orderBy": '"name"', "equalTo": '"a b+c"'}
    assert parse_query(params).equal_to == SPACE_PLUS


def test_leading_plus_and_key_order_from_both_clients(
    admin_db: Any, pyre_db: Any, recorder: Recorder
) -> None:
    admin_db.order_by_key().start_at("+1").limit_to_first(2).get()
    raw_admin, _ = recorder.last()
    assert raw_admin == "limitToFirst=2&orderBy=%22$key%22&startAt=%22+1%22&ns=demo-capture"
    pyre_db.child("items").order_by_key().start_at("+1").limit_to_first(2).get()
    raw_pyre, _ = recorder.last()
    assert raw_pyre == "orderBy=%22%24key%22&startAt=%22%2B1%22&limitToFirst=2"
    for raw in (raw_admin, raw_pyre):
        q = parse_query(parse_query_string(raw))
        assert q == Query(order_by="$key", start_at="+1", limit_to_first=2)

    # A child query with no telltale characters: only firebase-admin's `ns` tells.
    admin_db.order_by_child("phone").equal_to("+1 555").get()
    raw, _ = recorder.last()
    assert raw == "equalTo=%22+1%20555%22&orderBy=%22phone%22&ns=demo-capture"
    assert parse_query(parse_query_string(raw)).equal_to == "+1 555"
    admin_db.order_by_child("phone").equal_to("+1").get()
    raw, _ = recorder.last()
    assert raw == "equalTo=%22+1%22&orderBy=%22phone%22&ns=demo-capture"
    assert parse_query(parse_query_string(raw)).equal_to == "+1"


def test_non_ascii_values_from_both_clients(
    admin_db: Any, pyre_db: Any, recorder: Recorder
) -> None:
    value = "caf\u00e9 \U0001f600+"
    admin_db.order_by_child("name").start_at(value).get()
    raw_admin, _ = recorder.last()
    assert "%5Cu00e9" in raw_admin  # json.dumps escapes non-ASCII
    pyre_db.child("items").order_by_child("name").start_at(value).get()
    raw_pyre, _ = recorder.last()
    assert "%C3%A9" in raw_pyre  # UTF-8 percent escapes
    for raw in (raw_admin, raw_pyre):
        assert parse_query(parse_query_string(raw)).start_at == value


def test_numbers_and_booleans_from_both_clients(
    admin_db: Any, pyre_db: Any, recorder: Recorder
) -> None:
    admin_db.order_by_child("n").start_at(1.5).end_at(True).get()
    q_admin = parse_query(parse_query_string(recorder.last()[0]))
    pyre_db.child("items").order_by_child("n").start_at(1.5).end_at(True).get()
    q_pyre = parse_query(parse_query_string(recorder.last()[0]))
    assert q_admin == q_pyre == Query(order_by="n", start_at=1.5, end_at=True)


def test_firebase_admin_ampersand_in_a_value_is_rejoined(admin_db: Any, recorder: Recorder) -> None:
    # firebase-admin sends '&' raw, which splits the value across "parameters".
    admin_db.order_by_child("name").equal_to("a+b & c").get()
    raw, aiohttp_view = recorder.last()
    assert raw == "equalTo=%22a+b%20&%20c%22&orderBy=%22name%22&ns=demo-capture"
    assert aiohttp_view["equalTo"] == '"a b '
    assert parse_query(parse_query_string(raw)).equal_to == "a+b & c"
    admin_db.order_by_child("name").equal_to("x&y=z&&").get()
    raw, _ = recorder.last()
    assert raw == "equalTo=%22x&y=z&&%22&orderBy=%22name%22&ns=demo-capture"
    assert parse_query_string(raw) == {
        "equalTo": '"x&y=z&&"',
        "orderBy": '"name"',
        "ns": "demo-capture",
    }
