"""The stream reader: events over real HTTP, refusals at open, silence, and linear parsing."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.firebase.client import Rtdb
from emdash_fb.firebase.errors import NetworkError, PermissionDenied, RequestError
from emdash_fb.firebase.sse import open_stream, read_events
from tests.firebase.stub_server import Step, StubServer


class Chunks:
    """Stands in for aiohttp's StreamReader: yields the given byte chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def iter_any(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def parse(chunks: list[bytes]) -> list[tuple[str, Any]]:
    async def collect() -> list[tuple[str, Any]]:
        return [ev async for ev in read_events(Chunks(chunks))]

    return asyncio.run(collect())


def split_randomly(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(data):
        n = rng.choice([1, 1, 2, 3, 7, 64])
        out.append(data[i : i + n])
        i += n
    return out


WIRE = (
    b'event: put\ndata: {"path":"/","data":{"a":1,"s":"x\\ny \xc3\xbc"}}\n\n'
    b": a comment line\n"
    b"event: keep-alive\r\ndata: null\r\n\r\n"
    b'event: patch\ndata: {"path":"/b","data":{"c/d":null}}\n\n'
    b"event: auth_revoked\ndata: credential is no longer valid\n\n"
    b"event: cancel\ndata: null\n\n"
    b"data: line one\ndata: line two\n\n"
    b"event: put\ndata: {half an event that never ends"
)
EXPECTED = [
    ("put", {"path": "/", "data": {"a": 1, "s": "x\ny ü"}}),
    ("keep-alive", None),
    ("patch", {"path": "/b", "data": {"c/d": None}}),
    ("auth_revoked", "credential is no longer valid"),
    ("cancel", None),
    ("message", "line one\nline two"),
]


@pytest.mark.parametrize("seed", range(5))
def test_events_survive_any_chunking(seed: int) -> None:
    assert parse(split_randomly(WIRE, seed)) == EXPECTED


def test_whole_and_bytewise_agree() -> None:
    assert parse([WIRE]) == EXPECTED
    assert parse([bytes([b]) for b in WIRE]) == EXPECTED


def test_malformed_json_in_a_put_is_a_network_error() -> None:
    with pytest.raises(NetworkError, match="malformed put"):
        parse([b"event: put\ndata: {nope\n\n"])


def test_parsing_is_linear_in_the_bytes() -> None:
    big = {f"k{i:07d}": "x" * 90 for i in range(80_000)}  # ~8 MB
    wire = b"event: put\ndata: " + json.dumps({"path": "/", "data": big}).encode() + b"\n\n"
    chunks = [wire[i : i + 1024] for i in range(0, len(wire), 1024)]
    started = time.perf_counter()
    events = parse(chunks)
    assert time.perf_counter() - started < 3.0  # quadratic joining would take minutes
    assert events[0][1]["data"] == big


# -- over HTTP ----------------------------------------------------------------------------


async def take(
    stream: AsyncIterator[tuple[str, Any]], n: int, skip_keep_alive: bool = True
) -> list:
    out: list[tuple[str, Any]] = []
    async for event, data in stream:
        if skip_keep_alive and event == "keep-alive":
            continue
        out.append((event, data))
        if len(out) == n:
            break
    return out


def test_stream_from_the_emulator(fb_emulator: ThreadedEmulator, db: Rtdb, base: str) -> None:
    db.set(base, {"a": 1})
    url = f"http://{fb_emulator.database_host}/{base}.json"

    async def main() -> list[tuple[str, Any]]:
        stream = open_stream(url, {"auth": db.auth.fresh_token()}, timeout=5)
        first = await take(stream, 1)
        await asyncio.to_thread(db.set, f"{base}/b", {"c": 2})
        await asyncio.to_thread(db.update, base, {"a": 5, "b/c": None})
        rest = await take(stream, 2)
        keep_alive = await take(stream, 1, skip_keep_alive=False)
        await stream.aclose()
        return first + rest + keep_alive

    assert asyncio.run(main()) == [
        ("put", {"path": "/", "data": {"a": 1}}),
        ("put", {"path": "/b", "data": {"c": 2}}),
        ("patch", {"path": "/", "data": {"a": 5, "b/c": None}}),
        ("keep-alive", None),
    ]


def test_a_large_snapshot_arrives_whole(fb_emulator: ThreadedEmulator, db: Rtdb, base: str) -> None:
    big = {f"k{i:06d}": "y" * 90 for i in range(40_000)}  # ~4 MB
    db.set(base, big)
    url = f"http://{fb_emulator.database_host}/{base}.json"

    async def main() -> tuple[float, Any]:
        started = time.perf_counter()
        stream = open_stream(url, {"auth": db.auth.fresh_token()}, timeout=10)
        [(event, data)] = await take(stream, 1)
        await stream.aclose()
        return time.perf_counter() - started, data

    elapsed, data = asyncio.run(main())
    assert data == {"path": "/", "data": big}
    assert elapsed < 5.0


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.close()


async def first_event(url: str, timeout: float = 2.0) -> tuple[str, Any]:
    stream = open_stream(url, {}, timeout=timeout)
    try:
        return await anext(aiter(stream))
    finally:
        await stream.aclose()


@pytest.mark.parametrize(
    ("step", "error", "text"),
    [
        (
            Step(401, {"error": "Permission denied"}),
            PermissionDenied,
            "permission denied: Permission denied",
        ),
        (Step(400, {"error": "Invalid path"}), RequestError, "Invalid path"),
        (Step(503, {"error": "busy"}), NetworkError, "answered 503: busy"),
        (Step(200, {"not": "a stream"}), NetworkError, "did not answer with an event stream"),
    ],
)
def test_refusals_at_open(stub: StubServer, step: Step, error: type, text: str) -> None:
    stub.script = [step]
    with pytest.raises(error) as caught:
        asyncio.run(first_event(f"{stub.url}/x.json"))
    assert text in str(caught.value)


def test_silence_is_a_network_error(stub: StubServer) -> None:
    stub.script = [Step(stream_silence=True)]
    started = time.monotonic()
    with pytest.raises(NetworkError, match="no data for 0.5s"):
        asyncio.run(first_event(f"{stub.url}/x.json", timeout=0.5))
    assert time.monotonic() - started < 3


def test_unreachable_is_a_network_error() -> None:
    with pytest.raises(NetworkError, match="connection failed"):
        asyncio.run(first_event("http://127.0.0.1:9/x.json"))
