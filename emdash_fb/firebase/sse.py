"""Reading an RTDB event stream: async, line-based, linear in the bytes received.

pyrebase4 and firebase-admin read server-sent events one character at a time
and re-scan their whole buffer for an event boundary after each one, so a
listener's first event (the full snapshot) costs time quadratic in its size:
``benchmarks/stream_reader_bench.py`` measures pyrebase4 at about 19 s for a
64 KB snapshot, against milliseconds here for 1 MB. This reader takes the
response in whatever chunks the socket delivers, finds line ends once per
byte, joins a line's pieces only when the line is complete, and parses each
event's JSON once.

Wire format (RTDB REST streaming): ``event: put|patch`` + ``data: {"path", "data"}``,
``keep-alive`` and ``cancel`` with ``data: null``, ``auth_revoked`` with a plain
text reason. Lines end in ``\\n`` (a trailing ``\\r`` is dropped).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp

from .errors import NetworkError, PermissionDenied, RequestError
from .transport import error_message

HEADERS = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
JSON_EVENTS = frozenset({"put", "patch"})


class ByteChunks(Protocol):
    """What the parser reads: ``aiohttp.StreamReader`` or anything with ``iter_any()``."""

    def iter_any(self) -> AsyncIterator[bytes]: ...


async def open_stream(
    url: str,
    params: Mapping[str, str],
    *,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    connect_timeout: float | None = None,
) -> AsyncIterator[tuple[str, Any]]:
    """Stream ``url`` and yield ``(event, data)`` until the server ends the stream.

    ``timeout`` bounds any silence on the socket (no bytes at all, keep-alives
    included) and, unless ``connect_timeout`` is given, connecting: past it,
    :class:`NetworkError`. A refusal at open raises :class:`PermissionDenied`
    (401), :class:`RequestError` (other 4xx) or :class:`NetworkError` (5xx,
    unreachable). Close it with ``aclose()`` (or let ``async for`` finish) to
    drop the connection.
    """
    connect = connect_timeout if connect_timeout is not None else timeout
    client_timeout = aiohttp.ClientTimeout(
        total=None, connect=connect, sock_connect=connect, sock_read=timeout
    )
    where = url.split("?", 1)[0]
    try:
        async with (
            aiohttp.ClientSession(timeout=client_timeout, auto_decompress=True) as session,
            session.get(
                url, params=dict(params), headers={**HEADERS, **(headers or {})}
            ) as response,
        ):
            await _check_response(response, where)
            async for event, data in read_events(response.content):
                yield event, data
    except (aiohttp.ClientError, TimeoutError) as exc:
        reason = f"no data for {timeout:g}s" if isinstance(exc, TimeoutError) else _reason(exc)
        raise NetworkError(f"lost the stream from the database at {where} ({reason})") from None


async def read_events(content: ByteChunks) -> AsyncIterator[tuple[str, Any]]:
    """Parse server-sent events from a byte stream (the part that must stay linear)."""
    event = b""
    data: list[bytes] = []
    async for line in _lines(content):
        if not line:
            if event or data:
                name = event.decode("utf-8", "replace") or "message"
                yield name, _decode(name, b"\n".join(data))
            event, data = b"", []
            continue
        if line[0] == 0x3A:  # ":" starts a comment
            continue
        field, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if field == b"event":
            event = value
        elif field == b"data":
            data.append(value)


async def _lines(content: ByteChunks) -> AsyncIterator[bytes]:
    pending: list[bytes] = []
    async for chunk in content.iter_any():
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                if start < len(chunk):
                    pending.append(chunk[start:])
                break
            piece = chunk[start:end]
            if pending:
                pending.append(piece)
                piece = b"".join(pending)
                pending.clear()
            yield piece[:-1] if piece.endswith(b"\r") else piece
            start = end + 1


def _decode(event: str, raw: bytes) -> Any:
    if event in JSON_EVENTS:
        try:
            return json.loads(raw)
        except ValueError:
            raise NetworkError(f"the database sent a malformed {event} event") from None
    # keep-alive / cancel carry null; auth_revoked a plain-text reason.
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode("utf-8", "replace")


async def _check_response(response: aiohttp.ClientResponse, where: str) -> None:
    if response.status == 200:
        ctype = response.headers.get("Content-Type", "")
        if not ctype.startswith("text/event-stream"):
            raise NetworkError(
                f"{where} did not answer with an event stream ({ctype or 'no type'})"
            )
        return
    message = await _error_message(response)
    if response.status == 401:
        raise PermissionDenied(f"permission denied: {message}")
    if 400 <= response.status < 500 and response.status != 429:
        raise RequestError(response.status, message)
    raise NetworkError(f"the database at {where} answered {response.status}: {message}")


async def _error_message(response: aiohttp.ClientResponse) -> str:
    try:
        text = await response.text()
    except (aiohttp.ClientError, UnicodeDecodeError, TimeoutError):
        return response.reason or f"HTTP {response.status}"
    return error_message(text) or response.reason or f"HTTP {response.status}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection failed"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "connection dropped"
    return type(exc).__name__
