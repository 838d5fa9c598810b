"""Server-sent event streams over real HTTP: events, queries, access, resources."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time

import pytest
import requests

from emdash_fb.emulator.idtoken import mint_id_token
from emdash_fb.emulator.server import ThreadedEmulator
from tests.support.rtdb import RawRtdb
from tests.support.sse import SseReader


def open_stream(
    raw: RawRtdb, path: str, params: dict[str, str] | None = None, token: str | None = None
) -> SseReader:
    q = {"ns": raw.ns, **(params or {})}
    headers = {}
    if token == "owner":
        headers["Authorization"] = "Bearer owner"
    elif token:
        q["auth"] = token
    return SseReader(raw.url(path), q, headers)


def test_content_type_and_initial_put(raw: RawRtdb) -> None:
    raw.put("s", {"a": 1})
    r = requests.get(
        raw.url("s"),
        params={"ns": raw.ns},
        headers={"Accept": "text/event-stream"},
        stream=True,
        timeout=5,
    )
    assert r.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    first = b""
    for chunk in r.iter_content(chunk_size=None):
        first += chunk
        if b"\n\n" in first:
            break
    assert first == b'event: put\ndata: {"path":"/","data":{"a":1}}\n\n'
    r.close()


def test_events_for_puts_patches_deletes(raw: RawRtdb) -> None:
    raw.put("s", {"a": 1})
    sse = open_stream(raw, "s")
    assert sse.next() == ("put", {"path": "/", "data": {"a": 1}})
    raw.put("s/b", {"c": 2})
    assert sse.next() == ("put", {"path": "/b", "data": {"c": 2}})
    raw.patch("s", {"a": 5, "b/c": None})
    assert sse.next() == ("patch", {"path": "/", "data": {"a": 5, "b/c": None}})
    raw.patch("s/b", {"x": 1})
    assert sse.next() == ("patch", {"path": "/b", "data": {"x": 1}})
    raw.delete("s/a")
    assert sse.next() == ("put", {"path": "/a", "data": None})
    raw.put("", {"s": {"whole": True}, "other": 1})  # a write above the stream
    assert sse.next() == ("put", {"path": "/", "data": {"whole": True}})
    raw.put("other", 2)  # beside the stream: no event
    raw.put("s/last", 1)
    assert sse.next() == ("put", {"path": "/last", "data": 1})
    sse.close()


def test_no_event_for_a_write_that_changes_nothing(raw: RawRtdb) -> None:
    raw.put("same", {"a": 1})
    sse = open_stream(raw, "same")
    sse.next()
    raw.put("same/a", 1)
    raw.put("same/b", 2)
    assert sse.next() == ("put", {"path": "/b", "data": 2})
    sse.close()


def test_keep_alive(raw: RawRtdb) -> None:
    sse = open_stream(raw, "ka")
    sse.next()
    # the session emulator sends keep-alives every second
    assert sse.next(timeout=3, skip_keepalive=False) == ("keep-alive", None)
    sse.close()


def test_query_stream(raw: RawRtdb) -> None:
    raw.set_rules({"rules": {".read": True, ".write": True, "q": {".indexOn": "n"}}})
    raw.put("q", {"a": {"n": 1}, "b": {"n": 5}, "c": {"n": 9}})
    sse = open_stream(raw, "q", {"orderBy": '"n"', "startAt": "2"})
    assert sse.next() == ("put", {"path": "/", "data": {"b": {"n": 5}, "c": {"n": 9}}})
    raw.put("q/a/n", 3)  # enters the window
    assert sse.next() == ("put", {"path": "/a", "data": {"n": 3}})
    raw.put("q/c/n", 0)  # leaves it
    assert sse.next() == ("put", {"path": "/c", "data": None})
    raw.put("q/c/n", -1)  # outside before and after: nothing
    raw.put("q/b/n", 6)  # inside before and after: the change itself, at its path
    assert sse.next() == ("put", {"path": "/b/n", "data": 6})
    raw.patch("", {"q/b/x": 1, "q/c/x": 2, "q/d": {"n": 7}, "r": 1})  # from above, across
    assert sse.next() == ("patch", {"path": "/", "data": {"b/x": 1}})
    assert sse.next() == ("put", {"path": "/d", "data": {"n": 7}})
    sse.close()


def test_limited_query_stream_keeps_its_window_and_sends_changes_at_their_paths(
    raw: RawRtdb,
) -> None:
    raw.set_rules({"rules": {".read": True, ".write": True, "q": {".indexOn": "n"}}})
    raw.put("q", {"a": {"n": 1, "t": ""}, "b": {"n": 5, "t": ""}, "c": {"n": 9, "t": ""}})
    sse = open_stream(raw, "q", {"orderBy": '"n"', "limitToLast": "2"})
    assert sse.next() == (
        "put",
        {"path": "/", "data": {"b": {"n": 5, "t": ""}, "c": {"n": 9, "t": ""}}},
    )
    raw.put("q/c/t", "more")  # a change that keeps the order: only itself
    assert sse.next() == ("put", {"path": "/c/t", "data": "more"})
    raw.put("q/a/t", "outside")  # outside the window: nothing
    raw.put("q/e", {"n": 10})  # a newcomer pushes the oldest out
    assert sse.next() == ("put", {"path": "/b", "data": None})
    assert sse.next() == ("put", {"path": "/e", "data": {"n": 10}})
    sse.close()


def test_stream_denied_at_open_and_cancel_on_rules_change(emulator, raw: RawRtdb) -> None:
    raw.set_rules({"rules": {"open": {".read": True}}})
    assert open_stream(raw, "closed").status == 401
    sse = open_stream(raw, "open")
    sse.next()
    raw.set_rules({"rules": {"open": {".read": False}}})
    assert sse.next() == ("cancel", None)
    assert sse.closed.wait(5)


def test_cancel_when_data_revokes_access(emulator, raw: RawRtdb) -> None:
    raw.set_rules(
        {
            "rules": {
                "rooms": {
                    "$r": {
                        ".read": "root.child('members').child($r).child(auth.uid).exists()",
                    }
                }
            }
        }
    )
    bob = mint_id_token(project_id=emulator.project_id, uid="bob", provider="anonymous")
    owner = raw.owner()
    owner.put("members/r1/bob", True)
    owner.put("rooms/r1/msg", "hi")
    sse = open_stream(raw, "rooms/r1", token=bob)
    assert sse.next() == ("put", {"path": "/", "data": {"msg": "hi"}})
    owner.delete("members/r1/bob")  # kicked: no event for him at rooms/r1 yet
    owner.put("rooms/r1/msg", "secret")
    assert sse.next() == ("cancel", None)
    assert sse.events.empty()


def test_cancel_without_further_writes_to_the_location(emulator, raw: RawRtdb) -> None:
    raw.set_rules({"rules": {"doc": {".read": "root.child('acl').child(auth.uid).val() === true"}}})
    bob = mint_id_token(project_id=emulator.project_id, uid="bob", provider="anonymous")
    raw.owner().put("acl/bob", True)
    sse = open_stream(raw, "doc", token=bob)
    sse.next()
    raw.owner().put("acl/bob", False)
    assert sse.next(timeout=5) == ("cancel", None)


def test_auth_revoked_when_token_expires(emulator, raw: RawRtdb) -> None:
    raw.set_rules({"rules": {".read": "auth != null"}})
    short = mint_id_token(
        project_id=emulator.project_id, uid="u", provider="anonymous", now=time.time() - 3599
    )
    sse = open_stream(raw, "x", token=short)
    sse.next()
    assert sse.next(timeout=5) == ("auth_revoked", "credential is no longer valid")
    assert sse.closed.wait(5)


def test_same_order_for_every_listener(raw: RawRtdb) -> None:
    readers = [open_stream(raw, "order") for _ in range(5)]
    for r in readers:
        r.next()
    errors: list[BaseException] = []

    def writer(tag: str) -> None:
        try:
            for i in range(40):
                raw.put(f"order/{tag}", i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    seqs = []
    for r in readers:
        seq = [r.next() for _ in range(120)]
        seqs.append(seq)
        r.close()
    assert all(s == seqs[0] for s in seqs)


def test_stalled_listener_never_blocks_writers() -> None:
    with ThreadedEmulator(buffer_limit=1024 * 1024) as emu:
        raw = RawRtdb(f"http://{emu.database_host}", "stall")
        host, port = emu.database_host.split(":")
        stalled = socket.create_connection((host, int(port)))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(
            b"GET /big.json?ns=stall HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
        )
        time.sleep(0.2)
        healthy = open_stream(raw, "big")
        healthy.next()
        payload = "x" * 50_000
        start = time.monotonic()
        for i in range(400):  # 20 MB: far more than the stalled socket and kernel buffer
            assert raw.put(f"big/{i % 10}", f"{i}{payload}").status_code == 200
        elapsed = time.monotonic() - start
        assert elapsed < 20
        got = [healthy.next() for _ in range(400)]
        assert got[-1][1]["path"] == "/9"
        # the stalled connection was dropped by the server (reset, not flushed)
        assert emu.call(lambda: len(emu.server.rtdb.active_streams)) == 1
        stalled.settimeout(5)
        with pytest.raises(ConnectionResetError):
            while stalled.recv(65536):
                pass
        stalled.close()
        healthy.close()


def test_no_leaks_over_many_listen_close_cycles(emulator, raw: RawRtdb) -> None:
    def counts() -> tuple[int, int]:
        streams = emulator.call(lambda: len(emulator.server.rtdb.active_streams))
        return threading.active_count(), streams

    raw.put("cyc", 1)
    base_threads, _ = counts()
    host, port = emulator.database_host.split(":")
    req = f"GET /cyc.json?ns={raw.ns} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n".encode()
    for _ in range(1000):
        s = socket.create_connection((host, int(port)))
        s.sendall(req)
        buf = b""
        while b"\n\n" not in buf.split(b"\r\n\r\n", 1)[-1]:
            buf += s.recv(4096)
        s.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        threads, streams = counts()
        if streams == 0:
            break
        time.sleep(0.1)
    threads, streams = counts()
    assert streams == 0
    assert threads <= base_threads + 1
    import os

    fds = len(os.listdir(f"/proc/{os.getpid()}/fd"))
    assert fds < 200


def test_stream_on_bad_query_and_bad_path_is_400(raw: RawRtdb) -> None:
    assert open_stream(raw, "x", {"orderBy": "nope"}).status == 400
    assert open_stream(raw, "a$b").status == 400


_ = (json, queue)


def test_root_multi_path_update_sends_only_what_lands_under_the_listener(raw: RawRtdb) -> None:
    big = {f"m{i}": "x" * 100 for i in range(50)}
    raw.put("s/one", {"big": big, "n": 1})
    sse = open_stream(raw, "s/one")
    sse.next()
    raw.patch("", {"s/one/n": 2, "s/one/new/deep": True, "s/two/x": 1, "elsewhere": 3})
    assert sse.next() == ("patch", {"path": "/", "data": {"n": 2, "new/deep": True}})
    raw.patch("", {"s": {"one": {"n": 3}}})  # replaces an ancestor: the whole location
    assert sse.next() == ("put", {"path": "/", "data": {"n": 3}})
    raw.patch("", {"elsewhere": 4})  # nothing under us: nothing sent
    raw.patch("s", {"one/n": 5})
    assert sse.next() == ("patch", {"path": "/", "data": {"n": 5}})
    sse.close()


def test_a_first_snapshot_bigger_than_the_limit_streams_whole_then_live_events_follow() -> None:
    """A large location streams as on production: its first snapshot never counts as
    falling behind; live events after it still do."""
    with ThreadedEmulator(buffer_limit=1024 * 1024) as emu:
        raw = RawRtdb(f"http://{emu.database_host}", "bigsnap")
        big = {f"m{i:04d}": "y" * 10_000 for i in range(300)}  # 3 MB, three times the limit
        assert raw.put("history", big).status_code == 200
        stream = open_stream(raw, "history")
        kind, first = stream.next()
        assert kind == "put" and first["path"] == "/" and len(first["data"]) == 300
        assert raw.put("history/m9999", "live").status_code == 200
        assert stream.next() == ("put", {"path": "/m9999", "data": "live"})
        assert emu.call(lambda: len(emu.server.rtdb.active_streams)) == 1
        stream.close()


def test_a_limited_window_follows_many_newcomers_exactly(raw: RawRtdb) -> None:
    """Children arriving in and out of order at a limitToLast window: what the stream
    holds is always exactly the last n, as a fresh query gives them."""
    import random

    raw.set_rules({"rules": {".read": True, ".write": True, "w": {".indexOn": "at"}}})
    raw.put("w", {f"k{i:03d}": {"at": i * 10} for i in range(50)})
    sse = open_stream(raw, "w", {"orderBy": '"at"', "limitToLast": "5"})
    _, first = sse.next()
    mirror = dict(first["data"])
    rng = random.Random(7)
    for j in range(40):
        at = rng.choice([rng.randrange(0, 500), 1000 + j * 10])  # old ones and new ones
        raw.put(f"w/n{j:03d}", {"at": at})
        expected = raw.get("w", params={"orderBy": '"at"', "limitToLast": "5"}).json()
        while mirror != expected:
            kind, event = sse.next()
            assert kind == "put"
            key = event["path"].strip("/")
            if event["data"] is None:
                mirror.pop(key, None)
            else:
                mirror[key] = event["data"]
        assert len(mirror) == 5
    sse.close()
