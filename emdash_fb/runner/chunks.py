"""Coalescing reply text into append-only chunks.

Agents emit many tiny deltas; writing each one would cost a database write
and an event per token for every member. ``ChunkWriter`` buffers them and
flushes one chunk when ``flush_bytes`` have accumulated, or on a timer.

The reply's very first chunk is written as soon as it exists (whatever it
holds), so members see the agent start talking at once. After it the timer
has two speeds. The first chunk of a burst (the text after a tool event) is
written ``flush_interval`` after its first byte. While text keeps
flowing, a chunk also waits until it carries ``min_chunk_bytes`` (but never
longer than ``max_delay``): every chunk event a member downloads costs ~90
bytes of stream framing, so chunks of a few words would cost more framing
than text. ``min_chunk_bytes=0`` gives a plain ``flush_interval`` cadence.

Writes are strictly sequential, so chunk keys arrive in order and each byte
of the reply is written, and downloaded, once. Keys are ``c`` and a
zero-padded sequence number: never all digits, because Firebase treats
integer-like keys (leading zeros included) as numbers, and whether REST reads
render a dense set of them as a JSON array is not documented.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


def chunk_key(seq: int) -> str:
    return f"c{seq:06d}"


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event`` at most ``seconds``."""
    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a
    # cancellation that races its timeout.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(seconds, 0.0)):
            await event.wait()


class ChunkWriter:
    def __init__(
        self,
        write: Callable[[dict[str, str]], Awaitable[None]],
        *,
        flush_interval: float = 0.1,
        flush_bytes: int = 1024,
        min_chunk_bytes: int = 128,
        max_delay: float = 0.25,
    ) -> None:
        self._write = write
        self.flush_interval = flush_interval
        self.flush_bytes = flush_bytes
        self.min_chunk_bytes = min(min_chunk_bytes, flush_bytes)
        self.max_delay = max(max_delay, flush_interval)
        self._buffer: list[str] = []
        self._size = 0
        self._seq = 0
        self._have_data = asyncio.Event()
        self._wake = asyncio.Event()  # a size threshold was crossed, or a flush from outside
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._burst_start = True  # the next chunk opens a burst: no size wait
        self.chars = 0  # characters added so far
        self.error: BaseException | None = None

    @property
    def writes(self) -> int:
        """Chunks written so far (one key each)."""
        return self._seq

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def add(self, text: str) -> None:
        if not text:
            return
        self.chars += len(text)
        self._buffer.append(text)
        before = self._size
        self._size += len(text.encode("utf-8"))
        self._have_data.set()
        if before < self.min_chunk_bytes <= self._size or before < self.flush_bytes <= self._size:
            self._wake.set()

    async def flush(self) -> None:
        """Write whatever is buffered now (before a tool event, to keep order).

        The text after it opens a new burst, so it is shown promptly.
        """
        await self._flush(opens_burst=True)
        self._wake.set()

    async def _flush(self, *, opens_burst: bool) -> None:
        async with self._lock:
            if not self._buffer:
                self._burst_start = self._burst_start or opens_burst
                return
            data = "".join(self._buffer)
            self._buffer.clear()
            self._size = 0
            self._have_data.clear()
            key = chunk_key(self._seq)
            self._seq += 1
            await self._write({key: data})
            self._burst_start = opens_burst

    def _due(self, age: float, burst: bool) -> bool:
        if self._seq == 0:
            return True  # the reply's first words: at once
        if self._size >= self.flush_bytes or age >= self.max_delay:
            return True
        return age >= self.flush_interval and (burst or self._size >= self.min_chunk_bytes)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self._closing:
                await self._have_data.wait()
                seq, born, burst = self._seq, loop.time(), self._burst_start
                while not self._closing and seq == self._seq:
                    age = loop.time() - born
                    if self._due(age, burst):
                        break
                    self._wake.clear()
                    limit = self.flush_interval if age < self.flush_interval else self.max_delay
                    await _wait(self._wake, limit - age)
                if seq == self._seq:  # else a flush from outside took the text: start over
                    await self._flush(opens_burst=False)
        except Exception as exc:  # a failed write ends the turn; the caller reads .error
            self.error = exc

    async def close(self) -> None:
        """Stop the timer and write the rest (no cancellation: a flush in flight completes)."""
        self._closing = True
        self._have_data.set()
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self.error is None:
            await self._flush(opens_burst=False)
