"""A fault-injecting TCP proxy in front of an emulator port, for fault and soak tests.

What it owns: one loopback listening socket, every connection accepted on it
(and the one it opens to the upstream for each), and a private asyncio loop on
a daemon thread. Bytes pass through unchanged unless a fault says otherwise.
Faults are real network faults: resets are TCP RSTs (``SO_LINGER`` 0) on both
sides, so clients fail the way they do on a real network
(``ConnectionResetError`` / ``requests.ConnectionError``), never through a
shortcut into the client or the server.

How a test uses it::

    with ThreadedEmulator(keep_alive_seconds=1.0) as emu, FaultProxy.in_front_of(
        emu.database_host  # or emu.auth_host; FaultProxy(("127.0.0.1", port)) is the same
    ) as proxy:
        env = {"FIREBASE_DATABASE_EMULATOR_HOST": proxy.address}  # clients go through it
        proxy.lose_response(method="PATCH", path_prefix="/sessions")  # next PATCH: applied, unanswered
        proxy.reset_streams()          # every SSE listener drops at once
        proxy.stall(2.0)               # a 2 s black hole; bytes are held, then delivered
        proxy.chaos(resets_per_s=0.5)  # random faults for a soak (seeded: FaultProxy(..., seed=1))
        ...                            # proxy.events says when each fault happened

Every control method may be called from any thread (it runs on the proxy's
loop and returns once applied). The proxy understands just enough HTTP/1.1 to
find where each request and response starts and ends on a keep-alive
connection (request line, Content-Length or chunked bodies; status line,
Content-Type); anything it can't parse it forwards untouched, without matching.

Differences from a direct connection worth knowing: a client reaches the proxy
even when the upstream is down, so it sees a reset right after connecting
(``stats["upstream_failures"]``) where it would have seen "connection refused";
and ``set_upstream()`` moves only connections accepted after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import random
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

try:  # Linux: bytes a socket still has to deliver (sent-but-unacked included)
    import fcntl
    import termios

    _TIOCOUTQ: int | None = getattr(termios, "TIOCOUTQ", None)
except ImportError:  # pragma: no cover - not Unix
    fcntl = None  # type: ignore[assignment]
    _TIOCOUTQ = None

T = TypeVar("T")

READ_BYTES = 64 * 1024  # one read from a socket
QUEUE_CHUNKS = 16  # chunks held per direction (latency, stalls): at most ~1 MiB
MAX_HEAD_BYTES = 64 * 1024  # a longer request/response head turns the direction opaque
MAX_LINE_BYTES = 4 * 1024  # a chunk-size or trailer line
CONNECT_TIMEOUT_S = 10.0
FLUSH_TIMEOUT_S = 1.0  # how long a cut waits for its bytes to reach the peer's kernel
CONTROL_TIMEOUT_S = 10.0

STAT_KEYS = (
    "connections",  # connections proxied (accepted and not refused)
    "resets",  # connections reset by reset_all() and chaos resets
    "stream_resets",  # connections reset by reset_streams() and chaos stream resets
    "stalls",  # stall() calls and chaos stalls
    "lost_responses",
    "cut_requests",
    "cut_streams",
    "refused",  # connections accepted and reset while refuse() was on
    "upstream_failures",  # connections reset because the upstream could not be reached
)


# -- HTTP/1.x framing ------------------------------------------------------------


@dataclass(eq=False)
class HttpMessage:
    """One request or response head, as much as the proxy needs of it."""

    start_line: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    method: str = ""  # requests (after X-HTTP-Method-Override)
    path: str = ""  # requests: the target's path, without the query
    status: int = 0  # responses
    request: HttpMessage | None = None  # responses: the request this one answers
    lose_response: bool = False  # requests: reset the client instead of answering
    lost_by_chaos: bool = False

    @property
    def event_stream(self) -> bool:
        return self.headers.get("content-type", "").lower().startswith("text/event-stream")

    def describe(self) -> str:
        # Never the query: it carries ID tokens (?auth=...).
        if self.method:
            return f"{self.method} {self.path}"
        answered = f" to {self.request.describe()}" if self.request else ""
        return f"{self.status}{answered}"


@dataclass
class Piece:
    """A run of bytes of one direction: a message head, body bytes, or a message's end."""

    kind: Literal["head", "body", "end"]
    data: bytes
    message: HttpMessage | None  # None for bytes outside any parsed message (opaque)


_HEAD, _BODY, _CHUNK_SIZE, _CHUNK_DATA, _TRAILER, _UNTIL_CLOSE, _OPAQUE = range(7)
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_DIGITS = re.compile(r"[0-9]+")


class HttpStreamParser:
    """Splits one direction of an HTTP/1.x connection into heads, bodies and ends.

    Heads are held until complete (so a fault can decide before a byte of one
    is forwarded); bodies pass as they come. Framing: Content-Length, chunked
    (its framing bytes count as body), no body (requests without either;
    1xx/204/304 and answers to HEAD), or until close (other responses). On
    anything unexpected the direction becomes opaque: forwarded, never matched.
    """

    def __init__(
        self,
        role: Literal["request", "response"],
        pair: Callable[[], HttpMessage | None] | None = None,
    ) -> None:
        self.role = role
        self._pair = pair
        self._state = _HEAD
        self._head = bytearray()
        self._line = bytearray()
        self._left = 0
        self._msg: HttpMessage | None = None

    @property
    def opaque(self) -> bool:
        return self._state == _OPAQUE

    def go_opaque(self) -> None:
        self._state = _OPAQUE
        self._msg = None

    def feed(self, data: bytes) -> list[Piece]:
        out: list[Piece] = []
        i, n = 0, len(data)
        while i < n:
            state = self._state
            if state in (_OPAQUE, _UNTIL_CLOSE):
                self._emit(out, data[i:])
                i = n
            elif state == _HEAD:
                i = self._feed_head(out, data, i)
            elif state in (_BODY, _CHUNK_DATA):
                take = min(self._left, n - i)
                self._emit(out, data[i : i + take])
                i += take
                self._left -= take
                if self._left == 0:
                    if state == _BODY:
                        self._end(out)
                    else:
                        self._state = _CHUNK_SIZE
            else:  # chunk-size line or trailer line
                j = data.find(b"\n", i)
                stop = n if j < 0 else j + 1
                self._line += data[i:stop]
                self._emit(out, data[i:stop])
                i = stop
                if j < 0:
                    if len(self._line) > MAX_LINE_BYTES:
                        self.go_opaque()
                    continue
                line = bytes(self._line).strip()
                self._line.clear()
                if state == _CHUNK_SIZE:
                    size = line.split(b";", 1)[0].strip()
                    if not _HEX.fullmatch(size):
                        self.go_opaque()
                    elif int(size, 16) == 0:
                        self._state = _TRAILER
                    else:
                        self._left = int(size, 16) + 2  # the data and its CRLF
                        self._state = _CHUNK_DATA
                elif not line:  # the empty line after the trailers
                    self._end(out)
        return _coalesce(out)

    def finish(self) -> list[Piece]:
        """At end of input: a held partial head goes on as opaque bytes; a close-ended body ends."""
        out: list[Piece] = []
        if self._head:
            out.append(Piece("body", bytes(self._head), None))
            self._head.clear()
        if self._state == _UNTIL_CLOSE:
            self._end(out)
        return out

    def _emit(self, out: list[Piece], data: bytes) -> None:
        if data:
            out.append(Piece("body", data, self._msg))

    def _end(self, out: list[Piece]) -> None:
        out.append(Piece("end", b"", self._msg))
        self._msg = None
        self._state = _HEAD

    def _feed_head(self, out: list[Piece], data: bytes, i: int) -> int:
        n = len(data)
        if not self._head:  # empty lines between messages are allowed; pass them on
            k = i
            while k < n and data[k] in b"\r\n":
                k += 1
            if k > i:
                out.append(Piece("body", data[i:k], None))
                i = k
            if i == n:
                return n
        old = len(self._head)
        self._head += data[i:]
        k = self._head.find(b"\r\n\r\n", max(0, old - 3))
        if k < 0:
            if len(self._head) > MAX_HEAD_BYTES or not self._could_be_head():
                out.append(Piece("body", bytes(self._head), None))
                self._head.clear()
                self.go_opaque()
            return n
        size = k + 4
        raw = bytes(self._head[:size])
        self._head.clear()
        msg = self._parse_head(raw)
        if msg is None:
            out.append(Piece("body", raw, None))
            self.go_opaque()
        else:
            self._msg = msg
            out.append(Piece("head", raw, msg))
            self._begin_body(out, msg)
        return i + size - old

    def _could_be_head(self) -> bool:
        """Whether the held bytes can still start a head (else they are not HTTP: don't hold them)."""
        line, newline, _ = bytes(self._head[: MAX_LINE_BYTES + 1]).partition(b"\n")
        if not newline and len(line) > MAX_LINE_BYTES:
            return False
        if self.role == "response":
            return line.startswith(b"HTTP/"[: len(line)])
        method, _, _ = line.partition(b" ")
        if not (method.isalpha() and method.isupper() and len(method) <= 20):
            return False
        return not newline or line.rstrip(b"\r").rsplit(b" ", 1)[-1].startswith(b"HTTP/")

    def _parse_head(self, raw: bytes) -> HttpMessage | None:
        lines = raw.decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                return None  # includes obsolete line folding: not ours to repair
            key, value = name.lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        start = lines[0]
        if self.role == "request":
            parts = start.split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/") or not parts[0].isalpha():
                return None
            method, target = parts[0].upper(), parts[1]
            override = headers.get("x-http-method-override", "")
            if method == "POST" and override.isalpha():
                method = override.upper()
            path = target.split("?", 1)[0]
            if "://" in path:  # absolute form
                path = "/" + path.split("://", 1)[1].partition("/")[2]
            return HttpMessage(start, headers, method=method, path=path)
        parts = start.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not _DIGITS.fullmatch(parts[1]):
            return None
        msg = HttpMessage(start, headers, status=int(parts[1]))
        if (msg.status >= 200 or msg.status == 101) and self._pair is not None:
            msg.request = self._pair()
        return msg

    def _begin_body(self, out: list[Piece], msg: HttpMessage) -> None:
        if self.role == "response":
            if msg.status == 101:  # switching protocols: no longer HTTP
                self.go_opaque()
                return
            no_body = msg.request is not None and msg.request.method == "HEAD"
            if msg.status < 200 or msg.status in (204, 304) or no_body:
                self._end(out)
                return
        coding = msg.headers.get("transfer-encoding")
        length = msg.headers.get("content-length")
        if coding is not None:
            if coding.lower().rsplit(",", 1)[-1].strip() == "chunked":
                self._state = _CHUNK_SIZE
            elif self.role == "response":
                self._state = _UNTIL_CLOSE
            else:
                self.go_opaque()
        elif length is not None:
            values = {v.strip() for v in length.split(",")}
            value = values.pop() if len(values) == 1 else ""
            if not _DIGITS.fullmatch(value):
                self.go_opaque()
            elif int(value) == 0:
                self._end(out)
            else:
                self._left = int(value)
                self._state = _BODY
        elif self.role == "response":
            self._state = _UNTIL_CLOSE
        else:
            self._end(out)


def _coalesce(pieces: list[Piece]) -> list[Piece]:
    out: list[Piece] = []
    for piece in pieces:
        last = out[-1] if out else None
        if (
            last is not None
            and piece.kind == "body"
            and last.kind == "body"
            and last.message is piece.message
        ):
            last.data += piece.data
        else:
            out.append(piece)
    return out


# -- sockets -----------------------------------------------------------------------


def _abort_with_rst(transport: asyncio.BaseTransport) -> None:
    """Drop a connection now with a TCP RST, discarding whatever is still buffered."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()  # type: ignore[attr-defined]


def _unsent_bytes(transport: asyncio.BaseTransport) -> int:
    sock = transport.get_extra_info("socket")
    if sock is None or fcntl is None or _TIOCOUTQ is None:
        return 0
    try:
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0"))[0])
    except (OSError, ValueError):
        return 0


async def _flush(writer: asyncio.StreamWriter) -> None:
    """Wait (bounded) until what was written reached the peer, so a reset after it can't eat it.

    An RST discards what the kernel still holds unsent; bytes the peer's kernel
    received stay readable there before the reset is reported.
    """
    transport = writer.transport
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        transport.set_write_buffer_limits(high=0)  # drain() now waits for an empty buffer
        await asyncio.wait_for(writer.drain(), FLUSH_TIMEOUT_S)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FLUSH_TIMEOUT_S
    pause = 0.001
    while _unsent_bytes(transport) > 0 and loop.time() < deadline:
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)


# -- one proxied connection --------------------------------------------------------


@dataclass
class _Chunk:
    data: bytes
    due: float  # loop time before which it must not be forwarded (latency)


@dataclass
class _Reset:
    stat: str | None  # None: passing on a reset the peer did, not a fault of ours
    description: str


class _Eof:
    pass


_EOF = _Eof()
_Item = _Chunk | _Reset | _Eof


class _Pipe:
    """One direction: a reader task parses and decides, a writer task delays, holds and writes."""

    def __init__(
        self,
        conn: _Connection,
        role: Literal["request", "response"],
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
    ) -> None:
        self.conn = conn
        self.proxy = conn.proxy
        self.role = role
        self.src = src
        self.dst = dst
        self.parser = HttpStreamParser(role, conn.pair if role == "response" else None)
        self.queue: asyncio.Queue[_Item] = asyncio.Queue(QUEUE_CHUNKS)
        self.cut_left: int | None = None  # bytes of the current message still to forward
        self.cut_stat = ""
        self.cut_description = ""
        self.done = False

    async def read_loop(self) -> None:
        try:
            while True:
                data = await self.src.read(READ_BYTES)
                pieces = self.parser.feed(data) if data else self.parser.finish()
                out = bytearray()
                stop: _Reset | None = None
                for piece in pieces:
                    stop = self._on_piece(piece, out)
                    if stop is not None:
                        break
                if out:
                    await self.queue.put(_Chunk(bytes(out), self.proxy._due()))
                if stop is not None:
                    await self.queue.put(stop)
                    return
                if not data:
                    await self.queue.put(_EOF)
                    return
        except (ConnectionError, OSError):
            await self.queue.put(_Reset(None, "peer reset"))

    async def write_loop(self) -> None:
        proxy = self.proxy
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, _Chunk):
                    delay = item.due - asyncio.get_running_loop().time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await proxy._flowing.wait()  # a stall holds every byte, EOF and reset
                if isinstance(item, _Chunk):
                    self.dst.write(item.data)
                    await self.dst.drain()
                elif isinstance(item, _Eof):
                    if self.dst.can_write_eof():
                        self.dst.write_eof()
                    self.done = True
                    self.conn.half_closed()
                    return
                else:
                    if item.stat is not None:
                        await _flush(self.dst)
                    self.conn.reset(item.stat, item.description)
                    return
        except (ConnectionError, OSError):
            self.conn.reset(None, "write failed")

    # -- deciding faults, in the order bytes arrive ----------------------------------

    def _on_piece(self, piece: Piece, out: bytearray) -> _Reset | None:
        if self.role == "request":
            return self._on_request_piece(piece, out)
        return self._on_response_piece(piece, out)

    def _on_request_piece(self, piece: Piece, out: bytearray) -> _Reset | None:
        proxy = self.proxy
        msg = piece.message
        if piece.kind == "head":
            assert msg is not None
            self.conn.pending.append(msg)
            rule = proxy._take_rule(proxy._cut_rules, msg)
            if rule is not None:
                self._arm_cut(
                    rule.after_bytes,
                    "cut_requests",
                    f"cut_request after {rule.after_bytes} B: {msg.describe()}",
                )
            else:
                lose = proxy._take_rule(proxy._lose_rules, msg)
                msg.lose_response = lose is not None
                msg.lost_by_chaos = lose is not None and lose.chaos
        elif piece.kind == "end":
            return self._cut_at_end()
        return self._forward(piece.data, out)

    def _on_response_piece(self, piece: Piece, out: bytearray) -> _Reset | None:
        proxy = self.proxy
        msg = piece.message
        if piece.kind == "head":
            assert msg is not None
            if msg.status == 101:
                self.conn.request_pipe_parser_opaque()
            req = msg.request
            if req is not None and req.lose_response:
                chaos = " (chaos)" if req.lost_by_chaos else ""
                return _Reset(
                    "lost_responses",
                    f"lose_response{chaos}: {req.describe()} on conn#{self.conn.n}, "
                    f"upstream answered {msg.status}, client reset",
                )
            out += piece.data
            if msg.event_stream:
                self.conn.streaming = True
                after = proxy._take_stream_cut()
                if after is not None:
                    self._arm_cut(
                        after, "cut_streams", f"cut_stream_after {after} B: {msg.describe()}"
                    )
                    if after == 0:
                        return self._cut_now()
            return None
        if piece.kind == "end":
            if msg is not None and msg.event_stream:
                self.conn.streaming = False
            return self._cut_at_end()
        return self._forward(piece.data, out)

    def _arm_cut(self, after: int, stat: str, description: str) -> None:
        self.cut_left = after
        self.cut_stat = stat
        self.cut_description = f"{description} on conn#{self.conn.n}"

    def _cut_now(self, suffix: str = "") -> _Reset:
        self.cut_left = None
        return _Reset(self.cut_stat, self.cut_description + suffix)

    def _cut_at_end(self) -> _Reset | None:
        # The message ended before `after_bytes`: it is cut right after its last byte.
        if self.cut_left is None:
            return None
        return self._cut_now(" (the message was shorter: cut at its end)")

    def _forward(self, data: bytes, out: bytearray) -> _Reset | None:
        left = self.cut_left
        if left is None or len(data) < left:
            out += data
            if left is not None:
                self.cut_left = left - len(data)
            return None
        out += data[:left]
        return self._cut_now()


class _Connection:
    def __init__(
        self,
        proxy: FaultProxy,
        n: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.proxy = proxy
        self.n = n
        self.client_reader = reader
        self.client_writer = writer
        self.upstream_writer: asyncio.StreamWriter | None = None
        self.pending: deque[HttpMessage] = deque()  # requests awaiting their responses
        self.streaming = False  # the current response is an event stream
        self.closed = False
        self.pipes: list[_Pipe] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.handler: asyncio.Task[object] | None = None

    def pair(self) -> HttpMessage | None:
        return self.pending.popleft() if self.pending else None

    def request_pipe_parser_opaque(self) -> None:
        for pipe in self.pipes:
            if pipe.role == "request":
                pipe.parser.go_opaque()

    async def run(self, upstream: tuple[str, int]) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(*upstream), CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            if not self.closed:
                self.proxy._record(
                    "upstream_failures",
                    f"conn#{self.n}: upstream {upstream[0]}:{upstream[1]} unreachable "
                    f"({type(exc).__name__}), client reset",
                )
                self.reset(None, "")
            return
        if self.closed:
            _abort_with_rst(writer.transport)
            return
        self.upstream_writer = writer
        self.pipes = [
            _Pipe(self, "request", self.client_reader, writer),
            _Pipe(self, "response", reader, self.client_writer),
        ]
        for pipe in self.pipes:
            self.tasks.append(asyncio.create_task(pipe.read_loop()))
            self.tasks.append(asyncio.create_task(pipe.write_loop()))
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client_writer, self.upstream_writer) if w is not None]

    def _finish(self) -> None:
        self.closed = True
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        if not self.tasks and self.handler is not None and self.handler is not current:
            self.handler.cancel()  # still connecting to the upstream
        self.proxy._conns.pop(self, None)

    def reset(self, stat: str | None, description: str) -> bool:
        """RST both sides now; ``stat`` names the fault to record (None: not a fault)."""
        if self.closed:
            return False
        for writer in self._writers():
            _abort_with_rst(writer.transport)
        self._finish()
        if stat is not None:
            self.proxy._record(stat, description)
        return True

    def half_closed(self) -> None:
        if not self.closed and all(pipe.done for pipe in self.pipes):
            for writer in self._writers():
                writer.close()
            self._finish()

    def abort(self) -> None:
        if not self.closed:
            for writer in self._writers():
                writer.transport.abort()
            self._finish()


# -- the proxy -----------------------------------------------------------------------


@dataclass
class _Rule:
    method: str | None = None
    path_prefix: str | None = None
    count: int = 1
    after_bytes: int = 0
    chaos: bool = False

    def matches(self, msg: HttpMessage) -> bool:
        if self.method is not None and msg.method != self.method:
            return False
        return self.path_prefix is None or msg.path.startswith(self.path_prefix)


@dataclass
class _Chaos:
    resets_per_s: float
    stream_resets_per_s: float
    stall_per_s: float
    stall_s: tuple[float, float]
    lost_responses_per_s: float
    kinds: list[tuple[str, float]] = field(default_factory=list)


class FaultProxy:
    """A loopback TCP proxy that injects network faults on command (see the module docstring)."""

    def __init__(
        self,
        upstream: tuple[str, int],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"FaultProxy binds loopback addresses only, not {host!r}")
        self._upstream = (upstream[0], int(upstream[1]))
        self.host = host
        self.port = port
        self.seed = seed
        self._chaos_rng = random.Random(seed)
        self._jitter_rng = random.Random(None if seed is None else f"{seed}/jitter")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._thread_id: int | None = None
        self._running = False
        self._control = threading.Lock()  # orders control calls against stop()
        self._record_lock = threading.Lock()
        self._stats = dict.fromkeys(STAT_KEYS, 0)
        self._events: list[tuple[float, str]] = []
        self._server: asyncio.Server | None = None
        self._conns: dict[_Connection, None] = {}  # insertion-ordered set
        self._ids = itertools.count(1)
        # lasting conditions
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._hand_stall = False
        self._hand_stall_timer: asyncio.TimerHandle | None = None
        self._hand_stall_pending: float | None = None  # stall(seconds) before start(): deadline
        self._chaos_stall_until = 0.0
        self._chaos_stall_timer: asyncio.TimerHandle | None = None
        self._latency_s = 0.0
        self._jitter_s = 0.0
        self._refusing = False
        # one-shot faults
        self._lose_rules: list[_Rule] = []
        self._cut_rules: list[_Rule] = []
        self._stream_cuts: list[_Rule] = []
        self._chaos_task: asyncio.Task[None] | None = None

    @classmethod
    def in_front_of(cls, address: str, *, port: int = 0, seed: int | None = None) -> FaultProxy:
        """A proxy for an upstream given as ``"host:port"`` (e.g. ``emu.database_host``)."""
        return cls(parse_address(address), port=port, seed=seed)

    # -- lifecycle -------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def upstream(self) -> tuple[str, int]:
        return self._upstream

    def start(self) -> FaultProxy:
        if self._thread is not None:
            raise RuntimeError("a FaultProxy starts once")
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        error: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, error), name="faultproxy", daemon=True
        )
        self._thread.start()
        ready.wait()
        if error:
            self._thread.join()
            raise error[0]
        return self

    def _run(self, ready: threading.Event, error: list[BaseException]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        self._thread_id = threading.get_ident()
        try:
            self._server = loop.run_until_complete(
                asyncio.start_server(self._accept, self.host, self.port)
            )
        except BaseException as exc:
            error.append(exc)
            loop.close()
            ready.set()
            return
        self.port = self._server.sockets[0].getsockname()[1]
        threading.current_thread().name = f"faultproxy-{self.port}"
        if self._hand_stall_pending is not None:
            self._hand_stall_timer = loop.call_later(
                max(0.0, self._hand_stall_pending - time.monotonic()), self._end_hand_stall
            )
            self._hand_stall_pending = None
        self._running = True
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._shutdown())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _shutdown(self) -> None:
        for timer in (self._hand_stall_timer, self._chaos_stall_timer):
            if timer is not None:
                timer.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.abort()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), CONTROL_TIMEOUT_S)

    def stop(self) -> None:
        """Close the listener and every connection, and join the thread."""
        if threading.get_ident() == self._thread_id:
            raise RuntimeError("stop() can't be called from the proxy's own loop")
        with self._control:
            thread, loop = self._thread, self._loop
            if thread is None or loop is None or not self._running:
                return
            self._running = False
            loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        up = f"{self._upstream[0]}:{self._upstream[1]}"
        return f"<FaultProxy {self.address} -> {up} conns={len(self._conns)}>"

    # -- observing -------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot of the fault counters (keys: ``STAT_KEYS``)."""
        with self._record_lock:
            return dict(self._stats)

    @property
    def events(self) -> list[tuple[float, str]]:
        """A snapshot of ``(time.monotonic(), description)`` for every fault and condition change."""
        with self._record_lock:
            return list(self._events)

    def open_connections(self) -> int:
        return self._call(lambda: len(self._conns))

    def stream_connections(self) -> int:
        """How many open connections carry an event stream now."""
        return self._call(lambda: sum(1 for c in self._conns if c.streaming))

    def _record(self, stat: str | None, description: str, n: int = 1) -> None:
        with self._record_lock:
            if stat is not None:
                self._stats[stat] += n
            self._events.append((time.monotonic(), description))

    # -- control plumbing ------------------------------------------------------------

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the proxy's loop and return its result once it has taken effect."""
        if threading.get_ident() == self._thread_id:
            return fn()
        with self._control:
            loop = self._loop
            if loop is None or not self._running:  # before start() / after stop(): no loop
                return fn()

            async def run() -> T:
                result = fn()
                await asyncio.sleep(0)  # let aborted transports close their sockets
                return result

            return asyncio.run_coroutine_threadsafe(run(), loop).result(CONTROL_TIMEOUT_S)

    def _live_loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop if self._running else None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            peer = writer.get_extra_info("peername")
            _abort_with_rst(writer.transport)
            self._record("refused", f"refused a connection from {_fmt_addr(peer)}")
            return
        conn = _Connection(self, next(self._ids), reader, writer)
        conn.handler = asyncio.current_task()
        self._conns[conn] = None
        with self._record_lock:
            self._stats["connections"] += 1
        with contextlib.suppress(asyncio.CancelledError):
            await conn.run(self._upstream)

    def _due(self) -> float:
        if not self._latency_s and not self._jitter_s:
            return 0.0
        assert self._loop is not None
        jitter = self._jitter_rng.uniform(0.0, self._jitter_s) if self._jitter_s else 0.0
        return self._loop.time() + self._latency_s + jitter

    def _take_rule(self, rules: list[_Rule], msg: HttpMessage) -> _Rule | None:
        for rule in rules:
            if rule.matches(msg):
                rule.count -= 1
                if rule.count <= 0:
                    rules.remove(rule)
                return rule
        return None

    def _take_stream_cut(self) -> int | None:
        if not self._stream_cuts:
            return None
        rule = self._stream_cuts[0]
        rule.count -= 1
        if rule.count <= 0:
            self._stream_cuts.pop(0)
        return rule.after_bytes

    # -- immediate faults ------------------------------------------------------------

    def reset_all(self) -> int:
        """RST both sides of every open connection now; returns how many were hit."""
        return self._call(lambda: self._reset_where(lambda c: True, "resets", "reset_all"))

    def reset_streams(self) -> int:
        """RST only the connections whose current response is ``text/event-stream``."""
        return self._call(
            lambda: self._reset_where(lambda c: c.streaming, "stream_resets", "reset_streams")
        )

    def _reset_where(self, which: Callable[[_Connection], bool], stat: str, name: str) -> int:
        hit = [c for c in list(self._conns) if which(c) and c.reset(None, "")]
        ids = ", ".join(f"conn#{c.n}" for c in hit) or "none open"
        self._record(stat, f"{name}: {len(hit)} connection(s) ({ids})", len(hit))
        return len(hit)

    # -- lasting conditions ----------------------------------------------------------

    def stall(self, seconds: float | None = None) -> None:
        """Stop forwarding both ways on every connection (bytes are held) until unstall() or ``seconds``.

        New connections are still accepted and connected upstream (a black
        hole, not a refusal); their bytes are held like everyone's. At most
        ~1 MiB per direction is held in the proxy, then TCP backpressure.
        """
        if seconds is not None and seconds < 0:
            raise ValueError("seconds must be >= 0")

        def apply() -> None:
            if self._hand_stall_timer is not None:
                self._hand_stall_timer.cancel()
                self._hand_stall_timer = None
            self._hand_stall_pending = None
            self._hand_stall = True
            loop = self._live_loop()
            if seconds is not None:
                if loop is not None:
                    self._hand_stall_timer = loop.call_later(seconds, self._end_hand_stall)
                else:
                    self._hand_stall_pending = time.monotonic() + seconds
            self._update_flow()
            until = "until unstall()" if seconds is None else f"{seconds:.3f}s"
            self._record("stalls", f"stall {until}")

        self._call(apply)

    def _end_hand_stall(self) -> None:
        self._hand_stall_timer = None
        if self._hand_stall:
            self._hand_stall = False
            self._update_flow()
            self._record(None, "stall ended")

    def unstall(self) -> None:
        """End every stall (by hand or by chaos); held bytes go on in order."""

        def apply() -> None:
            was = not self._flowing.is_set()
            for timer in (self._hand_stall_timer, self._chaos_stall_timer):
                if timer is not None:
                    timer.cancel()
            self._hand_stall_timer = self._chaos_stall_timer = None
            self._hand_stall_pending = None
            self._hand_stall = False
            self._chaos_stall_until = 0.0
            self._update_flow()
            if was:
                self._record(None, "unstall")

        self._call(apply)

    def _update_flow(self) -> None:
        if self._hand_stall or self._chaos_stall_until:
            self._flowing.clear()
        else:
            self._flowing.set()

    def set_latency(self, ms: float, jitter_ms: float = 0.0) -> None:
        """Delay every chunk read from now on by ``ms`` plus uniform [0, ``jitter_ms``] (order kept)."""
        if ms < 0 or jitter_ms < 0:
            raise ValueError("latency and jitter must be >= 0")

        def apply() -> None:
            self._latency_s, self._jitter_s = ms / 1000.0, jitter_ms / 1000.0
            self._record(None, f"latency {ms:g} ms + [0, {jitter_ms:g}] ms jitter")

        self._call(apply)

    def refuse(self, on: bool = True) -> None:
        """While on, new connections are accepted and reset at once; open ones are untouched."""

        def apply() -> None:
            if self._refusing != on:
                self._refusing = on
                self._record(None, "refuse on" if on else "refuse off")

        self._call(apply)

    def set_upstream(self, upstream: tuple[str, int]) -> None:
        """Send connections accepted from now on to ``upstream`` (open ones keep theirs)."""
        target = (upstream[0], int(upstream[1]))

        def apply() -> None:
            self._upstream = target
            self._record(None, f"upstream set to {target[0]}:{target[1]}")

        self._call(apply)

    # -- one-shot faults -----------------------------------------------------------------

    def lose_response(
        self, *, method: str | None = None, path_prefix: str | None = None, count: int = 1
    ) -> None:
        """The next ``count`` matching requests reach the upstream whole; their responses don't.

        The client's connection (and the upstream's) is reset when the response
        head arrives, before any byte of it is forwarded: the write happened,
        the client never learns it.
        """
        rule = _Rule(method.upper() if method else None, path_prefix, _positive(count))
        self._call(lambda: self._lose_rules.append(rule))

    def cut_request(self, *, after_bytes: int, method: str | None = None, count: int = 1) -> None:
        """Reset both sides once ``after_bytes`` bytes of the next matching request were forwarded.

        Bytes count from the request line; if the request is shorter, it is cut
        right after its last byte (and the upstream may then have applied it).
        """
        if after_bytes < 0:
            raise ValueError("after_bytes must be >= 0")
        rule = _Rule(method.upper() if method else None, None, _positive(count), after_bytes)
        self._call(lambda: self._cut_rules.append(rule))

    def cut_stream_after(self, *, after_bytes: int, count: int = 1) -> None:
        """Reset the next event-stream response after ``after_bytes`` bytes of its body reached the client.

        Body bytes are counted as sent on the wire after the response head
        (chunked framing included); the head itself always passes.
        """
        if after_bytes < 0:
            raise ValueError("after_bytes must be >= 0")
        rule = _Rule(count=_positive(count), after_bytes=after_bytes)
        self._call(lambda: self._stream_cuts.append(rule))

    # -- chaos ---------------------------------------------------------------------------

    def chaos(
        self,
        *,
        resets_per_s: float = 0.0,
        stream_resets_per_s: float = 0.0,
        stall_per_s: float = 0.0,
        stall_s: tuple[float, float] = (0.5, 2.0),
        lost_responses_per_s: float = 0.0,
    ) -> None:
        """Inject random faults as Poisson processes at the given rates (replaces earlier chaos).

        A reset hits one open connection, a stream reset one event-stream
        connection (none open: nothing happens), a stall holds everything for
        uniform ``stall_s`` seconds, a lost response arms ``lose_response()``
        for the next request (at most one armed at a time). With a seed, the
        schedule (times, kinds, durations, which connection by position) is
        the same every run.
        """
        rates = {
            "reset": resets_per_s,
            "stream_reset": stream_resets_per_s,
            "stall": stall_per_s,
            "lose": lost_responses_per_s,
        }
        if any(r < 0 for r in rates.values()):
            raise ValueError("rates must be >= 0")
        low, high = stall_s
        if not 0 <= low <= high:
            raise ValueError("stall_s must be (low, high) with 0 <= low <= high")
        cfg = _Chaos(
            resets_per_s,
            stream_resets_per_s,
            stall_per_s,
            (low, high),
            lost_responses_per_s,
            kinds=[(k, r) for k, r in rates.items() if r > 0],
        )

        def apply() -> None:
            self._stop_chaos()
            if cfg.kinds:
                loop = self._live_loop()
                if loop is None:
                    raise RuntimeError("chaos() needs a started proxy")
                self._chaos_task = loop.create_task(self._chaos_loop(cfg))
                self._record(None, f"chaos on: {dict(cfg.kinds)}")

        self._call(apply)

    @property
    def chaos_active(self) -> bool:
        task = self._chaos_task
        return task is not None and not task.done()

    def calm(self) -> None:
        """Stop chaos (and its armed loss and current stall); conditions set by hand stay."""

        def apply() -> None:
            if self._stop_chaos():
                self._record(None, "chaos off")

        self._call(apply)

    def _stop_chaos(self) -> bool:
        task, self._chaos_task = self._chaos_task, None
        if task is not None:
            task.cancel()
        self._lose_rules = [r for r in self._lose_rules if not r.chaos]
        if self._chaos_stall_timer is not None:
            self._chaos_stall_timer.cancel()
            self._chaos_stall_timer = None
        self._chaos_stall_until = 0.0
        self._update_flow()
        return task is not None

    async def _chaos_loop(self, cfg: _Chaos) -> None:
        rng = self._chaos_rng
        total = sum(rate for _, rate in cfg.kinds)
        while True:
            await asyncio.sleep(rng.expovariate(total))
            # Every draw is made every time, so the schedule doesn't depend on traffic.
            x, pick, duration = rng.random() * total, rng.random(), rng.uniform(*cfg.stall_s)
            kind = cfg.kinds[-1][0]
            for name, rate in cfg.kinds:
                if x < rate:
                    kind = name
                    break
                x -= rate
            if kind == "reset" or kind == "stream_reset":
                conns = [c for c in self._conns if kind == "reset" or c.streaming]
                if conns:
                    conn = conns[int(pick * len(conns))]
                    stat = "resets" if kind == "reset" else "stream_resets"
                    conn.reset(stat, f"chaos {kind.replace('_', ' ')}: conn#{conn.n}")
            elif kind == "stall":
                self._chaos_stall(duration)
            elif not any(r.chaos for r in self._lose_rules):
                self._lose_rules.append(_Rule(chaos=True))

    def _chaos_stall(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        if until > self._chaos_stall_until:
            self._chaos_stall_until = until
            if self._chaos_stall_timer is not None:
                self._chaos_stall_timer.cancel()
            self._chaos_stall_timer = loop.call_at(until, self._end_chaos_stall)
        self._update_flow()
        self._record("stalls", f"chaos stall {seconds:.3f}s")

    def _end_chaos_stall(self) -> None:
        self._chaos_stall_timer = None
        self._chaos_stall_until = 0.0
        self._update_flow()


def parse_address(address: str) -> tuple[str, int]:
    """``"127.0.0.1:9000"`` / ``"[::1]:9000"`` -> ``(host, port)``."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"not host:port: {address!r}")
    return host.strip("[]"), int(port)


def _positive(count: int) -> int:
    if count < 1:
        raise ValueError("count must be >= 1")
    return count


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _fmt_addr(addr: object) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"{addr[0]}:{addr[1]}"
    return str(addr)
