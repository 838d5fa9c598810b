"""Every Rtdb method against the emulator over HTTP, and how failures map to errors."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator

import pytest
import requests

from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.firebase.client import SERVER_TIMESTAMP, Rtdb, server_increment
from emdash_fb.firebase.errors import NetworkError, RequestError
from emdash_fb.firebase.identity import Auth
from emdash_fb.firebase.pushid import ALPHABET
from emdash_fb.firebase.target import Target
from tests.firebase.stub_server import Step, StubServer


def owner_get(emu: ThreadedEmulator, path: str) -> object:
    """What the server holds, read past the client under test."""
    r = requests.get(
        f"http://{emu.database_host}/{path}.json",
        headers={"Authorization": "Bearer owner"},
        timeout=5,
    )
    r.raise_for_status()
    return r.json()


# -- reads and writes ---------------------------------------------------------------------


def test_set_and_get(db: Rtdb, base: str, fb_emulator: ThreadedEmulator) -> None:
    db.set(f"{base}/a", {"n": 1, "s": "x", "f": 1.5, "b": True, "deep": {"k": [1, 2]}})
    assert db.get(f"{base}/a/n") == 1
    assert db.get(f"{base}/a") == {
        "n": 1,
        "s": "x",
        "f": 1.5,
        "b": True,
        "deep": {"k": {"0": 1, "1": 2}},
    }
    assert owner_get(fb_emulator, f"{base}/a/deep/k") == [1, 2]  # the wire form is an array
    assert db.get(f"{base}/missing") is None


def test_set_none_deletes_and_delete_is_idempotent(db: Rtdb, base: str) -> None:
    db.set(f"{base}/a", 1)
    db.set(f"{base}/a", None)
    assert db.get(f"{base}/a") is None
    db.set(f"{base}/b", {"x": 1})
    db.delete(f"{base}/b")
    db.delete(f"{base}/b")
    assert db.get(base) is None


def test_server_timestamp(db: Rtdb, base: str) -> None:
    before = time.time() * 1000
    db.set(f"{base}/t", {"at": SERVER_TIMESTAMP})
    at = db.get(f"{base}/t/at")
    assert isinstance(at, int) and before - 5000 <= at <= time.time() * 1000 + 5000


def test_multi_path_update_at_the_root(db: Rtdb, base: str) -> None:
    db.set(f"{base}/keep", {"a": 1, "b": 2})
    db.update(
        "",
        {
            f"{base}/keep/a": 10,
            f"{base}/new/deep": "x",
            f"{base}/gone": None,
            f"{base}/n": server_increment(2),
        },
    )
    assert db.get(base) == {"keep": {"a": 10, "b": 2}, "new": {"deep": "x"}, "n": 2}
    db.update(base, {"n": server_increment(-1)})
    assert db.get(f"{base}/n") == 1
    db.update(base, {})  # nothing to do, no request


def test_multi_path_update_is_atomic(db: Rtdb, base: str) -> None:
    db.set(f"{base}/a", 1)
    with pytest.raises(RequestError) as caught:
        db.update(base, {"a": 2, "b.bad": 3})
    assert caught.value.status == 400
    assert db.get(base) == {"a": 1}


def test_push(db: Rtdb, base: str) -> None:
    first = db.push(f"{base}/list", {"v": 1})
    second = db.push(f"{base}/list", {"v": 2})
    assert len(first) == 20 and first < second
    assert db.get(f"{base}/list") == {first: {"v": 1}, second: {"v": 2}}


def test_new_key_is_a_sortable_push_id(db: Rtdb, base: str) -> None:
    keys = [db.new_key() for _ in range(500)]
    assert all(len(k) == 20 and set(k) <= set(ALPHABET) for k in keys)
    assert keys == sorted(keys) and len(set(keys)) == 500
    now_prefix = db.new_key()[:8]
    server = db.push(f"{base}/x", 1)
    assert abs(ALPHABET.index(now_prefix[-1]) - ALPHABET.index(server[7])) < 64
    db.set(f"{base}/m/{keys[0]}", "ok")
    assert db.get(f"{base}/m") == {keys[0]: "ok"}


def test_keys_that_need_url_escaping(db: Rtdb, base: str) -> None:
    for key in ("with space", "ünïcode", "q?mark", "amp&er", "pct%20"):
        db.set(f"{base}/{key}/v", key)
        assert db.get(f"{base}/{key}") == {"v": key}
    assert sorted(db.get(base)) == sorted(["with space", "ünïcode", "q?mark", "amp&er", "pct%20"])


def test_etag_round_trip(db: Rtdb, base: str) -> None:
    db.set(f"{base}/lock", {"by": "a"})
    value, etag = db.get_with_etag(f"{base}/lock")
    assert value == {"by": "a"} and etag
    ok, current, etag2 = db.set_if_match(f"{base}/lock", {"by": "b"}, etag)
    assert ok and current == {"by": "b"} and etag2 != etag
    ok, current, etag3 = db.set_if_match(f"{base}/lock", {"by": "c"}, etag)  # stale
    assert not ok and current == {"by": "b"} and etag3 == etag2
    assert db.get(f"{base}/lock") == {"by": "b"}


def test_etag_of_an_absent_value(db: Rtdb, base: str) -> None:
    value, etag = db.get_with_etag(f"{base}/nothing")
    assert value is None
    ok, current, _ = db.set_if_match(f"{base}/nothing", {"claimed": True}, etag)
    assert ok and current == {"claimed": True}
    ok, _, _ = db.set_if_match(f"{base}/nothing", {"claimed": "again"}, etag)
    assert not ok


# -- queries ------------------------------------------------------------------------------


@pytest.fixture
def people(db: Rtdb, base: str) -> str:
    db.set(
        f"{base}/p",
        {
            "a": {"age": 30, "name": 'Ann "the" Tester'},
            "b": {"age": 20, "name": "Bo b"},
            "c": {"age": 40, "name": "Çé"},
            "d": {"name": "no age"},
            "e": {"age": "twenty", "name": "str age"},
        },
    )
    return f"{base}/p"


def test_order_by_child_with_ranges(db: Rtdb, people: str) -> None:
    assert set(db.get(people, order_by="age", start_at=25)) == {"a", "c", "e"}
    assert set(db.get(people, order_by="age", start_at=25, end_at=35)) == {"a"}
    assert set(db.get(people, order_by="age", limit_to_first=2)) == {"d", "b"}
    assert set(db.get(people, order_by="age", limit_to_last=1)) == {"e"}


def test_equal_to_strings_that_need_json_escaping(db: Rtdb, people: str) -> None:
    assert set(db.get(people, order_by="name", equal_to='Ann "the" Tester')) == {"a"}
    assert set(db.get(people, order_by="name", equal_to="Bo b")) == {"b"}
    assert set(db.get(people, order_by="name", equal_to="Çé")) == {"c"}


def test_order_by_key_and_value(db: Rtdb, base: str, people: str) -> None:
    assert set(db.get(people, order_by="$key", start_at="b", end_at="c")) == {"b", "c"}
    db.set(f"{base}/scores", {"x": 3, "y": 1, "z": 2})
    assert db.get(f"{base}/scores", order_by="$value", limit_to_last=2) == {"x": 3, "z": 2}


def test_query_results_are_dicts_even_when_empty_or_dense(db: Rtdb, base: str) -> None:
    assert db.get(f"{base}/none", order_by="$key", limit_to_first=3) == {}
    db.set(f"{base}/arr", ["a", "b", "c"])
    assert db.get(f"{base}/arr", order_by="$key", limit_to_first=2) == {"0": "a", "1": "b"}


def test_shallow(db: Rtdb, people: str) -> None:
    assert db.get(people, shallow=True) == dict.fromkeys("abcde", True)
    assert db.get(f"{people}/a/age", shallow=True) == 30


# -- error mapping ------------------------------------------------------------------------


def test_bad_requests_are_request_errors(db: Rtdb, base: str) -> None:
    with pytest.raises(RequestError) as caught:
        db.set(f"{base}/a", {"bad.key": 1})
    assert caught.value.status == 400
    assert "contains" in caught.value.message and "\n" not in str(caught.value)
    with pytest.raises(RequestError, match="increment|server value|sv"):
        db.set(f"{base}/a", {".sv": "nonsense"})


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.close()


def on_stub(target: Target, auth: Auth, stub: StubServer, timeout: float = 2.0) -> Rtdb:
    """A client whose database is the scripted stub (sign-in stays on the real emulator)."""
    moved = dataclasses.replace(target, database_url=stub.url, database_emulator=stub.host_port)
    return Rtdb(moved, auth, timeout=timeout)


def test_unreachable_database_fails_fast_with_bounded_retries(target: Target, auth: Auth) -> None:
    dead = dataclasses.replace(target, database_url="http://127.0.0.1:9")
    db = Rtdb(dead, auth)
    started = time.monotonic()
    with pytest.raises(NetworkError) as caught:
        db.get("x")
    assert "can't reach the database at http://127.0.0.1:9" in str(caught.value)
    assert time.monotonic() - started < 5


def test_server_errors_are_retried_then_reported(
    target: Target, auth: Auth, stub: StubServer
) -> None:
    stub.script = [Step(503, {"error": "overloaded"})]
    db = on_stub(target, auth, stub)
    started = time.monotonic()
    with pytest.raises(NetworkError, match="kept failing"):
        db.get("x")
    assert len(stub.seen) == 4  # one try and three retries
    assert time.monotonic() - started < 5


def test_a_transient_error_is_retried_transparently(
    target: Target, auth: Auth, stub: StubServer
) -> None:
    stub.script = [
        Step(503, {"error": "busy"}),
        Step(429, {"error": "slow down"}),
        Step(200, {"v": 1}),
    ]
    assert on_stub(target, auth, stub).get("x") == {"v": 1}
    assert [s.method for s in stub.seen] == ["GET", "GET", "GET"]


def test_idempotent_writes_are_retried_after_a_timeout(
    target: Target, auth: Auth, stub: StubServer
) -> None:
    stub.script = [Step(hang=1.0), Step(200, {"a": 1})]
    on_stub(target, auth, stub, timeout=0.3).set("x", {"a": 1})
    assert [s.method for s in stub.seen] == ["PUT", "PUT"]


@pytest.mark.parametrize(
    ("call", "method"),
    [
        (lambda db: db.push("x", {"v": 1}), "POST"),
        (lambda db: db.update("", {"n": server_increment(1)}), "PATCH"),
        (lambda db: db.set_if_match("x", 1, "etag"), "PUT"),
    ],
)
def test_non_idempotent_requests_are_never_replayed(
    target: Target, auth: Auth, stub: StubServer, call: object, method: str
) -> None:
    stub.script = [Step(hang=1.0)]
    db = on_stub(target, auth, stub, timeout=0.3)
    with pytest.raises(NetworkError, match="timed out"):
        call(db)  # type: ignore[operator]
    assert [s.method for s in stub.seen] == [method]
    stub.script = [Step(503, {"error": "busy"})]
    stub.seen.clear()
    with pytest.raises(NetworkError):
        call(db)  # type: ignore[operator]
    assert len(stub.seen) == 1


def test_every_request_carries_the_id_token(target: Target, auth: Auth, stub: StubServer) -> None:
    stub.script = [Step(200, None)]
    on_stub(target, auth, stub).get("a/b")
    assert stub.seen[0].path.startswith("/a/b.json?")
    assert f"auth={auth.fresh_token()}" in stub.seen[0].path


def test_a_non_json_reply_is_a_request_error(target: Target, auth: Auth, stub: StubServer) -> None:
    stub.script = [Step(200, None)]
    db = on_stub(target, auth, stub)
    stub.server.RequestHandlerClass.do_GET = _html  # type: ignore[attr-defined]
    with pytest.raises(RequestError, match="not JSON"):
        db.get("x")


def _html(self: object) -> None:
    body = b"<html>captive portal</html>"
    self.send_response(200)  # type: ignore[attr-defined]
    self.send_header("Content-Type", "text/html")  # type: ignore[attr-defined]
    self.send_header("Content-Length", str(len(body)))  # type: ignore[attr-defined]
    self.end_headers()  # type: ignore[attr-defined]
    self.wfile.write(body)  # type: ignore[attr-defined]


def test_error_text_comes_from_the_error_body(target: Target, auth: Auth, stub: StubServer) -> None:
    stub.script = [Step(400, {"error": 'Index not defined, add ".indexOn"'})]
    with pytest.raises(RequestError) as caught:
        on_stub(target, auth, stub).get("x", order_by="age")
    assert caught.value.message == 'Index not defined, add ".indexOn"'
    assert json.loads(json.dumps(caught.value.status)) == 400
