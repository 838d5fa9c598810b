"""A test-side SSE reader: a real streaming GET on a thread, events into a queue."""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import threading
from typing import Any

import requests


class SseReader:
    def __init__(
        self, url: str, params: dict[str, str], headers: dict[str, str] | None = None
    ) -> None:
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.response = requests.get(
            url,
            params=params,
            headers={"Accept": "text/event-stream", **(headers or {})},
            stream=True,
            timeout=(5, 30),
        )
        self.status = self.response.status_code
        self.closed = threading.Event()
        if self.status == 200:
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()

    def _read(self) -> None:
        event, data = None, None
        try:
            for raw in self.response.iter_lines(decode_unicode=False):
                line = raw.decode("utf-8")
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif line == "" and event is not None:
                    try:
                        parsed = json.loads(data) if data is not None else None
                    except ValueError:
                        parsed = data
                    self.events.put((event, parsed))
                    event, data = None, None
        except (requests.RequestException, AttributeError, ValueError):
            pass
        finally:
            self.closed.set()

    def next(self, timeout: float = 5.0, skip_keepalive: bool = True) -> tuple[str, Any]:
        while True:
            ev = self.events.get(timeout=timeout)
            if skip_keepalive and ev[0] == "keep-alive":
                continue
            return ev

    def close(self) -> None:
        # Shut the socket first: closing the response would otherwise wait for
        # the reader thread's blocked read (up to a keep-alive interval).
        conn = getattr(self.response.raw, "_connection", None)
        sock = getattr(conn, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.response.close()
