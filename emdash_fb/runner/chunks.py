"""Coalescing reply text into append-only chunks.

Agents emit many tiny deltas; writing each one would cost a database write
and an event per token for every member. ``ChunkWriter`` buffers them and
flushes one chunk when ``flush_bytes`` have accumulated or ``flush_interval``
has passed since the first unflushed byte, whichever comes first. Writes are
strictly sequential, so chunk keys (zero-padded sequence numbers) arrive in
order and each byte of the reply is written, and downloaded, about once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


def chunk_key(seq: int) -> str:
    return f"{seq:06d}"


class ChunkWriter:
    def __init__(
        self,
        write: Callable[[dict[str, str]], Awaitable[None]],
        *,
        flush_interval: float = 0.1,
        flush_bytes: int = 1024,
    ) -> None:
        self._write = write
        self.flush_interval = flush_interval
        self.flush_bytes = flush_bytes
        self._buffer: list[str] = []
        self._size = 0
        self._seq = 0
        self._have_data = asyncio.Event()
        self._full = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.text = ""  # everything added so far
        self.writes = 0
        self.error: BaseException | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def add(self, text: str) -> None:
        if not text:
            return
        self.text += text
        self._buffer.append(text)
        self._size += len(text.encode("utf-8"))
        self._have_data.set()
        if self._size >= self.flush_bytes:
            self._full.set()

    async def flush(self) -> None:
        """Write whatever is buffered now (used before tool events, to keep order)."""
        async with self._lock:
            if not self._buffer:
                return
            data = "".join(self._buffer)
            self._buffer.clear()
            self._size = 0
            self._have_data.clear()
            self._full.clear()
            key = chunk_key(self._seq)
            self._seq += 1
            self.writes += 1
            await self._write({key: data})

    async def _run(self) -> None:
        try:
            while not self._closing:
                await self._have_data.wait()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
                # cancellation that races its timeout.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.flush_interval):
                        await self._full.wait()
                await self.flush()
        except Exception as exc:  # a failed write ends the turn; the caller reads .error
            self.error = exc

    async def close(self) -> None:
        """Stop the timer and write the rest (no cancellation: a flush in flight completes)."""
        self._closing = True
        self._have_data.set()
        self._full.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self.error is None:
            await self.flush()
