"""pyrebase4, unchanged, against the bundled emulator (it cannot send ?ns=)."""

from __future__ import annotations

import contextlib
import queue
import time

import pyrebase
import pytest

from emdash_fb.emulator.server import ThreadedEmulator


@pytest.fixture(scope="module")
def own_emulator():
    # pyrebase4 always lands in the default namespace, so it gets its own emulator
    with ThreadedEmulator(keep_alive_seconds=1.0) as emu:
        yield emu


@pytest.fixture
def pdb(own_emulator: ThreadedEmulator):
    fb = pyrebase.initialize_app(
        {
            "apiKey": "fake-key",
            "authDomain": "localhost",
            "databaseURL": f"http://{own_emulator.database_host}",
            "storageBucket": "",
        }
    )
    database = fb.database()
    database.child("t").remove()
    return database


def test_crud(pdb) -> None:
    pdb.child("t").child("a").set({"n": 1})
    assert pdb.child("t").child("a").get().val() == {"n": 1}
    name = pdb.child("t").child("list").push({"x": 1})["name"]
    assert len(name) == 20
    pdb.child("t").child("a").update({"m": 2})
    assert dict(pdb.child("t").child("a").get().val()) == {"n": 1, "m": 2}
    pdb.child("t").child("a").remove()
    assert pdb.child("t").child("a").get().val() is None


def test_queries(pdb) -> None:
    pdb.child("t").child("k").set({"b": 2, "a": 1, "c": 3})
    got = pdb.child("t").child("k").order_by_key().start_at("b").get()
    assert [i.key() for i in got.each()] == ["b", "c"]
    got = pdb.child("t").child("k").order_by_key().limit_to_first(1).get()
    assert [i.key() for i in got.each()] == ["a"]


def test_query_value_with_space(pdb) -> None:
    pdb.child("t").child("sp").set({"a b": 1, "c": 2})
    got = pdb.child("t").child("sp").order_by_key().equal_to("a b").get()
    assert [i.key() for i in got.each()] == ["a b"]


def test_etag_calls(pdb) -> None:
    pdb.child("t").child("e").set(1)
    got = pdb.child("t").child("e").get_etag()
    assert got["value"] == 1
    etag = got["ETag"]
    pdb.child("t").child("e").conditional_set(2, etag)
    assert pdb.child("t").child("e").get().val() == 2
    stale = pdb.child("t").child("e").conditional_set(3, etag)
    assert stale["value"] == 2 and stale["ETag"] != etag
    assert pdb.child("t").child("e").get().val() == 2
    pdb.child("t").child("e").conditional_remove(stale["ETag"])
    assert pdb.child("t").child("e").get().val() is None


# pyrebase4's own reader thread raises when its close() shuts the socket under it.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_stream(pdb) -> None:
    events: queue.Queue = queue.Queue()
    pdb.child("t").child("s").set({"a": 1})
    stream = (
        pdb.child("t").child("s").stream(lambda m: events.put((m["event"], m["path"], m["data"])))
    )
    try:
        assert events.get(timeout=5) == ("put", "/", {"a": 1})
        pdb.child("t").child("s").child("b").set(2)
        assert events.get(timeout=5) == ("put", "/b", 2)
        pdb.child("t").child("s").update({"a": 5})
        assert events.get(timeout=5) == ("patch", "/", {"a": 5})
    finally:
        # pyrebase4's close() races its own reader thread (it touches the socket
        # after urllib3 released it); that AttributeError is the client's, not ours.
        with contextlib.suppress(AttributeError):
            stream.close()
        time.sleep(0.1)
