"""Firebase push ids: 8 chars of millisecond time + 12 random chars, sortable."""

from __future__ import annotations

import secrets
import time

ALPHABET = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"


class PushIdGenerator:
    """Ids sort in creation order: within one millisecond the random part counts up."""

    def __init__(self) -> None:
        self._last_ms = -1
        self._last_rand = [0] * 12

    def __call__(self, now_ms: int | None = None) -> str:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        if ms <= self._last_ms:
            ms = self._last_ms  # never go backwards, keep order on clock skew
            i = 11
            while i >= 0 and self._last_rand[i] == 63:
                self._last_rand[i] = 0
                i -= 1
            if i >= 0:
                self._last_rand[i] += 1
        else:
            self._last_rand = [secrets.randbelow(64) for _ in range(12)]
        self._last_ms = ms
        stamp = []
        t = ms
        for _ in range(8):
            stamp.append(ALPHABET[t % 64])
            t //= 64
        return "".join(reversed(stamp)) + "".join(ALPHABET[r] for r in self._last_rand)
