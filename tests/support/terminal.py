"""A real pseudo-terminal for CLI tests: pexpect runs the program, pyte renders the screen.

Assertions read the screen as a person would see it (after cursor moves,
clears and redraws), not the raw byte stream.
"""

from __future__ import annotations

import threading
import time

import pexpect
import pyte


class Terminal:
    def __init__(
        self, argv: list[str], env: dict[str, str], *, cols: int = 120, rows: int = 40
    ) -> None:
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self._lock = threading.Lock()
        self.child = pexpect.spawn(argv[0], argv[1:], env=env, dimensions=(rows, cols), timeout=30)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                continue
            except (pexpect.EOF, OSError, ValueError):
                return
            with self._lock:
                self.raw.extend(data)
                # Answer cursor-position requests as a real terminal does
                # (prompt_toolkit asks, to know where it may draw the toolbar).
                for part in data.split(b"\x1b[6n")[:-1]:
                    self.stream.feed(part)
                    y, x = self.screen.cursor.y + 1, self.screen.cursor.x + 1
                    self.child.send(f"\x1b[{y};{x}R")
                self.stream.feed(data.split(b"\x1b[6n")[-1])

    def text(self) -> str:
        with self._lock:
            return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for(self, needle: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.text()
            if needle in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} not on screen after {timeout}s:\n{self.text()}")

    def type(self, text: str) -> None:
        self.child.send(text)

    def line(self, text: str) -> None:
        self.child.send(text + "\r")

    def key(self, seq: str) -> None:
        self.child.send(seq)

    def exited(self, timeout: float = 15.0) -> int | None:
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.child.close()
        return self.child.exitstatus

    def close(self) -> None:
        try:
            if self.child.isalive():
                self.child.terminate(force=True)
        except pexpect.ExceptionPexpect:
            pass  # already gone and reaped: nothing left to close
