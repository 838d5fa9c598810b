"""The fault proxy does exactly what each fault says, over real sockets.

Two kinds of upstream: a tiny HTTP server started here (to see exact bytes,
keep-alive and chunked framing) and the bundled emulator (to see what a write
or a stream really did). Every assertion is a fact (bytes, errors, database
contents, counters); timings are only ever lower bounds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import queue
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import firebase_admin
import pytest
import requests
from firebase_admin import db

from emdash_fb.emulator.server import ThreadedEmulator
from tests.support.faultproxy import (
    FaultProxy,
    HttpMessage,
    HttpStreamParser,
    Piece,
    parse_address,
)
from tests.support.rtdb import RawRtdb
from tests.support.sse import SseReader

TIMEOUT = 10.0


def _blob(n: int) -> bytes:
    return random.Random(n).randbytes(n)


def _eventually(check: Callable[[], bool], timeout: float = TIMEOUT, what: str = "") -> None:
    """Wait for a condition that has no event to wait on (re-checked every 20 ms)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.02)


# -- upstreams ------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """GET /blob/N: N seeded random bytes; GET /chunked/N: N chunks; PUT/POST/PATCH: echo."""

    protocol_version = "HTTP/1.1"
    server: _HttpUpstream

    def log_message(self, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_GET(self) -> None:
        kind, _, arg = self.path.strip("/").partition("/")
        self.server.record(self.command, self.path, b"")
        if kind == "chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(int(arg)):
                part = f"part {i};".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        self._reply(_blob(int(arg)) if kind == "blob" else self.path.encode())

    def _echo(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.record(self.command, self.path, body)
        self._reply(body)

    do_PUT = do_POST = do_PATCH = _echo

    def _reply(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _HttpUpstream(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[tuple[str, str, bytes]] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server_address[:2]
        return str(host), int(port)

    def record(self, method: str, path: str, body: bytes) -> None:
        with self.lock:
            self.requests.append((method, path, body))

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the proxy resets connections on purpose


class _Sink:
    """A raw TCP upstream: sends ``reply`` on accept, records every byte until EOF or reset."""

    def __init__(self, reply: bytes = b"") -> None:
        self.reply = reply
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        self.received = bytearray()
        self.ended_by: str | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            try:
                if self.reply:  # (an empty send would report a reset before the bytes)
                    conn.sendall(self.reply)
                while data := conn.recv(65536):
                    self.received += data
                self.ended_by = "eof"
                conn.shutdown(socket.SHUT_WR)
            except OSError as exc:
                self.ended_by = type(exc).__name__
        self.listener.close()
        self.done.set()


def _recv_all(sock: socket.socket) -> tuple[bytes, str]:
    """Everything the socket delivers, and how it ended ("eof" or the error's type)."""
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError as exc:
        return bytes(data), type(exc).__name__
    return bytes(data), "eof"


def _recv_until(sock: socket.socket, marker: bytes, data: bytes = b"") -> bytes:
    buf = bytearray(data)
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before {marker!r}")
        buf += chunk
    return bytes(buf)


def _stream_request(path: str, ns: str) -> bytes:
    return (
        f"GET /{path}.json?ns={ns} HTTP/1.1\r\nHost: db\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()


def _connect(proxy: FaultProxy) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT)
    return sock


@pytest.fixture(scope="module")
def upstream() -> Iterator[_HttpUpstream]:
    server = _HttpUpstream()
    server.thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: _HttpUpstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.address, seed=1) as p:
        yield p


@pytest.fixture
def emu_proxy(emulator: ThreadedEmulator) -> Iterator[FaultProxy]:
    with FaultProxy.in_front_of(emulator.database_host, seed=1) as p:
        yield p


@pytest.fixture
def direct(emulator: ThreadedEmulator, ns_name: str) -> RawRtdb:
    return RawRtdb(f"http://{emulator.database_host}", ns_name)


@pytest.fixture
def through(emu_proxy: FaultProxy, ns_name: str) -> Iterator[RawRtdb]:
    rtdb = RawRtdb(f"http://{emu_proxy.address}", ns_name)
    yield rtdb
    rtdb.http.close()


# -- pass-through ---------------------------------------------------------------------


def test_large_bodies_pass_byte_exact_both_ways(upstream: _HttpUpstream, proxy: FaultProxy) -> None:
    with requests.Session() as http:
        down = http.get(f"http://{proxy.address}/blob/5000000", timeout=TIMEOUT)
        assert down.content == _blob(5_000_000)
        body = _blob(5_000_001)
        up = http.post(f"http://{proxy.address}/echo", data=body, timeout=TIMEOUT)
        assert up.content == body
    assert upstream.requests[-1] == ("POST", "/echo", body)
    assert proxy.address == f"127.0.0.1:{proxy.port}"


def test_bytes_that_are_not_http_pass_untouched_with_half_close() -> None:
    reply = _blob(300_000)
    sink = _Sink(reply=reply)
    sent = b"\x00 not HTTP at all \r\n\r\n" + _blob(1_000_000)
    with FaultProxy(sink.address) as proxy, _connect(proxy) as sock:
        sock.sendall(sent)
        sock.shutdown(socket.SHUT_WR)
        got, ended = _recv_all(sock)
        assert sink.done.wait(TIMEOUT)
    assert bytes(sink.received) == sent and sink.ended_by == "eof"
    assert got == reply and ended == "eof"


def test_keep_alive_carries_many_requests_on_one_connection(
    upstream: _HttpUpstream, proxy: FaultProxy
) -> None:
    before = upstream.connections
    base = f"http://{proxy.address}"
    with requests.Session() as http:
        assert http.get(f"{base}/blob/10", timeout=TIMEOUT).content == _blob(10)
        assert http.post(f"{base}/a", data=b"one", timeout=TIMEOUT).content == b"one"
        chunked = http.get(f"{base}/chunked/5", timeout=TIMEOUT)
        assert chunked.content == b"".join(f"part {i};".encode() for i in range(5))
        assert http.patch(f"{base}/b", data=b"two", timeout=TIMEOUT).content == b"two"
        assert http.get(f"{base}/blob/100000", timeout=TIMEOUT).content == _blob(100_000)
        assert http.put(f"{base}/c", data=b"", timeout=TIMEOUT).content == b""
    assert upstream.connections - before == 1
    assert proxy.stats["connections"] == 1


def test_pipelined_requests_pair_with_their_own_responses(
    upstream: _HttpUpstream, proxy: FaultProxy
) -> None:
    proxy.lose_response(method="POST")
    body = b'{"n": 1}'
    pipeline = (
        b"GET /chunked/3 HTTP/1.1\r\nHost: up\r\n\r\n"
        b"POST /lost HTTP/1.1\r\nHost: up\r\nContent-Length: %d\r\n\r\n%s"
        b"GET /blob/10 HTTP/1.1\r\nHost: up\r\n\r\n" % (len(body), body)
    )
    with _connect(proxy) as sock:
        sock.sendall(pipeline)
        got, ended = _recv_all(sock)
    head, _, rest = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"chunked" in head.lower()
    assert rest.endswith(b"0\r\n\r\n") and b"HTTP/1.1" not in rest  # nothing of the POST's answer
    assert ended == "ConnectionResetError"
    assert ("POST", "/lost", body) in upstream.requests
    assert proxy.stats["lost_responses"] == 1


# -- one-shot faults ------------------------------------------------------------------


def test_lose_response_applies_the_write_and_resets_the_client(
    emu_proxy: FaultProxy, through: RawRtdb, direct: RawRtdb
) -> None:
    assert through.put("sessions/s1/meta", {"title": "a"}).status_code == 200
    emu_proxy.lose_response(method="patch", path_prefix="/sessions", count=2)
    assert through.patch("other", {"x": 1}).status_code == 200  # path doesn't match
    assert through.put("sessions/s1/meta/title", "b").status_code == 200  # method doesn't
    for title in ("c", "d"):
        with pytest.raises(requests.ConnectionError) as info:
            through.patch("sessions/s1/meta", {"title": title})
        assert "reset" in str(info.value).lower()
        assert direct.get("sessions/s1/meta").json() == {"title": title}  # it was stored
    assert through.patch("sessions/s1/meta", {"title": "e"}).status_code == 200  # count spent
    assert emu_proxy.stats["lost_responses"] == 2
    lost = [d for _, d in emu_proxy.events if d.startswith("lose_response")]
    assert len(lost) == 2 and "PATCH /sessions/s1/meta.json" in lost[0]
    assert "ns=" not in lost[0]  # queries (tokens) never reach the log


def test_cut_request_mid_body_is_not_applied(
    emu_proxy: FaultProxy, through: RawRtdb, direct: RawRtdb
) -> None:
    big = {"text": "x" * 100_000}
    emu_proxy.cut_request(after_bytes=20_000, method="PUT")
    assert through.get("sessions/s2").status_code == 200  # a GET is not cut
    with pytest.raises(requests.ConnectionError):
        through.put("sessions/s2/big", big)
    assert direct.get("sessions/s2/big").json() is None
    assert through.put("sessions/s2/big", big).status_code == 200  # count spent
    assert direct.get("sessions/s2/big").json() == big
    assert emu_proxy.stats["cut_requests"] == 1


def test_cut_request_forwards_exactly_after_bytes_then_resets_both_sides() -> None:
    sink = _Sink()
    body = _blob(5000)
    request = b"PATCH /x.json HTTP/1.1\r\nHost: up\r\nContent-Length: 5000\r\n\r\n" + body
    with FaultProxy(sink.address) as proxy, _connect(proxy) as sock:
        proxy.cut_request(after_bytes=1000, method="PATCH")
        sock.sendall(request)
        _, ended = _recv_all(sock)
        assert sink.done.wait(TIMEOUT)
    assert bytes(sink.received) == request[:1000]
    assert sink.ended_by == "ConnectionResetError" and ended == "ConnectionResetError"


def test_cut_stream_after_resets_mid_snapshot(
    emu_proxy: FaultProxy, ns_name: str, direct: RawRtdb
) -> None:
    snapshot = {"v": "x" * 200_000}
    assert direct.put("big", snapshot).status_code == 200
    emu_proxy.cut_stream_after(after_bytes=5000)
    with _connect(emu_proxy) as sock:
        sock.sendall(_stream_request("big", ns_name))
        got, ended = _recv_all(sock)
    head, _, body = got.partition(b"\r\n\r\n")
    assert b"text/event-stream" in head
    assert len(body) == 5000 and ended == "ConnectionResetError"
    assert b"event: put" in body and b"\n\n" not in body  # the snapshot event never completed
    # count spent: the next stream gets the whole snapshot
    reader = SseReader(f"http://{emu_proxy.address}/big.json", {"ns": ns_name})
    try:
        assert reader.next(timeout=TIMEOUT) == ("put", {"path": "/", "data": snapshot})
    finally:
        reader.close()
    assert emu_proxy.stats["cut_streams"] == 1


# -- immediate faults -------------------------------------------------------------------


def test_reset_streams_hits_only_event_streams(
    emu_proxy: FaultProxy, ns_name: str, through: RawRtdb
) -> None:
    assert through.put("room", {"n": 1}).status_code == 200  # a keep-alive connection
    reader = SseReader(f"http://{emu_proxy.address}/room.json", {"ns": ns_name})
    raw = _connect(emu_proxy)
    try:
        assert reader.next(timeout=TIMEOUT)[0] == "put"
        raw.sendall(_stream_request("room", ns_name))
        _recv_until(raw, b"event: put")
        assert emu_proxy.stream_connections() == 2
        connections = emu_proxy.stats["connections"]
        assert emu_proxy.reset_streams() == 2
        assert _recv_all(raw)[1] == "ConnectionResetError"
        assert reader.closed.wait(TIMEOUT)
        # the plain connection was untouched: the next request reuses it
        assert through.get("room").json() == {"n": 1}
        assert emu_proxy.stats["connections"] == connections
        assert emu_proxy.stats["stream_resets"] == 2 and emu_proxy.stats["resets"] == 0
        assert emu_proxy.reset_all() == 1  # now it goes too
        assert emu_proxy.stats["resets"] == 1 and emu_proxy.open_connections() == 0
    finally:
        raw.close()
        reader.close()


def test_reset_all_is_a_real_rst_on_both_sides() -> None:
    sink = _Sink(reply=b"hello")
    with FaultProxy(sink.address) as proxy, _connect(proxy) as sock:
        assert _recv_until(sock, b"hello") == b"hello"
        assert proxy.reset_all() == 1
        assert _recv_all(sock)[1] == "ConnectionResetError"
        assert sink.done.wait(TIMEOUT) and sink.ended_by == "ConnectionResetError"
        assert proxy.stats["resets"] == 1 and proxy.open_connections() == 0


# -- lasting conditions ----------------------------------------------------------------


def test_stall_holds_stream_and_writes_then_delivers_everything_in_order(
    emu_proxy: FaultProxy, ns_name: str, through: RawRtdb, direct: RawRtdb
) -> None:
    assert through.put("chat", {"a": 1}).status_code == 200
    reader = SseReader(f"http://{emu_proxy.address}/chat.json", {"ns": ns_name})
    try:
        assert reader.next(timeout=TIMEOUT) == ("put", {"path": "/", "data": {"a": 1}})
        emu_proxy.stall()
        assert direct.put("chat/b", 2).status_code == 200  # its event is held by the proxy
        results: queue.Queue[int] = queue.Queue()
        writer = threading.Thread(
            target=lambda: results.put(through.put("chat/c", 3).status_code), daemon=True
        )
        writer.start()
        with pytest.raises(queue.Empty):
            reader.next(timeout=0.5)  # (a keep-alive sent just before the stall may still land)
        assert results.empty()
        assert direct.get("chat/c").json() is None  # the write is held, not sent
        emu_proxy.unstall()
        assert results.get(timeout=TIMEOUT) == 200
        assert reader.next(timeout=TIMEOUT) == ("put", {"path": "/b", "data": 2})
        assert reader.next(timeout=TIMEOUT) == ("put", {"path": "/c", "data": 3})
        emu_proxy.stall(0.3)  # ends by itself
        assert through.get("chat").json() == {"a": 1, "b": 2, "c": 3}
        assert emu_proxy.stats["stalls"] == 2
        assert [d for _, d in emu_proxy.events][-1] == "stall ended"
    finally:
        reader.close()


def test_stall_holds_a_large_body_without_losing_a_byte(proxy: FaultProxy) -> None:
    body = _blob(3_000_000)
    results: queue.Queue[bytes] = queue.Queue()
    proxy.stall()

    def post() -> None:
        with requests.Session() as http:
            results.put(http.post(f"http://{proxy.address}/big", data=body, timeout=30).content)

    threading.Thread(target=post, daemon=True).start()
    with pytest.raises(queue.Empty):
        results.get(timeout=0.5)
    proxy.unstall()
    assert results.get(timeout=TIMEOUT) == body


def test_latency_delays_each_direction_and_keeps_order(proxy: FaultProxy) -> None:
    base = f"http://{proxy.address}"
    with requests.Session() as http:
        proxy.set_latency(150)
        started = time.monotonic()
        assert http.get(f"{base}/blob/1000", timeout=TIMEOUT).content == _blob(1000)
        assert time.monotonic() - started >= 0.3  # 150 ms there, 150 ms back
        proxy.set_latency(2, jitter_ms=8)  # jitter never reorders chunks
        body = _blob(3_000_000)
        assert http.post(f"{base}/echo", data=body, timeout=30).content == body
        proxy.set_latency(0)
        assert http.get(f"{base}/blob/10", timeout=TIMEOUT).content == _blob(10)


def test_refuse_resets_new_connections_and_spares_open_ones(proxy: FaultProxy) -> None:
    url = f"http://{proxy.address}/blob/10"
    with requests.Session() as old, requests.Session() as new:
        assert old.get(url, timeout=TIMEOUT).content == _blob(10)
        proxy.refuse()
        with pytest.raises(requests.ConnectionError):
            new.get(url, timeout=TIMEOUT)
        assert old.get(url, timeout=TIMEOUT).content == _blob(10)  # same connection
        assert proxy.stats["connections"] == 1 and proxy.stats["refused"] == 1
        proxy.refuse(False)
        assert new.get(url, timeout=TIMEOUT).content == _blob(10)


def test_set_upstream_after_the_emulator_restarts_on_another_port(ns_name: str) -> None:
    with ThreadedEmulator(keep_alive_seconds=1.0) as first:
        proxy = FaultProxy.in_front_of(first.database_host).start()
        through = RawRtdb(f"http://{proxy.address}", ns_name)
        assert through.put("v", 1).status_code == 200
    through.http.close()
    try:
        with pytest.raises(requests.ConnectionError):  # the database went away
            through.get("v")  # (a new connection: the old one was closed)
        assert proxy.stats["upstream_failures"] == 1
        with ThreadedEmulator(keep_alive_seconds=1.0) as second:
            assert RawRtdb(f"http://{second.database_host}", ns_name).put("v", 2).ok
            proxy.set_upstream(parse_address(second.database_host))
            assert through.get("v").json() == 2
            assert proxy.upstream == parse_address(second.database_host)
    finally:
        through.http.close()
        proxy.stop()


# -- chaos ------------------------------------------------------------------------------


def _chaos_stalls(seed: int, n: int, upstream: tuple[str, int]) -> list[str]:
    with FaultProxy(upstream, seed=seed) as proxy:
        proxy.chaos(stall_per_s=100, stall_s=(0.001, 0.02))
        _eventually(lambda: proxy.stats["stalls"] >= n, what="chaos stalls")
        proxy.calm()
        assert not proxy.chaos_active
        return [d for _, d in proxy.events if d.startswith("chaos stall")][:n]


def test_chaos_schedule_is_deterministic_with_a_seed(upstream: _HttpUpstream) -> None:
    first = _chaos_stalls(7, 6, upstream.address)
    assert first == _chaos_stalls(7, 6, upstream.address)
    assert first != _chaos_stalls(8, 6, upstream.address)


def test_chaos_resets_and_loses_responses_until_calm(upstream: _HttpUpstream) -> None:
    with FaultProxy(upstream.address, seed=3) as proxy:
        with _connect(proxy) as sock:
            proxy.chaos(resets_per_s=20)
            assert _recv_all(sock)[1] == "ConnectionResetError"
        assert proxy.stats["resets"] >= 1
        assert any(d.startswith("chaos reset") for _, d in proxy.events)

        proxy.chaos(lost_responses_per_s=50)  # replaces the resets
        lost = None
        deadline = time.monotonic() + TIMEOUT
        while lost is None and time.monotonic() < deadline:
            payload = uuid.uuid4().bytes
            try:
                requests.post(f"http://{proxy.address}/w", data=payload, timeout=TIMEOUT)
            except requests.ConnectionError:
                lost = payload
        assert lost is not None and ("POST", "/w", lost) in upstream.requests
        assert any(d.startswith("lose_response (chaos)") for _, d in proxy.events)
        proxy.calm()
        assert not proxy.chaos_active
        resets = proxy.stats["resets"]
        with requests.Session() as http:  # calm: nothing more happens
            for _ in range(5):
                assert http.post(f"http://{proxy.address}/w", data=b"ok", timeout=TIMEOUT).ok
        assert proxy.stats["resets"] == resets


# -- real clients and housekeeping ----------------------------------------------------


def test_firebase_admin_through_the_emulator_host_variable(
    emu_proxy: FaultProxy,
    ns_name: str,
    direct: RawRtdb,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FIREBASE_DATABASE_EMULATOR_HOST", emu_proxy.address)
    app = firebase_admin.initialize_app(
        options={"databaseURL": f"https://{ns_name}.firebaseio.com"},
        name=f"proxy-{uuid.uuid4().hex}",
    )
    try:
        ref = db.reference("/runners/r1", app=app)
        ref.set({"beat": 1})
        assert direct.get("runners/r1").json() == {"beat": 1}
        # firebase-admin retries a read error once: one lost answer is hidden...
        emu_proxy.lose_response(method="PUT")
        ref.set({"beat": 2})
        assert emu_proxy.stats["lost_responses"] == 1
        # ...two are not, though the write was stored
        emu_proxy.lose_response(method="PUT", count=2)
        with pytest.raises(firebase_admin.exceptions.FirebaseError):
            ref.set({"beat": 3})
        assert direct.get("runners/r1").json() == {"beat": 3}
        assert emu_proxy.stats["lost_responses"] == 3
    finally:
        firebase_admin.delete_app(app)


def test_aiohttp_sees_a_cut_snapshot_and_a_lost_answer_as_errors(
    emu_proxy: FaultProxy, ns_name: str, direct: RawRtdb
) -> None:
    """aiohttp (what our listener streams with) never mistakes a cut body for a whole one."""
    snapshot = {"v": "y" * 100_000}
    assert direct.put("snap", snapshot).ok
    base, params = f"http://{emu_proxy.address}", {"ns": ns_name}

    async def run() -> tuple[bytes, BaseException | None, BaseException | None]:
        emu_proxy.cut_stream_after(after_bytes=3000)
        emu_proxy.lose_response(method="PATCH")
        got, stream_error, write_error = bytearray(), None, None
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as http:
            headers = {"Accept": "text/event-stream"}
            async with http.get(f"{base}/snap.json", params=params, headers=headers) as resp:
                try:
                    async for chunk in resp.content.iter_any():
                        got += chunk
                except aiohttp.ClientError as exc:
                    stream_error = exc
            try:
                await http.patch(f"{base}/snap.json", params=params, json={"w": 1})
            except aiohttp.ClientError as exc:
                write_error = exc
        return bytes(got), stream_error, write_error

    got, stream_error, write_error = asyncio.run(run())
    assert stream_error is not None and got.startswith(b"event: put") and len(got) < 3000
    assert write_error is not None
    assert direct.get("snap/w").json() == 1
    assert emu_proxy.stats["cut_streams"] == 1 and emu_proxy.stats["lost_responses"] == 1


def test_controls_are_safe_from_many_threads(proxy: FaultProxy) -> None:
    errors: list[BaseException] = []

    def poke(i: int) -> None:
        try:
            for j in range(30):
                proxy.set_latency(j % 2)
                proxy.stall(0.01)
                proxy.reset_all()
                proxy.refuse(j % 3 == 0)
                proxy.unstall()
                assert json.dumps(proxy.stats) and isinstance(proxy.events, list)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=poke, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT)
    assert not errors and not any(t.is_alive() for t in threads)
    proxy.refuse(False)
    proxy.unstall()
    proxy.set_latency(0)
    with requests.Session() as http:
        assert http.get(f"http://{proxy.address}/blob/10", timeout=TIMEOUT).content == _blob(10)


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_stop_leaves_no_threads_or_sockets(upstream: _HttpUpstream) -> None:
    threads, fds = threading.active_count(), _fds()
    for i in range(100):
        busy = i % 4 == 0
        with FaultProxy(upstream.address, seed=i) as proxy:
            if busy:
                sock = _connect(proxy)  # still open when the proxy stops
                sock.sendall(b"GET /blob/10 HTTP/1.1\r\nHost: up\r\n\r\n")
                _recv_until(sock, _blob(10))
                proxy.stall()
                proxy.set_latency(5)
                proxy.chaos(resets_per_s=0.1)
        if busy:
            assert _recv_all(sock)[0] == b""  # stop() closed it
            sock.close()
    with pytest.raises(ConnectionRefusedError):  # the port is released
        socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT).close()
    assert not [t for t in threading.enumerate() if t.name.startswith("faultproxy")]
    # the upstream's handler threads end as their (closed) connections do
    _eventually(lambda: threading.active_count() <= threads, what="threads to end")
    _eventually(lambda: _fds() <= fds, what="sockets to close")


def test_stop_is_idempotent_and_start_once() -> None:
    proxy = FaultProxy(("127.0.0.1", 9))
    proxy.refuse()  # configuring before start is fine
    with proxy:
        assert proxy.port > 0
        with pytest.raises(RuntimeError):
            proxy.start()
    proxy.stop()
    with pytest.raises(ValueError):
        FaultProxy(("127.0.0.1", 9), host="0.0.0.0")
    assert parse_address("[::1]:9000") == ("::1", 9000)
    assert parse_address("127.0.0.1:80") == ("127.0.0.1", 80)


def _parse(parser: HttpStreamParser, data: bytes, cuts: list[int]) -> list[tuple[str, str, bytes]]:
    pieces: list[Piece] = []
    for a, b in itertools.pairwise([0, *cuts, len(data)]):
        pieces += parser.feed(data[a:b])
    pieces += parser.finish()
    out: list[tuple[str, str, bytes]] = []
    for p in pieces:  # merge what one feed() can't know was contiguous
        label = p.message.describe() if p.message else "-"
        if out and p.kind == "body" and out[-1][0] == "body" and out[-1][1] == label:
            out[-1] = ("body", label, out[-1][2] + p.data)
        else:
            out.append((p.kind, label, p.data))
    return out


def test_http_framing_is_found_across_any_read_boundaries() -> None:
    """The parser the faults aim with, fed the same bytes split every possible way."""
    requests_ = [HttpMessage("", {}, method="GET", path=f"/{i}") for i in range(4)]
    wire = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=1\r\nabcd\r\n0\r\nT: 1\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
        b"\r\n10\r\nevent: put\ndata:\r\n"
    )
    expected = None
    rng = random.Random(5)
    splits = [[], list(range(1, len(wire)))] + [
        sorted(rng.sample(range(1, len(wire)), k)) for k in (1, 3, 10, 40) for _ in range(20)
    ]
    for cuts in splits:
        pending = list(requests_)
        parser = HttpStreamParser("response", pair=lambda p=pending: p.pop(0) if p else None)
        got = _parse(parser, wire, cuts)
        assert b"".join(data for _, _, data in got) == wire
        expected = expected or got
        assert got == expected, cuts
    assert expected is not None
    kinds = [(kind, label) for kind, label, _ in expected]
    assert kinds == [
        ("head", "100"),
        ("end", "100"),
        ("head", "200 to GET /0"),
        ("body", "200 to GET /0"),
        ("end", "200 to GET /0"),
        ("head", "200 to GET /1"),
        ("body", "200 to GET /1"),
        ("end", "200 to GET /1"),
        ("head", "204 to GET /2"),
        ("end", "204 to GET /2"),
        ("head", "200 to GET /3"),
        ("body", "200 to GET /3"),
    ]


def test_requests_and_non_http_bytes_are_framed_or_passed() -> None:
    body = b'{"a": 1}'
    wire = (
        b"PATCH /s/x.json?ns=n HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
        b"\r\nPOST /t HTTP/1.1\r\nX-HTTP-Method-Override: put\r\nTransfer-Encoding: chunked\r\n"
        b"\r\n3\r\nabc\r\n0\r\n\r\n"
        b"GET /u HTTP/1.1\r\n\r\n" % (len(body), body)
    )
    got = _parse(HttpStreamParser("request"), wire, list(range(1, len(wire))))
    heads = [label for kind, label, _ in got if kind == "head"]
    assert heads == ["PATCH /s/x.json", "PUT /t", "GET /u"]
    assert b"".join(data for _, _, data in got) == wire
    for junk in (b"hello world\r\n\r\n", b"\x16\x03\x01 tls", b"GET /x SPDY/3\r\n\r\n"):
        parser = HttpStreamParser("request")
        assert parser.feed(junk) == [Piece("body", junk, None)] and parser.opaque
    parser = HttpStreamParser("response")
    assert parser.feed(b"hello") == [Piece("body", b"hello", None)] and parser.opaque
