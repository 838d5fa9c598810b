"""Client-made push ids, by the algorithm every Firebase SDK uses.

20 characters: 8 encode the millisecond clock, 12 are random; within one
millisecond the random part counts up, so ids made by one generator sort in
the order they were made. Writing with an id made here (``PUT``/multi-path
``PATCH``) instead of ``POST`` makes a write safe to retry.
"""

from __future__ import annotations

import secrets
import threading
import time

ALPHABET = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


class PushIds:
    """A thread-safe, monotonic push id generator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = -1
        self._rand = [0] * 12

    def __call__(self, now_ms: int | None = None) -> str:
        with self._lock:
            ms = int(time.time() * 1000) if now_ms is None else now_ms
            if ms <= self._last_ms:
                ms = self._last_ms  # same millisecond (or clock went back): count up
                i = 11
                while i >= 0 and self._rand[i] == 63:
                    self._rand[i] = 0
                    i -= 1
                if i >= 0:
                    self._rand[i] += 1
            else:
                self._rand = [secrets.randbelow(64) for _ in range(12)]
            self._last_ms = ms
            stamp = []
            for _ in range(8):
                stamp.append(ALPHABET[ms % 64])
                ms //= 64
            return "".join(reversed(stamp)) + "".join(ALPHABET[r] for r in self._rand)
