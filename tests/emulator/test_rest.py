"""The RTDB REST protocol over real HTTP: methods, options, ETags, errors."""

from __future__ import annotations

import json
import time

import pytest
import requests

from emdash_fb.emulator.idtoken import mint_id_token
from tests.emulator.test_rules_engine import KEY_ORDER, NOT_KEY
from tests.support.rtdb import RawRtdb

PARSE_ERROR = "Invalid data; couldn't parse JSON object, array, or value."


def test_put_get_roundtrip_and_echo(raw: RawRtdb) -> None:
    r = raw.put("a/b", {"x": 1, "y": "two", "z": [1, 2]})
    assert r.status_code == 200
    assert r.json() == {"x": 1, "y": "two", "z": [1, 2]}
    assert raw.get("a/b/x").json() == 1
    assert raw.get("a").json()["b"]["y"] == "two"
    assert raw.get("missing").json() is None


def test_arrays_read_back_as_arrays_when_dense(raw: RawRtdb) -> None:
    raw.put(
        "arr", {"dense": ["a", "b", "c"], "gap": {"0": "a", "2": "c"}, "sparse": {"0": 1, "5": 2}}
    )
    got = raw.get("arr").json()
    assert got == {"dense": ["a", "b", "c"], "gap": ["a", None, "c"], "sparse": {"0": 1, "5": 2}}
    raw.delete("arr/dense/1")
    assert raw.get("arr/dense").json() == ["a", None, "c"]
    assert raw.get("arr/dense/2").json() == "c"


def test_trailing_slash_before_json(raw: RawRtdb) -> None:
    raw.put("p/q", 5)
    r = raw.http.get(f"{raw.base}/p/q/.json", params={"ns": raw.ns}, timeout=5)
    assert r.json() == 5


def test_post_push_ids_sort_in_creation_order(raw: RawRtdb) -> None:
    names = [raw.post("list", {"i": i}).json()["name"] for i in range(30)]
    assert all(len(n) == 20 for n in names)
    assert names == sorted(names)
    stored = raw.get("list").json()
    assert [stored[n]["i"] for n in sorted(stored)] == list(range(30))


def test_patch_multi_path_and_null_delete(raw: RawRtdb) -> None:
    raw.put("m", {"a": {"keep": 1, "drop": 2}, "b": 1})
    r = raw.patch("m", {"a/drop": None, "c/d": 4, "b": {"new": True}})
    assert r.status_code == 200
    assert raw.get("m").json() == {"a": {"keep": 1}, "b": {"new": True}, "c": {"d": 4}}


def test_patch_replaces_children_whole(raw: RawRtdb) -> None:
    raw.put("n", {"a": {"x": 1, "y": 2}})
    raw.patch("n", {"a": {"x": 9}})
    assert raw.get("n").json() == {"a": {"x": 9}}


def test_patch_overlapping_paths_rejected_and_tree_unchanged(raw: RawRtdb) -> None:
    raw.put("o", {"a": 1})
    r = raw.patch("o", {"a": 2, "a/b": 3})
    assert r.status_code == 400
    assert raw.get("o").json() == {"a": 1}


def test_delete_returns_null_body(raw: RawRtdb) -> None:
    raw.put("d", 1)
    r = raw.delete("d")
    assert r.status_code == 200 and r.json() is None
    assert raw.get("d").json() is None


def test_print_silent_and_pretty(raw: RawRtdb) -> None:
    r = raw.put("s", {"a": 1}, params={"print": "silent"})
    assert r.status_code == 204 and r.content == b""
    r = raw.get("s", params={"print": "pretty"})
    assert r.text == json.dumps({"a": 1}, indent=2)
    assert raw.get("s", params={"print": "loud"}).status_code == 400


def test_shallow(raw: RawRtdb) -> None:
    raw.put("sh", {"obj": {"deep": 1}, "num": 3, "str": "x"})
    assert raw.get("sh", params={"shallow": "true"}).json() == {"obj": True, "num": 3, "str": "x"}
    r = raw.get("sh", params={"shallow": "true", "limitToFirst": "1", "orderBy": '"$key"'})
    assert r.status_code == 200
    assert raw.get("sh/num", params={"shallow": "true"}).json() == 3


def test_priority_and_export_format(raw: RawRtdb) -> None:
    raw.put("pr", {"a": {".value": 1, ".priority": 5}, "b": {"c": 2, ".priority": "z"}})
    assert raw.get("pr").json() == {"a": 1, "b": {"c": 2}}
    exported = raw.get("pr", params={"format": "export"}).json()
    assert exported == {"a": {".value": 1, ".priority": 5}, "b": {"c": 2, ".priority": "z"}}
    r = raw.get("pr", params={"orderBy": '"$priority"', "startAt": '"a"'})
    assert r.json() == {"b": {"c": 2}}


def test_server_timestamp_and_increment(raw: RawRtdb) -> None:
    before = int(time.time() * 1000)
    raw.put("sv", {"t": {".sv": "timestamp"}, "n": {".sv": {"increment": 2}}})
    got = raw.get("sv").json()
    assert before <= got["t"] <= int(time.time() * 1000) + 5
    assert got["n"] == 2
    raw.patch("sv", {"n": {".sv": {"increment": 1.5}}})
    assert raw.get("sv/n").json() == 3.5
    raw.put("sv/s", "text")
    raw.put("sv/s", {".sv": {"increment": 4}})
    assert raw.get("sv/s").json() == 4


@pytest.mark.parametrize(
    "body",
    [{".sv": "bogus"}, {".sv": {"increment": "x"}}, {"a": {".sv": {"decrement": 1}}}],
)
def test_unknown_server_values_rejected(raw: RawRtdb, body: object) -> None:
    raw.put("usv", 1)
    r = raw.put("usv", body)
    assert r.status_code == 400 and "error" in r.json()
    assert raw.get("usv").json() == 1


def test_method_override(raw: RawRtdb) -> None:
    r = raw.post("mo", {"a": 1}, headers={"X-HTTP-Method-Override": "PUT"})
    assert r.json() == {"a": 1}
    r = raw.post("mo", {"b": 2}, params={"x-http-method-override": "PATCH"})
    assert raw.get("mo").json() == {"a": 1, "b": 2}
    raw.post("mo", None, params={"x-http-method-override": "DELETE"})
    assert raw.get("mo").json() is None


def test_default_namespace_and_isolation(emulator, raw: RawRtdb) -> None:
    raw.put("iso", "mine")
    other = RawRtdb(raw.base, raw.ns + "-other")
    assert other.get("iso").json() is None
    # pyrebase4 cannot send ns: requests without it use <project>-default-rtdb
    default = RawRtdb(raw.base, f"{emulator.project_id}-default-rtdb")
    default.put("dflt", 7)
    r = requests.get(f"{raw.base}/dflt.json", timeout=5)
    assert r.json() == 7


# -- ETags ------------------------------------------------------------------


def test_etag_if_match_and_if_none_match(raw: RawRtdb) -> None:
    raw.put("e", {"v": 1})
    r = raw.get("e", headers={"X-Firebase-ETag": "true"})
    tag = r.headers["ETag"]
    assert r.json() == {"v": 1}
    assert raw.get("e", headers={"if-none-match": tag}).status_code == 304
    ok = raw.put("e", {"v": 2}, headers={"if-match": tag})
    assert ok.status_code == 200 and "ETag" in ok.headers
    stale = raw.put("e", {"v": 3}, headers={"if-match": tag})
    assert stale.status_code == 412
    assert stale.json() == {"v": 2}
    assert stale.headers["ETag"] == ok.headers["ETag"]
    changed = raw.get("e", headers={"if-none-match": tag})
    assert changed.status_code == 200 and changed.json() == {"v": 2}
    assert changed.headers["ETag"] == ok.headers["ETag"]


def test_null_etag_for_absent_and_conditional_delete(raw: RawRtdb) -> None:
    r = raw.get("absent", headers={"X-Firebase-ETag": "true"})
    assert r.headers["ETag"] == "null_etag"
    assert raw.put("absent", 1, headers={"if-match": "null_etag"}).status_code == 200
    assert raw.delete("absent", headers={"if-match": "null_etag"}).status_code == 412
    tag = raw.get("absent", headers={"X-Firebase-ETag": "true"}).headers["ETag"]
    assert raw.delete("absent", headers={"if-match": tag}).status_code == 200
    assert raw.get("absent").json() is None


# -- bad input: Firebase's status, an error body, the tree unchanged --------


@pytest.mark.parametrize(
    "raw_body",
    [b"{not json", b"", b"\xff\xfe", b"NaN", b'{"a": Infinity}', b"[1,"],
)
def test_malformed_json(raw: RawRtdb, raw_body: bytes) -> None:
    raw.put("bad", {"ok": True})
    r = raw.request("PUT", "bad", raw_body=raw_body)
    assert r.status_code == 400
    assert r.json() == {"error": PARSE_ERROR}
    assert raw.get("bad").json() == {"ok": True}


@pytest.mark.parametrize("key", ["a.b", "a$", "a#", "a[", "a]", "a\x01", "x" * 769])
def test_bad_keys_in_data(raw: RawRtdb, key: str) -> None:
    r = raw.put("bk", {key: 1})
    assert r.status_code == 400 and "error" in r.json()
    assert raw.get("bk").json() is None


@pytest.mark.parametrize("path", ["a$b", "a%23b", "a[1]", "a%01b", "a%2Eb"])
def test_bad_keys_in_path(raw: RawRtdb, path: str) -> None:
    r = raw.put(path, 1)
    assert r.status_code == 400 and "error" in r.json()


def test_depth_limit(raw: RawRtdb) -> None:
    deep: object = 1
    for _ in range(33):
        deep = {"d": deep}
    r = raw.put("deep", deep)
    assert r.status_code == 400 and "depth" in r.json()["error"]
    ok: object = 1
    for _ in range(31):
        ok = {"d": ok}
    assert raw.put("deep", ok).status_code == 200
    # a shallower body at a deep path still counts the path's own depth
    assert raw.patch("deep", {"/".join(["d"] * 20): deep}).status_code == 400


def test_oversize_string(raw: RawRtdb) -> None:
    r = raw.put("big", "x" * (10 * 1024 * 1024 + 1))
    assert r.status_code == 400 and "10 MB" in r.json()["error"]
    assert raw.get("big").json() is None


@pytest.mark.parametrize(
    "params",
    [
        {"timeout": "3days"},
        {"timeout": "16min"},
        {"writeSizeLimit": "huge"},
        {"format": "xml"},
        {"shallow": "maybe"},
    ],
)
def test_bad_options(raw: RawRtdb, params: dict[str, str]) -> None:
    r = raw.get("x", params=params)
    assert r.status_code == 400 and "error" in r.json()


def test_good_timeout_and_write_size(raw: RawRtdb) -> None:
    assert raw.put("w", 1, params={"timeout": "3s", "writeSizeLimit": "tiny"}).status_code == 200
    assert raw.get("w", params={"timeout": "250ms"}).status_code == 200


def test_patch_if_match_rejected(raw: RawRtdb) -> None:
    r = raw.patch("pm", {"a": 1}, headers={"if-match": "null_etag"})
    assert r.status_code == 400
    assert raw.get("pm").json() is None


def test_non_json_url_is_404_not_500(raw: RawRtdb) -> None:
    r = requests.get(f"{raw.base}/nothing-here", timeout=5)
    assert r.status_code == 404 and "error" in r.json()


# -- credentials ----------------------------------------------------------


RULES_AUTH = {
    "rules": {
        "users": {
            "$uid": {".read": "auth != null && auth.uid === $uid", ".write": "auth.uid === $uid"}
        },
        "admin": {".read": "auth != null && auth.token.admin === true"},
    }
}


def test_tokens_owner_and_override(emulator, raw: RawRtdb) -> None:
    raw.set_rules(RULES_AUTH)
    alice = mint_id_token(project_id=emulator.project_id, uid="alice", provider="anonymous")
    as_alice = raw.as_token(alice)
    assert as_alice.put("users/alice/x", 1).status_code == 200
    denied = as_alice.put("users/bob/x", 1)
    assert denied.status_code == 401 and denied.json() == {"error": "Permission denied"}
    assert raw.get("users/alice").status_code == 401  # unauthenticated
    bearer = raw.get("users/alice", headers={"Authorization": f"Bearer {alice}"})
    assert bearer.json() == {"x": 1}
    # the owner bypasses rules
    assert raw.owner().get("users").json() == {"alice": {"x": 1}}
    # auth_variable_override: rules judge the given auth, even with the owner token
    over = raw.owner().get(
        "users/alice", params={"auth_variable_override": json.dumps({"uid": "bob"})}
    )
    assert over.status_code == 401
    over = raw.owner().get(
        "users/alice", params={"auth_variable_override": json.dumps({"uid": "alice"})}
    )
    assert over.json() == {"x": 1}
    assert (
        raw.owner().get("users/alice", params={"auth_variable_override": "null"}).status_code == 401
    )
    admin = mint_id_token(
        project_id=emulator.project_id, uid="root", provider="custom", claims={"admin": True}
    )
    assert raw.as_token(admin).get("admin").status_code == 200


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_garbage_tokens(raw: RawRtdb, token: str) -> None:
    r = raw.as_token(token).get("x")
    assert r.status_code == 401 and "error" in r.json()


def test_expired_token(emulator, raw: RawRtdb) -> None:
    old = mint_id_token(
        project_id=emulator.project_id, uid="u", provider="anonymous", now=time.time() - 7200
    )
    r = raw.as_token(old).get("x")
    assert r.status_code == 401 and "error" in r.json()


def test_override_needs_owner(raw: RawRtdb) -> None:
    r = raw.get("x", params={"auth_variable_override": "{}"})
    assert r.status_code == 401


# -- rules endpoint ---------------------------------------------------------


def test_rules_get_put_strict(raw: RawRtdb) -> None:
    text = '{\n  // comment kept\n  "rules": {".read": true, ".write": false}\n}'
    raw.set_rules(text)
    url = f"{raw.base}/.settings/rules.json"
    admin = {"Authorization": "Bearer owner"}
    assert requests.get(url, params={"ns": raw.ns}, timeout=5).status_code == 401  # no admin
    got = requests.get(url, params={"ns": raw.ns}, headers=admin, timeout=5)
    assert got.text == text
    strict = requests.get(url, params={"ns": raw.ns, "format": "strict"}, headers=admin, timeout=5)
    assert strict.json() == {"rules": {".read": True, ".write": False}}
    assert raw.put("x", 1).status_code == 401
    not_owner = requests.put(url, params={"ns": raw.ns}, data='{"rules": {}}', timeout=5)
    assert not_owner.status_code == 401
    bad = requests.put(
        url,
        params={"ns": raw.ns},
        data='{"rules": {".read": "auth ==="}}',
        headers={"Authorization": "Bearer owner"},
        timeout=5,
    )
    assert bad.status_code == 400 and "error" in bad.json()
    assert requests.get(url, params={"ns": raw.ns}, headers=admin, timeout=5).text == text


def test_index_not_defined(raw: RawRtdb) -> None:
    raw.set_rules({"rules": {".read": True, ".write": True, "indexed": {".indexOn": ["score"]}}})
    raw.put("indexed", {"a": {"score": 2}, "b": {"score": 1}})
    raw.put("plain", {"a": {"score": 2}})
    ok = raw.get("indexed", params={"orderBy": '"score"', "limitToFirst": "1"})
    assert ok.json() == {"b": {"score": 1}}
    r = raw.get("plain", params={"orderBy": '"score"'})
    assert r.status_code == 400
    assert r.json() == {
        "error": 'Index not defined, add ".indexOn": "score", for path "/plain", to the rules'
    }
    r = raw.get("plain", params={"orderBy": '"$value"'})
    assert r.status_code == 400 and '".value"' in r.json()["error"]
    assert raw.get("plain", params={"orderBy": '"$key"'}).status_code == 200


# -- query.* in read rules, from real query strings ---------------------------


@pytest.mark.parametrize(
    ("query_string", "expected"),
    [
        pytest.param("", KEY_ORDER, id="no-query"),
        pytest.param("shallow=true", KEY_ORDER, id="shallow"),
        pytest.param(
            "shallow=true&limitToFirst=2", {**KEY_ORDER, "limitToFirst": 2}, id="default-order"
        ),
        pytest.param(
            'orderBy="$key"&startAt="b"&endAt="m"&limitToLast=3',
            {**KEY_ORDER, "startAt": "b", "endAt": "m", "limitToLast": 3},
            id="key",
        ),
        pytest.param(
            'orderBy="$value"&startAt=5&endAt=9.5',
            {**NOT_KEY, "orderByValue": True, "startAt": 5, "endAt": 9.5},
            id="value",
        ),
        pytest.param(
            'orderBy="$priority"&equalTo="p"&limitToFirst=1',
            {**NOT_KEY, "orderByPriority": True, "equalTo": "p", "limitToFirst": 1},
            id="priority",
        ),
        pytest.param(
            'orderBy="foo/bar"&equalTo=true&limitToLast=4',
            {**NOT_KEY, "orderByChild": "foo/bar", "equalTo": True, "limitToLast": 4},
            id="child",
        ),
    ],
)
def test_query_variables_in_read_rules(
    raw: RawRtdb, query_string: str, expected: dict[str, object]
) -> None:
    """Each query.* variable as a read rule sees it: /q/all checks all nine, and
    /q/<variable> grants only if that one variable is NOT what we expect."""
    literals = {name: json.dumps(value) for name, value in expected.items()}
    indexed = {".indexOn": [".value", "foo/bar"]}
    every = " && ".join(f"query.{name} === {lit}" for name, lit in literals.items())
    probes = {
        name: {**indexed, ".read": f"query.{name} !== {lit}"} for name, lit in literals.items()
    }
    raw.set_rules({"rules": {"q": {"all": {**indexed, ".read": every}, **probes}}})

    def status(path: str) -> int:
        url = f"{raw.url(path)}?ns={raw.ns}" + (f"&{query_string}" if query_string else "")
        return raw.http.get(url, timeout=10).status_code

    assert status("q/all") == 200
    assert {name: status(f"q/{name}") for name in expected} == dict.fromkeys(expected, 401)


def test_priority_validated_like_a_child(raw: RawRtdb) -> None:
    """A record whose $other refuses unknown keys refuses a priority; one without takes it."""
    refuses = {"a": {".validate": True}, "$other": {".validate": False}}
    raw.set_rules({"rules": {".read": True, ".write": True, "strict": refuses, "loose": {}}})
    denied = raw.put("strict", {"a": 1, ".priority": 5})
    assert denied.status_code == 401 and denied.json() == {"error": "Permission denied"}
    assert raw.patch("/", {"strict": {"a": 1, ".priority": 5}}).status_code == 401
    assert raw.put("strict", {"a": 1}).status_code == 200
    assert raw.put("loose", {"a": 1, ".priority": 5}).status_code == 200
    exported = raw.get("/", params={"format": "export"}).json()
    assert exported == {"strict": {"a": 1}, "loose": {"a": 1, ".priority": 5}}
