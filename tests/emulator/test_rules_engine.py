"""Allow/deny tables for the security rules engine (pure unit tests, no server).

Each table row is one rules tree, one request and the verdict Firebase gives.
Rows come in pairs or groups where possible, so that a rule which always
allowed (or always denied) would fail at least one of them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from emdash_fb.emulator.query import parse_query
from emdash_fb.emulator.rules import RulesError, RuleSet
from emdash_fb.emulator.values import normalize, set_at

NOW = 1_700_000_000_000


def user(uid: str, provider: str = "password", **claims: Any) -> dict[str, Any]:
    """An ``auth`` value as the emulator builds it from an ID token."""
    return {"uid": uid, "provider": provider, "token": {"sub": uid, **claims}}


ADA = user("ada", email="ada@example.com", admin=True)
BOB = user("bob")
ANON = user("anon1", provider="anonymous")


def ruleset(tree: dict[str, Any]) -> RuleSet:
    return RuleSet.from_text(json.dumps({"rules": tree}))


def split(path: str) -> list[str]:
    return [key for key in path.split("/") if key]


def read(
    tree: dict[str, Any],
    path: str,
    data: Any = None,
    auth: dict[str, Any] | None = None,
    query: dict[str, Any] | None = None,
    now: int = NOW,
) -> bool:
    return ruleset(tree).can_read(
        split(path), root=normalize(data), auth=auth, now=now, query=query
    )


def write(
    tree: dict[str, Any],
    writes: list[tuple[str, Any]],
    old: Any = None,
    auth: dict[str, Any] | None = None,
    now: int = NOW,
) -> bool:
    """Judge a (multi-path) write of ``writes`` onto the database ``old``."""
    old_root = normalize(old)
    new_root = old_root
    pending = []
    for path, value in writes:
        stored = normalize(value)
        new_root = set_at(new_root, split(path), stored)
        pending.append((split(path), stored))
    return ruleset(tree).can_write(
        pending, old_root=old_root, new_root=new_root, auth=auth, now=now
    )


# --- reads: cascade, no revoke, not filters, wildcards, variables ----------------------

USERS = {
    "users": {
        "$uid": {".read": "auth != null && auth.uid == $uid"},
    }
}

READ_CASES = [
    pytest.param({".read": True}, "/a/b/c", None, None, True, id="root-grant-cascades-down"),
    pytest.param({}, "/a", None, None, False, id="no-rule-denies"),
    pytest.param({".read": False}, "/a", None, None, False, id="false-at-root-denies"),
    pytest.param({"a": {".read": True}}, "/a/b", None, None, True, id="grant-at-parent"),
    pytest.param({"a": {".read": True}}, "/", None, None, False, id="grant-below-not-above"),
    pytest.param(
        {"a": {"b": {".read": True}}}, "/a", None, None, False, id="rules-are-not-filters"
    ),
    pytest.param(
        {".read": True, "a": {".read": False}}, "/a", None, None, True, id="deeper-false-no-revoke"
    ),
    pytest.param(
        {".read": False, "a": {".read": True}}, "/a", None, None, True, id="deeper-true-grants"
    ),
    pytest.param({"a": {".read": "true"}}, "/a", None, None, True, id="string-true-accepted"),
    pytest.param({"a": {".read": "false"}}, "/a", None, None, False, id="string-false-accepted"),
    pytest.param(USERS, "/users/ada", None, ADA, True, id="wildcard-own-uid"),
    pytest.param(USERS, "/users/ada/profile", None, ADA, True, id="wildcard-below-own"),
    pytest.param(USERS, "/users/bob", None, ADA, False, id="wildcard-other-uid"),
    pytest.param(USERS, "/users/ada", None, None, False, id="wildcard-unauthenticated"),
    pytest.param(USERS, "/users", None, ADA, False, id="wildcard-parent-not-readable"),
    pytest.param(
        {"public": {".read": False}, "$other": {".read": True}},
        "/public",
        None,
        None,
        False,
        id="named-sibling-beats-wildcard",
    ),
    pytest.param(
        {"public": {".read": False}, "$other": {".read": True}},
        "/private",
        None,
        None,
        True,
        id="wildcard-catches-other-keys",
    ),
    pytest.param(
        {"$a": {"$b": {".read": "$a + '/' + $b == 'x/y'"}}},
        "/x/y",
        None,
        None,
        True,
        id="nested-wildcards-bind",
    ),
    pytest.param(
        {"$a": {"$b": {".read": "$a + '/' + $b == 'x/y'"}}},
        "/y/x",
        None,
        None,
        False,
        id="nested-wildcards-bind-other",
    ),
    pytest.param(
        {"$a": {".read": "$a.beginsWith('pub')"}},
        "/public",
        None,
        None,
        True,
        id="wildcard-is-a-string",
    ),
    # auth
    pytest.param({".read": "auth != null"}, "/", None, BOB, True, id="auth-signed-in"),
    pytest.param({".read": "auth != null"}, "/", None, None, False, id="auth-signed-out"),
    pytest.param({".read": "auth == null"}, "/", None, None, True, id="auth-null-comparable"),
    pytest.param(
        {".read": "auth.uid == 'ada'"}, "/", None, None, False, id="auth-null-property-is-null"
    ),
    pytest.param(
        {".read": "auth.uid != 'ada'"}, "/", None, None, True, id="signed-out-uid-differs"
    ),
    pytest.param(
        {".read": "auth.token.email === null"}, "/", None, None, True, id="signed-out-claim-null"
    ),
    pytest.param(
        {".read": "auth.token.admin === true"}, "/", None, ADA, True, id="auth-token-claim"
    ),
    pytest.param(
        {".read": "auth.token.admin === true"}, "/", None, BOB, False, id="auth-claim-missing"
    ),
    pytest.param(
        {".read": "auth.token.admin == null"}, "/", None, BOB, True, id="auth-missing-claim-null"
    ),
    pytest.param(
        {".read": "auth.token['email'] == 'ada@example.com'"},
        "/",
        None,
        ADA,
        True,
        id="auth-token-bracket",
    ),
    pytest.param(
        {".read": "auth.provider == 'anonymous'"}, "/", None, ANON, True, id="auth-provider"
    ),
    pytest.param(
        {".read": "auth.provider == 'anonymous'"}, "/", None, ADA, False, id="auth-provider-other"
    ),
    # now
    pytest.param({".read": f"now == {NOW}"}, "/", None, None, True, id="now-is-millis"),
    pytest.param({".read": "now < 1000"}, "/", None, None, False, id="now-compared"),
    # root and data
    pytest.param(
        {"docs": {".read": "root.child('admins/' + auth.uid).exists()"}},
        "/docs",
        {"admins": {"ada": True}},
        ADA,
        True,
        id="root-lookup-allows",
    ),
    pytest.param(
        {"docs": {".read": "root.child('admins/' + auth.uid).exists()"}},
        "/docs",
        {"admins": {"ada": True}},
        BOB,
        False,
        id="root-lookup-denies",
    ),
    pytest.param(
        {"posts": {"$id": {".read": "data.child('public').val() == true"}}},
        "/posts/p1",
        {"posts": {"p1": {"public": True}, "p2": {"public": False}}},
        None,
        True,
        id="data-is-rule-location",
    ),
    pytest.param(
        {"posts": {"$id": {".read": "data.child('public').val() == true"}}},
        "/posts/p2",
        {"posts": {"p1": {"public": True}, "p2": {"public": False}}},
        None,
        False,
        id="data-is-rule-location-other",
    ),
    pytest.param(
        {"posts": {"$id": {".read": "data.child('owner').val() == auth.uid"}}},
        "/posts/p1/title",
        {"posts": {"p1": {"owner": "ada", "title": "t"}}},
        ADA,
        True,
        id="data-child-of-object",
    ),
    pytest.param(
        {"posts": {"$id": {".read": "!data.exists()"}}},
        "/posts/p9",
        {"posts": {"p1": {"owner": "ada"}}},
        None,
        True,
        id="data-absent-at-location",
    ),
    # newData is write-only
    pytest.param(
        {".read": "newData.exists() || true"}, "/", None, None, False, id="newData-in-read-denies"
    ),
    pytest.param(
        {".read": "true || newData.exists()"}, "/", None, None, True, id="short-circuit-skips-error"
    ),
]


@pytest.mark.parametrize(("tree", "path", "data", "auth", "expected"), READ_CASES)
def test_read(
    tree: dict[str, Any], path: str, data: Any, auth: dict[str, Any] | None, expected: bool
) -> None:
    assert read(tree, path, data, auth) is expected


# --- query.* in read rules -----------------------------------------------------------

OWNED = {"items": {".read": "query.orderByChild == 'owner' && query.equalTo == auth.uid"}}


def query(**params: str) -> dict[str, Any] | None:
    """``query.*`` for a REST query string's decoded parameters, as the database builds it."""
    parsed = parse_query(params)
    return None if parsed.is_empty else parsed.rules_view()


QUERY_CASES = [
    pytest.param(OWNED, query(orderBy='"owner"', equalTo='"ada"'), True, id="own-items"),
    pytest.param(OWNED, query(orderBy='"owner"', equalTo='"bob"'), False, id="others-items"),
    pytest.param(OWNED, query(orderBy='"$key"'), False, id="wrong-order"),
    pytest.param(OWNED, None, False, id="no-query"),
    pytest.param(
        {"items": {".read": "query.limitToFirst <= 10"}},
        query(orderBy='"$key"', limitToFirst="5"),
        True,
        id="limit-within",
    ),
    pytest.param(
        {"items": {".read": "query.limitToFirst <= 10"}},
        query(orderBy='"$key"', limitToFirst="50"),
        False,
        id="limit-over",
    ),
    pytest.param(
        {"items": {".read": "query.limitToFirst <= 10"}}, None, False, id="limit-null-errors"
    ),
    pytest.param(
        {"items": {".read": "query.orderByKey == true && query.limitToLast == null"}},
        None,
        True,
        id="no-query-reads-key-order-and-null",
    ),
    pytest.param(
        {"items": {".read": "query.orderByKey == false"}},
        None,
        False,
        id="no-query-is-not-unordered",
    ),
    pytest.param(
        {"items": {".read": "query.orderByKey && query.startAt == 'b'"}},
        query(orderBy='"$key"', startAt='"b"'),
        True,
        id="order-by-key-start-at",
    ),
    pytest.param(
        {"items": {".read": "query.orderByValue || query.orderByPriority"}},
        query(orderBy='"$priority"'),
        True,
        id="order-by-priority",
    ),
    pytest.param(
        {"items": {".read": "query.orderByKey"}},
        query(orderBy='"$priority"'),
        False,
        id="order-by-priority-not-key",
    ),
    pytest.param(
        {"items": {".read": "query.endAt == 10"}},
        query(orderBy='"$value"', endAt="10"),
        True,
        id="end-at-number",
    ),
]


@pytest.mark.parametrize(("tree", "query_args", "expected"), QUERY_CASES)
def test_read_query(
    tree: dict[str, Any], query_args: dict[str, Any] | None, expected: bool
) -> None:
    assert read(tree, "/items", None, ADA, query=query_args) is expected


KEY_ORDER = {
    "orderByKey": True,
    "orderByValue": False,
    "orderByPriority": False,
    "orderByChild": None,
    "startAt": None,
    "endAt": None,
    "equalTo": None,
    "limitToFirst": None,
    "limitToLast": None,
}
NOT_KEY = {**KEY_ORDER, "orderByKey": False}

# (decoded query parameters, every query.* variable a read rule sees), one per kind of order
QUERY_VIEWS = {
    "no-query": ({}, KEY_ORDER),
    "shallow": ({"shallow": "true"}, KEY_ORDER),
    "default-order": (
        {"shallow": "true", "limitToFirst": "2"},
        {**KEY_ORDER, "limitToFirst": 2},
    ),
    "key": (
        {"orderBy": '"$key"', "startAt": '"b"', "endAt": '"m"', "limitToLast": "3"},
        {**KEY_ORDER, "startAt": "b", "endAt": "m", "limitToLast": 3},
    ),
    "value": (
        {"orderBy": '"$value"', "startAt": "5", "endAt": "9.5"},
        {**NOT_KEY, "orderByValue": True, "startAt": 5, "endAt": 9.5},
    ),
    "priority": (
        {"orderBy": '"$priority"', "equalTo": '"p"', "limitToFirst": "1"},
        {**NOT_KEY, "orderByPriority": True, "equalTo": "p", "limitToFirst": 1},
    ),
    "child": (
        {"orderBy": '"foo/bar"', "equalTo": "true", "limitToLast": "4"},
        {**NOT_KEY, "orderByChild": "foo/bar", "equalTo": True, "limitToLast": 4},
    ),
}


@pytest.mark.parametrize("variable", list(KEY_ORDER))
@pytest.mark.parametrize("kind", list(QUERY_VIEWS))
def test_query_variables_per_order(kind: str, variable: str) -> None:
    params, expected = QUERY_VIEWS[kind]
    literal = json.dumps(expected[variable])
    view = query(**params)
    same = {"items": {".read": f"query.{variable} === {literal}"}}
    differs = {"items": {".read": f"query.{variable} !== {literal}"}}
    assert read(same, "/items", None, None, query=view) is True
    assert read(differs, "/items", None, None, query=view) is False


# --- expressions: operators, snapshot and string methods, regex, errors -----------------

DATA = {
    "x": {
        "name": "Ada",
        "age": 36,
        "pi": 3.5,
        "flag": True,
        "nested": {"deep": "v"},
        "prio": {".value": "p", ".priority": 5},
        "obj": {"a": 1, "b": "two", ".priority": "hi"},
    },
    "admins": {"ada": True},
}

EXPRESSION_CASES = [
    # snapshot methods
    ("data.child('name').val() == 'Ada'", True),
    ("data.child('name').val() == 'ada'", False),
    ("data.child('nested/deep').val() == 'v'", True),
    ("data.child('nested').child('deep').exists()", True),
    ("data.child('missing').exists()", False),
    ("data.child('missing').val() == null", True),
    ("data.child('name').child('x').exists()", False),
    ("data.hasChild('age')", True),
    ("data.hasChild('nested/deep')", True),
    ("data.hasChild('nope')", False),
    ("data.hasChildren()", True),
    ("data.child('name').hasChildren()", False),
    ("data.child('missing').hasChildren()", False),
    ("data.hasChildren(['name', 'age'])", True),
    ("data.hasChildren(['name', 'zzz'])", False),
    ("data.child('nested/deep').parent().parent().hasChild('age')", True),
    ("data.parent().child('admins/ada').val() == true", True),
    ("root.parent().exists() || true", False),
    ("root.child('x/age').val() == 36", True),
    ("data.child('prio').getPriority() == 5", True),
    ("data.child('prio').val() == 'p'", True),
    ("data.child('obj').getPriority() == 'hi'", True),
    ("data.child('name').getPriority() == null", True),
    ("data.child('age').isNumber()", True),
    ("data.child('pi').isNumber()", True),
    ("data.child('name').isNumber()", False),
    ("data.child('flag').isNumber()", False),
    ("data.child('flag').isBoolean()", True),
    ("data.child('age').isBoolean()", False),
    ("data.child('name').isString()", True),
    ("data.child('prio').isString()", True),
    ("data.child('obj').isString()", False),
    ("data.child('missing').isString()", False),
    ("data.val() == null", False),
    # a child path with an empty segment or one of . # $ [ ] is an error, never skipped
    ("data.child('nested//deep').exists()", False),
    ("data.child('/name').exists()", False),
    ("data.child('name/').exists()", False),
    ("data.child('').exists()", False),
    ("!data.child('').exists()", False),
    ("data.child('/').exists()", False),
    ("!data.child('/').exists()", False),
    ("!data.child('a.b').exists()", False),
    ("!data.child('a#b').exists()", False),
    ("!data.child('$b').exists()", False),
    ("!data.child('a[0]').exists()", False),
    ("!data.child('a]').exists()", False),
    ("!data.child('nested/.priority').exists()", False),
    ("!data.child(auth.none).exists()", False),
    ("!data.child('a b').exists()", True),  # a space is a legal key
    ("!root.child('x/ünï').exists()", True),
    ("data.hasChild('nested//deep')", False),
    ("!data.hasChild('')", False),
    ("!data.hasChild('a.b')", False),
    (
        "!data.hasChild(auth.token.missing)",
        False,
    ),  # null at run time (a literal is refused at load)
    ("data.hasChildren(['name', 'nested//deep'])", False),
    ("!data.hasChildren(['name', 'a$b'])", False),
    ("data.hasChildren(['name', ''])", False),
    ("!data.hasChildren([''])", False),
    ("!data.hasChildren(['name', data.child('age').val()])", False),
    ("!data.hasChildren(['zzz', auth.token.missing])", False),
    # strings
    ("'abc'.length == 3", True),
    ("data.child('name').val().length == 3", True),
    ("data.child('name').val().length == 4", False),
    ("'é😀'.length == 3", True),
    ("'Ada Lovelace'.contains('Love')", True),
    ("'Ada Lovelace'.contains('love')", False),
    ("'Ada'.beginsWith('Ad')", True),
    ("'Ada'.beginsWith('da')", False),
    ("'Ada'.endsWith('da')", True),
    ("'Ada'.endsWith('Ad')", False),
    ("'a-b-c'.replace('-', '+') == 'a+b+c'", True),
    ("'a-b-c'.replace('-', '+') == 'a+b-c'", False),
    ("'MiXeD'.toLowerCase() == 'mixed'", True),
    ("'MiXeD'.toUpperCase() == 'MIXED'", True),
    ("'MiXeD'.toUpperCase() == 'MiXeD'", False),
    ("\"dq\" == 'dq'", True),
    ("'it\\'s' == \"it's\"", True),
    ("'tab\\there'.contains('\\t')", True),
    ("'a\\tb' != 'atb'", True),
    ("'\\u0041' == 'A'", True),
    # regex
    ("'abc'.matches(/^a.c$/)", True),
    ("'abd'.matches(/^a.c$/)", False),
    ("'ABC'.matches(/^abc$/i)", True),
    ("'ABC'.matches(/^abc$/)", False),
    ("'xabc'.matches(/^abc/)", False),
    ("'xabcx'.matches(/abc/)", True),
    ("'abc\\n'.matches(/^abc$/)", False),
    ("'a/b'.matches(/^a\\/b$/)", True),
    ("'a/b'.matches(/^a[./]b$/)", True),
    ("'2024-01-31'.matches(/^\\d{4}-\\d{2}-\\d{2}$/)", True),
    ("'2024-1-31'.matches(/^\\d{4}-\\d{2}-\\d{2}$/)", False),
    ("'\u0661\u0662'.matches(/^\\d+$/)", False),
    ("data.child('name').val().matches(/^[A-Z][a-z]+$/)", True),
    ("'ab' + 'c' == 'abc' && 4 / 2 == 2", True),
    # arithmetic and concatenation
    ("1 + 2 == 3", True),
    ("1 + 2 == 4", False),
    ("'a' + 1 == 'a1'", True),
    ("'a' + 1.5 == 'a1.5'", True),
    ("'n' + 4 / 2 == 'n2'", True),
    ("'v' + 2.0 == 'v2'", True),
    ("'v' + 0.5 * 4 == 'v2'", True),
    ("'v' + 1e21 == 'v1e+21'", True),
    ("'v' + 1.5e-7 == 'v1.5e-7'", True),
    # run-time '+' of a string with a boolean or null is an error, not JS's 'Adatrue'
    ("!(data.child('name').val() + data.child('flag').val() == 'x')", False),
    ("!(data.child('name').val() + data.child('missing').val() == 'x')", False),
    ("7 - 10 == -3", True),
    ("2 * 3 == 6", True),
    ("7 / 2 == 3.5", True),
    ("7 % 3 == 1", True),
    ("-7 % 3 == -1", True),
    # division by zero is NaN on Firebase (not Infinity), and NaN equals nothing, itself included
    ("(1 / 0 + '') == 'NaN'", True),
    ("(-1 / 0 + '') == 'NaN'", True),
    ("(0 / 0 + '') == 'NaN'", True),
    ("(1 / 0) > 2", False),
    ("(1 / 0) < 2", False),
    ("!((1 / 0) > 2) && !((1 / 0) < 2)", True),
    ("(-1 / 0) < 2", False),
    ("(1 / 0) >= (1 / 0)", False),
    ("(0 / 0) == (0 / 0)", False),
    ("(0 / 0) === (0 / 0)", False),
    ("(0 / 0) != (0 / 0)", True),
    ("(0 / 0) !== (0 / 0)", True),
    ("(5 % 0 + '') == 'NaN'", True),
    ("(1 / 0.0 + '') == 'NaN'", True),
    ("2 + 3 * 4 == 14", True),
    ("(2 + 3) * 4 == 20", True),
    ("10 - 2 - 3 == 5", True),
    ("-(2) == -2", True),
    ("- data.child('age').val() == -36", True),
    ("data.child('age').val() + 1 == 37", True),
    # comparison and equality
    ("1 == 1.0", True),
    ("1 == '1'", False),
    ("1 != '1'", True),
    ("null == false", False),
    ("true == 1", False),
    ("1 === 1", True),
    ("'a' !== 'b'", True),
    ("'a' !== 'a'", False),
    ("2 < 3", True),
    ("3 < 3", False),
    ("3 <= 3", True),
    ("4 > 3", True),
    ("3 > 4", False),
    ("3 >= 4", False),
    ("4 >= 4", True),
    ("'apple' < 'banana'", True),
    ("'b' <= 'a'", False),
    ("data.child('obj').val() == data.child('obj').val()", True),
    # logic and the conditional
    ("!false", True),
    ("!true", False),
    ("!!true", True),
    ("true && false", False),
    ("true && true", True),
    ("false || true", True),
    ("false || false", False),
    ("true || false && false", True),
    ("!false && false", False),
    ("true ? 1 == 1 : false", True),
    ("false ? true : 1 == 2", False),
    ("false ? false : true ? true : false", True),
    ("!(true ? false : false ? true : true)", True),
    ("auth != null ? auth.uid == 'ada' : false", True),
    ("1 + 1 == 2 ? 'yes' == 'yes' : false", True),
    # evaluation errors deny (each would allow if the error were read as false or null)
    # (these type-check at load, since val() and auth.* may be anything until run time)
    ("!(data.child('name').val() < 1)", False),
    ("!(data.child('flag').val() + 1 == 2)", False),
    ("!(data.child('name').val() / 2 == 1)", False),
    ("!(auth.token.missing < 1)", False),
    ("!data.child('age').val().contains('3')", False),
    ("!data.child('age').val().matches(/3/)", False),
    ("!data.child(auth.token.missing).exists()", False),
    ("!auth.token.admin.beginsWith('t')", False),
    # ... but a property of a missing value is null, as on Firebase (issue 14): not an error
    ("auth.token.missing.deeper == null", True),
    ("auth.token.missing.deeper != 'x'", True),
    ("!data.child('name').val()", False),
    ("!data.child('missing').val()", False),
    ("!(data.child('name').val() && true)", False),
    ("data.child('name').val() ? false : true", False),
    ("data.child('missing').val().length == null", True),  # a property of null is null
    ("auth.uid", False),
    ("data.child('flag').val()", True),
]


@pytest.mark.parametrize(("expression", "expected"), EXPRESSION_CASES)
def test_expression(expression: str, expected: bool) -> None:
    assert read({"x": {".read": expression}}, "/x", DATA, ADA) is expected


# Refused when the rules load, as Firebase refuses them at deploy (static types).
TYPE_ERROR_CASES = [
    ("data.child('obj').val().a == 1", "No such method/property 'a'"),
    ("data.child('obj').val()['b'] == 'two'", "No such method/property 'b'"),
    ("data.nope == null", "No such method/property 'nope' on a snapshot"),
    ("data.exists == true", "'exists' on a snapshot; call it as a method"),
    ("data.nope() == null", "No such method/property 'nope' on a snapshot"),
    ("'abc'.val() == null", "No such method/property 'val' on a string"),
    ("now.contains('1')", "No such method/property 'contains' on a number"),
    ("query.limit == 1", "No such method/property 'limit' on the query variable"),
    ("'x' + true == 'xtrue'", "the right side of '+' must be a number or a string, got a boolean"),
    ("'x' + null == 'xnull'", "the right side of '+' must be a number or a string, got null"),
    ("1 / 'a' == 1", "the right side of '/' must be a number, got a string"),
    ("-'a' == 1", "the operand of unary '-' must be a number"),
    ("!0", "the operand of '!' must be a boolean, got a number"),
    ("1 && true", "the left side of '&&' must be a boolean"),
    ("true || 'a'", "the right side of '||' must be a boolean"),
    ("1 < 'a'", "'<' compares two numbers or two strings, got a number and a string"),
    ("null < 1", "the left side of '<' must be a number or a string, got null"),
    ("data.val() > true", "the right side of '>' must be a number or a string, got a boolean"),
    ("data == null || true", "'==' can't compare a snapshot (the left side); compare its val()"),
    ("data.child('age').val() == data", "'==' can't compare a snapshot (the right side)"),
    ("/a/ == 1", "'==' can't compare a regular expression"),
    ("['a'] == 1", "'==' can't compare an array"),
    ("auth.uid == 'a' ? 7 : true", "both branches of '?:' must have the same type"),
    ("1 ? true : false", "the condition of '?:' must be a boolean, got a number"),
    ("'abc'.contains(1)", "argument 1 of contains() must be a string, got a number"),
    ("'abc'.replace('a')", "replace() takes 2 arguments, got 1"),
    ("data.child(1).exists()", "argument 1 of child() must be a string, got a number"),
    ("data.exists(1)", "exists() takes 0 arguments, got 1"),
    ("data.hasChildren('name')", "hasChildren() takes an array of strings"),
    ("data.hasChildren([])", "hasChildren() needs at least one key"),
    ("data.hasChildren(['a', 7])", "each key of hasChildren() must be a string, got a number"),
    ("data.hasChildren(['a'], ['b'])", "hasChildren() takes 0 or 1 arguments, got 2"),
    ("'abc'.matches('abc')", "matches() takes a regular expression literal"),
    ("data.val().matches(auth.re)", "matches() takes a regular expression literal"),
    ("'abc'.matches(/a/g)", "Unsupported regular expression flag 'g'"),
    ("data['nope']()", "No such method/property 'nope' on a snapshot"),
    ("data['ex' + 'ists']()", "Only methods can be called"),
    ("data.child('a')", "Expression must evaluate to a boolean, not a snapshot"),
    ("auth.uid + 1", "Expression must evaluate to a boolean, not a number or a string"),
    ("'abc'[0] == 'a'", "a string can only be indexed with a literal name"),
]


@pytest.mark.parametrize(("expression", "message"), TYPE_ERROR_CASES)
def test_type_errors_refuse_the_rules(expression: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        ruleset({"x": {".read": expression}})
    assert message in str(caught.value)
    assert str(caught.value).startswith("Line 1, column ")


# --- operators on auth fields, signed in or out (outcomes recorded against live Firebase) -----

FIELDS = {"uid": "u1", "someString": "one", "someInt": 1, "someBool": True, "someList": ["a"]}
SIGNED_OUT = None

AUTH_EXPRESSION_CASES = [
    # '+': numbers add, strings concatenate with strings and numbers either way round
    pytest.param("(auth.someString + 1) == 'one1'", FIELDS, True, id="string-plus-number"),
    pytest.param("(1 + auth.someString) == '1one'", FIELDS, True, id="number-plus-string"),
    pytest.param("(auth.someInt + 1) == 2", FIELDS, True, id="number-plus-number"),
    pytest.param("(auth.someString + '!') == 'one!'", FIELDS, True, id="string-plus-string"),
    # ... anything else is an error, which denies (so neither the test nor its negation allows)
    pytest.param("(1 + auth.none) == 1", FIELDS, False, id="number-plus-null"),
    pytest.param("!((1 + auth.none) == 1)", FIELDS, False, id="number-plus-null-errors"),
    pytest.param("('users/' + auth.uid) == 'users/null'", SIGNED_OUT, False, id="str-plus-null"),
    pytest.param("!(('users/' + auth.uid) == 'x')", SIGNED_OUT, False, id="str-plus-null-errors"),
    pytest.param("root.child('users/' + auth.uid).exists()", FIELDS, True, id="uid-path-signed-in"),
    pytest.param(
        "!root.child('users/' + auth.uid).exists()", SIGNED_OUT, False, id="uid-path-signed-out"
    ),
    pytest.param("!((1 + auth.someBool) == 2)", FIELDS, False, id="number-plus-boolean"),
    pytest.param("!(('a' + auth.someBool) == 'x')", FIELDS, False, id="string-plus-boolean"),
    pytest.param("('a' + auth.someBool) == 'atrue'", FIELDS, False, id="no-js-boolean-string"),
    pytest.param("!(('a' + auth) == 'x')", FIELDS, False, id="string-plus-object"),
    pytest.param("!((auth.someList + 'b') == 'x')", FIELDS, False, id="array-plus-string"),
    pytest.param("!((1 + auth.someList) == 2)", FIELDS, False, id="number-plus-array"),
    pytest.param("!((auth.none + auth.none) == 0)", FIELDS, False, id="null-plus-null"),
    # the other arithmetic operators take numbers only
    pytest.param("!((auth.someString - 1) == 0)", FIELDS, False, id="string-minus"),
    pytest.param("!((auth.none * 2) == 0)", FIELDS, False, id="null-times"),
    pytest.param("!((auth.someString / 2) == 3)", FIELDS, False, id="string-divided"),
    pytest.param("!((auth.someBool % 2) == 1)", FIELDS, False, id="boolean-remainder"),
    pytest.param("!(-auth.someString == 0)", FIELDS, False, id="negate-string"),
    pytest.param("!(-auth.none == 0)", FIELDS, False, id="negate-null"),
    pytest.param("-auth.someInt == -1", FIELDS, True, id="negate-number"),
    # ordering needs two numbers or two strings: null or mixed types are errors
    pytest.param("!(auth.foo > 'foo')", SIGNED_OUT, False, id="null-above-string"),
    pytest.param("!(auth.foo < 'foo')", SIGNED_OUT, False, id="null-below-string"),
    pytest.param("!(auth.someInt > 'one')", FIELDS, False, id="number-above-string"),
    pytest.param("!(auth.someString <= 1)", FIELDS, False, id="string-below-number"),
    pytest.param("!(auth.someBool >= 1)", FIELDS, False, id="boolean-ordering"),
    pytest.param("auth.someString > 'a'", FIELDS, True, id="strings-ordered"),
    # equality never errors: a missing value is just unequal
    pytest.param("auth.foo != 'foo'", SIGNED_OUT, True, id="missing-differs"),
    pytest.param("auth.foo == 'foo'", SIGNED_OUT, False, id="missing-not-equal"),
    pytest.param("auth.foo === null", SIGNED_OUT, True, id="missing-is-null"),
    pytest.param("auth.foo !== 'foo'", SIGNED_OUT, True, id="missing-strictly-differs"),
    pytest.param("'one' == auth.someInt", FIELDS, False, id="string-vs-number"),
    pytest.param("'one' != auth.someInt", FIELDS, True, id="string-vs-number-differs"),
    pytest.param("'one' == auth.someString", FIELDS, True, id="string-equal"),
]


@pytest.mark.parametrize(("expression", "auth", "expected"), AUTH_EXPRESSION_CASES)
def test_expression_with_auth(expression: str, auth: dict[str, Any] | None, expected: bool) -> None:
    data = {**DATA, "users": {"u1": {"name": "U"}}}
    assert read({"x": {".read": expression}}, "/x", data, auth) is expected


# --- writes: cascade, newData/data/root, validate, multi-path --------------------------

OPEN = {".write": True}
# A record that refuses keys it doesn't name.
RECORD = {".write": True, "rec": {"a": {".validate": True}, "$other": {".validate": False}}}

WRITE_CASES = [
    # .write cascade
    pytest.param(OPEN, [("/a/b", 1)], None, None, True, id="root-write-cascades"),
    pytest.param({}, [("/a", 1)], None, None, False, id="no-write-rule-denies"),
    pytest.param(
        {".write": True, "a": {".write": False}}, [("/a", 1)], None, None, True, id="no-revoke"
    ),
    pytest.param(
        {"a": {"b": {".write": True}}}, [("/a", {"b": 1})], None, None, False, id="not-a-filter"
    ),
    pytest.param(
        {"a": {"b": {".write": True}}}, [("/a/b", 1)], None, None, True, id="grant-at-path"
    ),
    pytest.param(
        {"a": {".validate": True}}, [("/a", 1)], None, None, False, id="validate-cannot-grant"
    ),
    # newData, data, root
    pytest.param(
        {"a": {".write": "newData.val() == 5"}}, [("/a", 5)], None, None, True, id="newData-ok"
    ),
    pytest.param(
        {"a": {".write": "newData.val() == 5"}}, [("/a", 6)], None, None, False, id="newData-bad"
    ),
    pytest.param(
        {"a": {".write": "!data.exists()"}}, [("/a", 1)], None, None, True, id="create-only-new"
    ),
    pytest.param(
        {"a": {".write": "!data.exists()"}},
        [("/a", 2)],
        {"a": 1},
        None,
        False,
        id="create-only-existing",
    ),
    pytest.param(
        {"a": {".write": "!newData.exists()"}},
        [("/a", None)],
        {"a": 1},
        None,
        True,
        id="delete-only",
    ),
    pytest.param(
        {"x": {".write": "root.child('x').val() == 1"}},
        [("/x", 2)],
        {"x": 1},
        None,
        True,
        id="root-is-old-data",
    ),
    pytest.param(
        {"x": {".write": "root.child('x').val() == 1"}},
        [("/x", 1)],
        {"x": 2},
        None,
        False,
        id="root-is-not-new-data",
    ),
    pytest.param(
        {"a": {".write": "newData.parent().child('b').val() == 1"}, "b": {".write": True}},
        [("/a", 1), ("/b", 1)],
        None,
        None,
        True,
        id="newData-sees-whole-update",
    ),
    pytest.param(
        {"a": {".write": "newData.parent().child('b').val() == 1"}, "b": {".write": True}},
        [("/a", 1), ("/b", 2)],
        None,
        None,
        False,
        id="newData-sees-whole-update-bad",
    ),
    pytest.param(
        {"users": {"$uid": {".write": "auth.uid == $uid"}}},
        [("/users/ada/name", "Ada")],
        None,
        ADA,
        True,
        id="own-user-node",
    ),
    pytest.param(
        {"users": {"$uid": {".write": "auth.uid == $uid"}}},
        [("/users/bob/name", "Ada")],
        None,
        ADA,
        False,
        id="other-user-node",
    ),
    pytest.param(
        {"a": {".write": "newData.child('x').val() == 1"}},
        [("/a", {"x": 1})],
        None,
        None,
        True,
        id="newData-child-of-object",
    ),
    pytest.param(
        {"a": {".write": "newData.val().length == 1"}},
        [("/a", 5)],
        None,
        None,
        False,
        id="property-of-number-errors",
    ),
    pytest.param(
        {"a": {".write": "newData.getPriority() == 3"}},
        [("/a", {".value": 1, ".priority": 3})],
        None,
        None,
        True,
        id="newData-priority",
    ),
    pytest.param(
        {"a": {".write": "newData.getPriority() == 3"}},
        [("/a", 1)],
        None,
        None,
        False,
        id="newData-no-priority",
    ),
    # .validate at the written node
    pytest.param(
        {".write": True, "a": {".validate": "newData.isNumber()"}},
        [("/a", 1)],
        None,
        None,
        True,
        id="validate-node-ok",
    ),
    pytest.param(
        {".write": True, "a": {".validate": "newData.isNumber()"}},
        [("/a", "x")],
        None,
        None,
        False,
        id="validate-node-bad",
    ),
    pytest.param(
        {".write": True, "a": {".validate": False}},
        [("/a", None)],
        {"a": 1},
        None,
        True,
        id="validate-skipped-on-delete",
    ),
    pytest.param(
        {".write": True, "a": {".validate": f"newData.val() <= now && now == {NOW}"}},
        [("/a", NOW - 5)],
        None,
        None,
        True,
        id="validate-now",
    ),
    pytest.param(
        {".write": True, "a": {".validate": "newData.val() <= now"}},
        [("/a", NOW + 5)],
        None,
        None,
        False,
        id="validate-now-future",
    ),
    # .validate on ancestors
    pytest.param(
        {".write": True, "a": {".validate": "newData.hasChildren(['b', 'c'])"}},
        [("/a/b", 1)],
        {"a": {"c": 1}},
        None,
        True,
        id="ancestor-validate-sees-siblings",
    ),
    pytest.param(
        {".write": True, "a": {".validate": "newData.hasChildren(['b', 'c'])"}},
        [("/a/b", 1)],
        None,
        None,
        False,
        id="ancestor-validate-fails",
    ),
    pytest.param(
        {".write": True, "a": {".validate": False, "b": {".validate": True}}},
        [("/a/b", 1)],
        None,
        None,
        False,
        id="child-validate-cannot-override-ancestor",
    ),
    pytest.param(
        {".write": True, "a": {".validate": False}},
        [("/a/b", None)],
        {"a": {"b": 1}},
        None,
        True,
        id="ancestor-left-empty-is-null",
    ),
    pytest.param(
        {".write": True, "a": {".validate": False}},
        [("/a/b", None)],
        {"a": {"b": 1, "c": 2}},
        None,
        False,
        id="ancestor-still-exists",
    ),
    # .validate on descendants
    pytest.param(
        {".write": True, "a": {"b": {".validate": "newData.isString()"}}},
        [("/a", {"b": 1})],
        None,
        None,
        False,
        id="descendant-validate-bad",
    ),
    pytest.param(
        {".write": True, "a": {"b": {".validate": "newData.isString()"}}},
        [("/a", {"b": "s"})],
        None,
        None,
        True,
        id="descendant-validate-ok",
    ),
    pytest.param(
        {".write": True, "a": {"b": {".validate": False}}},
        [("/a", {"c": 1})],
        None,
        None,
        True,
        id="absent-descendant-skipped",
    ),
    pytest.param(
        {".write": True, "a": {".validate": True, "b": {".validate": "newData.isString()"}}},
        [("/a", {"b": 1})],
        None,
        None,
        False,
        id="validate-true-does-not-cascade",
    ),
    pytest.param(
        {".write": True, "a": {"$k": {"c": {".validate": "newData.val() > 0"}}}},
        [("/a", {"k1": {"c": 1}, "k2": {"c": 2}})],
        None,
        None,
        True,
        id="deep-descendants-ok",
    ),
    pytest.param(
        {".write": True, "a": {"$k": {"c": {".validate": "newData.val() > 0"}}}},
        [("/a", {"k1": {"c": 1}, "k2": {"c": -2}})],
        None,
        None,
        False,
        id="deep-descendants-one-bad",
    ),
    pytest.param(
        {".write": True, "a": {"name": {".validate": False}}},
        [("/a", {"other": 1})],
        None,
        None,
        True,
        id="unmatched-keys-need-no-validation",
    ),
    pytest.param(
        {".write": True, "a": {"b": {".validate": False}}},
        [("/a/c", 1)],
        {"a": {"b": 1}},
        None,
        True,
        id="untouched-sibling-not-validated",
    ),
    # $other
    pytest.param(
        {".write": True, "a": {"name": {".validate": True}, "$other": {".validate": False}}},
        [("/a", {"name": "x"})],
        None,
        None,
        True,
        id="other-named-only",
    ),
    pytest.param(
        {".write": True, "a": {"name": {".validate": True}, "$other": {".validate": False}}},
        [("/a", {"name": "x", "extra": 1})],
        None,
        None,
        False,
        id="other-extra-key",
    ),
    pytest.param(
        {".write": True, "a": {"name": {".validate": True}, "$other": {".validate": False}}},
        [("/a/extra", 1)],
        None,
        None,
        False,
        id="other-direct-write",
    ),
    # .priority is validated like a child the wildcard matches (Firebase): a record refusing
    # unknown keys refuses a priority; without such a wildcard, priorities are accepted
    pytest.param(
        RECORD, [("/rec", {"a": 1, ".priority": 5})], None, None, False, id="prio-refused"
    ),
    pytest.param(RECORD, [("/rec", {"a": 1})], None, None, True, id="prio-none-record-ok"),
    pytest.param(
        RECORD, [("/rec", {".value": 1, ".priority": 5})], None, None, False, id="prio-on-leaf"
    ),
    pytest.param(
        RECORD, [("/rec/.priority", 5)], {"rec": {"a": 1}}, None, False, id="prio-sub-path"
    ),
    pytest.param(
        RECORD,
        [("/rec/.priority", None)],
        {"rec": {"a": 1, ".priority": 5}},
        None,
        True,
        id="prio-removed",
    ),
    pytest.param(
        RECORD,
        [("/rec/a", 2)],
        {"rec": {"a": 1, ".priority": 5}},
        None,
        True,
        id="prio-untouched-not-validated",  # ours: like an untouched sibling
    ),
    pytest.param(
        {".write": True, "list": {"$id": RECORD["rec"]}},
        [("/list", {"r1": {"a": 1}, "r2": {"a": 1, ".priority": 5}})],
        None,
        None,
        False,
        id="prio-refused-below",
    ),
    pytest.param(
        {".write": True, "rec": {"a": {".validate": True}}},
        [("/rec", {"a": 1, ".priority": 5})],
        None,
        None,
        True,
        id="prio-no-wildcard-ok",
    ),
    pytest.param(
        {".write": True, "rec": {"$other": {".write": False}}},
        [("/rec", {"a": 1, ".priority": 5})],
        None,
        None,
        True,
        id="prio-wildcard-without-validate-ok",
    ),
    pytest.param(
        {".write": True, "rec": {"$other": {".validate": "newData.isNumber()"}}},
        [("/rec", {"a": 1, ".priority": 5})],
        None,
        None,
        True,
        id="prio-newData-is-priority",
    ),
    pytest.param(
        {".write": True, "rec": {"$other": {".validate": "newData.isNumber()"}}},
        [("/rec", {"a": 1, ".priority": "p"})],
        None,
        None,
        False,
        id="prio-newData-is-priority-bad",
    ),
    pytest.param(
        {".write": True, "rec": {"$k": {".validate": "$k == 'a' || $k == '.priority'"}}},
        [("/rec", {"a": 1, ".priority": 5})],
        None,
        None,
        True,
        id="prio-wildcard-bound",
    ),
    pytest.param(
        {".write": True, "rec": {"$k": {".validate": "$k != '.priority'"}}},
        [("/rec", {"a": 1, ".priority": 5})],
        None,
        None,
        False,
        id="prio-wildcard-bound-refuses",
    ),
    pytest.param(
        {".write": True, "rec": {"$k": {".validate": "newData.parent().child('a').val() == 1"}}},
        [("/rec", {"a": 1, ".priority": 5})],
        None,
        None,
        True,
        id="prio-newData-parent-is-record",
    ),
    pytest.param(
        {".write": True, "items": {"$id": {".validate": "newData.child('id').val() == $id"}}},
        [("/items/k1", {"id": "k1"})],
        None,
        None,
        True,
        id="wildcard-in-validate",
    ),
    pytest.param(
        {".write": True, "items": {"$id": {".validate": "newData.child('id').val() == $id"}}},
        [("/items", {"k1": {"id": "k1"}, "k2": {"id": "k1"}})],
        None,
        None,
        False,
        id="wildcard-in-validate-descendant",
    ),
    pytest.param(
        {".write": True, "a": {".validate": "data.val() == 1 && newData.val() == 2"}},
        [("/a", 2)],
        {"a": 1},
        None,
        True,
        id="validate-data-and-newData",
    ),
    # multi-path
    pytest.param(
        {"a": {".write": True}},
        [("/a", 1), ("/b", 1)],
        None,
        None,
        False,
        id="multi-every-path-needs-write",
    ),
    pytest.param(
        {"a": {".write": True}, "b": {".write": True}},
        [("/a", 1), ("/b", 1)],
        None,
        None,
        True,
        id="multi-all-granted",
    ),
    pytest.param(
        {".write": True, "a": {".validate": "newData.parent().child('b').exists()"}},
        [("/a", 1), ("/b", 1)],
        None,
        None,
        True,
        id="multi-validate-sees-full-tree",
    ),
    pytest.param(
        {".write": True, "a": {".validate": "newData.parent().child('b').exists()"}},
        [("/a", 1)],
        None,
        None,
        False,
        id="multi-validate-partial",
    ),
    pytest.param(
        {".write": True, "a": {".validate": "newData.isNumber()"}, "b": {".validate": False}},
        [("/a", 1), ("/b", 1)],
        None,
        None,
        False,
        id="multi-any-validate-fails",
    ),
    pytest.param(
        {
            ".write": True,
            "p": {".validate": "newData.child('x').val() + newData.child('y').val() == 3"},
        },
        [("/p/x", 1), ("/p/y", 2)],
        None,
        None,
        True,
        id="multi-shared-ancestor",
    ),
]


@pytest.mark.parametrize(("tree", "writes", "old", "auth", "expected"), WRITE_CASES)
def test_write(
    tree: dict[str, Any],
    writes: list[tuple[str, Any]],
    old: Any,
    auth: dict[str, Any] | None,
    expected: bool,
) -> None:
    assert write(tree, writes, old, auth) is expected


# --- the rules file: comments, strict form, structure and syntax errors ----------------

COMMENTED = """{
  // line comment with a "quote" and a } brace
  "rules": {
    /* a block comment
       spanning lines */
    "links": {
      ".read": "'http://x.io'.beginsWith('http://')", // '//' inside a string is not a comment
      ".write": "auth != null && 'a/*b*/c'.length == 7"
    }
  }
}
"""


def test_comments_are_ignored_and_source_is_kept() -> None:
    rules = RuleSet.from_text(COMMENTED)
    assert rules.source == COMMENTED
    assert rules.strict() == {
        "rules": {
            "links": {
                ".read": "'http://x.io'.beginsWith('http://')",
                ".write": "auth != null && 'a/*b*/c'.length == 7",
            }
        }
    }
    assert rules.can_read(["links"], root=None, auth=None, now=NOW) is True
    assert rules.can_read([], root=None, auth=None, now=NOW) is False
    # "/*" inside a JSON string is data: stripping it would make the length 2.
    assert rules.can_write(
        [(["links"], 1)], old_root=None, new_root={"links": 1}, auth=BOB, now=NOW
    )


def test_line_numbers_count_comment_lines() -> None:
    broken = COMMENTED.replace("auth != null &&", "auth != &&")
    with pytest.raises(
        RulesError, match=r"^Line 8, column 26: Unexpected token '&&' in \.write at /rules/links$"
    ):
        RuleSet.from_text(broken)


def test_strict_is_a_copy() -> None:
    rules = ruleset({".read": True})
    rules.strict()["rules"][".read"] = False
    assert rules.strict() == {"rules": {".read": True}}


def test_allow_all() -> None:
    rules = RuleSet.allow_all()
    assert rules.strict() == {"rules": {".read": True, ".write": True}}
    assert rules.can_read(["any", "where"], root=None, auth=None, now=NOW) is True
    assert (
        rules.can_write([(["a"], 1)], old_root=None, new_root={"a": 1}, auth=None, now=NOW) is True
    )
    assert rules.index_on(["a"]) == []


def test_default_project_rules_file_denies_everything() -> None:
    text = '{\n  // deny all\n  "rules": {\n    ".read": false,\n    ".write": false\n  }\n}\n'
    rules = RuleSet.from_text(text)
    assert rules.can_read([], root=None, auth=ADA, now=NOW) is False
    assert (
        rules.can_write([(["a"], 1)], old_root=None, new_root={"a": 1}, auth=ADA, now=NOW) is False
    )


ERROR_CASES = [
    pytest.param(
        '{"rules": {"a": {".read": "auth.uid =="}}}',
        "Line 1, column 39: Unexpected end of expression in .read at /rules/a",
        id="incomplete-expression",
    ),
    pytest.param(
        '{\n  "rules": {\n    "a": {".read": "auth != null }"}\n  }\n}',
        "Line 3, column 34: Unexpected token '}' in .read at /rules/a",
        id="unexpected-token-line-3",
    ),
    pytest.param(
        '{"rules": {".write": "foo == 1"}}',
        "Line 1, column 23: Unknown variable 'foo' in .write at /rules",
        id="unknown-variable",
    ),
    pytest.param(
        '{"rules": {"x": {".write": "auth.uid b"}}}',
        "Line 1, column 38: Unexpected token 'b' in .write at /rules/x",
        id="two-operands",
    ),
    pytest.param(
        '{"rules": {"a": {".read": "$uid == auth.uid"}}}',
        "Line 1, column 28: Unknown variable '$uid' in .read at /rules/a",
        id="unbound-wildcard",
    ),
    pytest.param(
        '{"rules": {"$uid": {}, "a": {".read": "$uid == auth.uid"}}}',
        "Line 1, column 40: Unknown variable '$uid' in .read at /rules/a",
        id="sibling-wildcard-not-in-scope",
    ),
    pytest.param(
        '{"rules": {\n"a": {".reed": true}}}',
        "Line 2: Unknown rule key '.reed' at /rules/a",
        id="unknown-rule-key",
    ),
    pytest.param(
        '{"rules": {"a": {".read": 1}}}',
        "Line 1: .read at /rules/a must be a boolean or an expression string, found a number",
        id="rule-not-string-or-bool",
    ),
    pytest.param(
        '{"rules": {"a": {".validate": null}}}',
        "Line 1: .validate at /rules/a must be a boolean or an expression string, found null",
        id="rule-null",
    ),
    pytest.param(
        '{"rules": {"a": {".indexOn": 5}}}',
        "Line 1: .indexOn at /rules/a must be a string or a list of strings",
        id="indexOn-number",
    ),
    pytest.param(
        '{"rules": {"a": {".indexOn": ["x", 1]}}}',
        "Line 1: .indexOn at /rules/a must be a string or a list of strings",
        id="indexOn-mixed-list",
    ),
    pytest.param(
        '{"rules": {"a": true}}',
        "Line 1: Rules at /rules/a must be an object, found a boolean",
        id="child-not-object",
    ),
    pytest.param(
        '{"rules": {"$a": {}, "$b": {}}}',
        "Line 1: Only one $wildcard is allowed at /rules, found $a and $b",
        id="two-wildcards",
    ),
    pytest.param(
        '{"rules": {"$a": {"$a": {}}}}',
        "Line 1: Wildcard '$a' at /rules/$a is already in use above",
        id="wildcard-reused",
    ),
    pytest.param(
        '{"rules": {"a.b": {}}}',
        "Line 1: Invalid key 'a.b' at /rules",
        id="bad-key",
    ),
    pytest.param(
        '{"rule": {}}',
        'Line 1: The rules file must be an object with a "rules" key',
        id="missing-rules-key",
    ),
    pytest.param(
        '{"rules": {},\n "extra": 1}',
        "Line 2: Unknown top-level key 'extra', expected only \"rules\"",
        id="extra-top-level-key",
    ),
    pytest.param(
        '{"rules": {".read": true,}}',
        "Line 1: Expected a quoted key but found '}'",
        id="trailing-comma",
    ),
    pytest.param(
        '{"rules" {}}',
        "Line 1: Expected ':' but found '{'",
        id="missing-colon",
    ),
    pytest.param(
        '{"rules": {}} /* open',
        "Line 1: Unterminated /* comment",
        id="unterminated-comment",
    ),
    pytest.param(
        '{"rules": {".read": true, ".read": false}}',
        "Line 1: Duplicate key '.read'",
        id="duplicate-key",
    ),
    pytest.param("", "Line 1: Expected a JSON value but found end of file", id="empty-file"),
    pytest.param(
        '{"rules": {".read": "\'abc\'.matches(/(/)"}}',
        "Line 1, column 36: Invalid regular expression /(/: missing ), unterminated subpattern at position 0"
        " in .read at /rules",
        id="bad-regex",
    ),
    pytest.param(
        '{"rules": {".read": "\'abc\'.matches(/a/g)"}}',
        "Line 1, column 36: Unsupported regular expression flag 'g' in .read at /rules",
        id="regex-flag",
    ),
    pytest.param(
        '{"rules": {".read": "\'abc\'.matches(/a"}}',
        "Line 1, column 36: Unterminated regular expression in .read at /rules",
        id="unterminated-regex",
    ),
    pytest.param(
        '{"rules": {".read": "\'abc == \'abc\'"}}',
        "Line 1, column 34: Unterminated string in .read at /rules",
        id="unterminated-string",
    ),
    pytest.param(
        '{"rules": {".read": "1 + 2"}}',
        "Line 1, column 24: Expression must evaluate to a boolean, not a number in .read at /rules",
        id="non-boolean",
    ),
    pytest.param(
        '{"rules": {".read": "\'yes\'"}}',
        "Line 1, column 22: Expression must evaluate to a boolean, not a string in .read at /rules",
        id="string-literal",
    ),
    pytest.param(
        '{"rules": {".read": ""}}',
        "Line 1, column 22: Empty expression in .read at /rules",
        id="empty-expression",
    ),
    pytest.param(
        '{"rules": {".read": "exists()"}}',
        "Line 1, column 28: Only methods can be called, as in data.val() in .read at /rules",
        id="bare-call",
    ),
    pytest.param(
        '{"rules": {".read": "auth.uid = \'x\'"}}',
        "Line 1, column 31: Unexpected token '=' in .read at /rules",
        id="assignment",
    ),
    pytest.param(
        '{"rules": {".read": "data.child(\'a\')."}}',
        "Line 1, column 38: Unexpected end of expression in .read at /rules",
        id="dangling-dot",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERROR_CASES)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        RuleSet.from_text(text)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value)


def test_rules_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        RuleSet.from_text("{")


# --- .indexOn --------------------------------------------------------------------------

INDEXED = {
    "users": {".indexOn": "email"},
    "posts": {
        "$uid": {".indexOn": ["time", ".value"], "drafts": {".indexOn": []}},
    },
    "scores": {".indexOn": [".value"]},
}

INDEX_CASES = [
    pytest.param("/users", ["email"], id="string-normalized-to-list"),
    pytest.param("/posts/ada", ["time", ".value"], id="wildcard-match"),
    pytest.param("/posts/ada/drafts", [], id="empty-list"),
    pytest.param("/posts", [], id="parent-has-none"),
    pytest.param("/users/ada", [], id="child-of-indexed-has-none"),
    pytest.param("/scores", [".value"], id="value-index"),
    pytest.param("/nowhere/deep", [], id="no-rule-node"),
    pytest.param("/", [], id="root"),
]


@pytest.mark.parametrize(("path", "expected"), INDEX_CASES)
def test_index_on(path: str, expected: list[str]) -> None:
    assert ruleset(INDEXED).index_on(split(path)) == expected


# --- never raise out of can_read / can_write -------------------------------------------


def test_malformed_inputs_deny_instead_of_raising() -> None:
    rules = ruleset({".read": "data.child('a').val() == 1", ".write": "newData.exists()"})
    assert rules.can_read(["a"], root=["not", "export", "form"], auth=None, now=NOW) is False
    assert rules.can_read([None], root=None, auth=None, now=NOW) is False  # type: ignore[list-item]
    assert rules.can_write([None], old_root=None, new_root=None, auth=None, now=NOW) is False  # type: ignore[list-item]
    assert rules.can_read([], root={"a": 1}, auth=None, now=NOW) is True


def test_rules_are_reusable_across_requests() -> None:
    rules = ruleset(USERS)
    for uid, who, expected in [("ada", ADA, True), ("bob", ADA, False), ("bob", BOB, True)]:
        assert rules.can_read(["users", uid], root=None, auth=who, now=NOW) is expected


def test_each_validate_location_runs_once_per_write() -> None:
    # White-box: a multi-path update under one parent must not re-run the parent's rules.
    rules = ruleset({".write": True, ".validate": True, "p": {".validate": "newData.exists()"}})
    calls: list[str] = []
    for name, node in [("root", rules._tree), ("p", rules._tree.named["p"])]:
        inner = node.validate
        assert inner is not None
        node.validate = lambda ctx, inner=inner, name=name: calls.append(name) or inner(ctx)
    new_root = {"p": {"x": 1, "y": 2}}
    writes = [(["p", "x"], 1), (["p", "y"], 2), (["p"], new_root["p"])]
    assert rules.can_write(writes, old_root=None, new_root=new_root, auth=None, now=NOW)
    assert sorted(calls) == ["p", "root"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            '{"rules": {".read": "' + "(" * 5000 + "true" + ")" * 5000 + '"}}',
            "Line 1: Expression nested too deeply in .read at /rules",
            id="deep-expression",
        ),
        pytest.param("[" * 100_000, "Line 1: The rules are nested too deeply", id="deep-json"),
        pytest.param(
            '{"rules": {".read": ' + "9" * 5000 + "}}", "Line 1: Number too long", id="num"
        ),
    ],
)
def test_pathological_files_are_rules_errors(text: str, message: str) -> None:
    with pytest.raises(RulesError) as caught:
        RuleSet.from_text(text)
    assert str(caught.value) == message
