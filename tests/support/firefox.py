"""A real headless Firefox for the web viewer's tests, driven over WebDriver BiDi.

Firefox (Debian's ``firefox-esr``; ``make browser`` installs it) speaks the W3C
WebDriver BiDi protocol on a WebSocket of its own (``--remote-debugging-port``),
so no driver binary and no selenium are needed: this is a small client for the
few commands the tests use (navigate, evaluate, viewport, screenshot) and the
``log.entryAdded`` event, on aiohttp's WebSocket client. Like the Chromium
fixture it fails, saying why, when the browser isn't installed.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

ENV_FIREFOX = "EMDASH_FB_FIREFOX"
# A closed network: nothing phones home, nothing updates.
PREFS = {
    "app.update.enabled": False,
    "browser.shell.checkDefaultBrowser": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False,
    "network.captive-portal-service.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "extensions.update.enabled": False,
    "network.connectivity-service.enabled": False,
}


def firefox_path() -> str:
    found = os.environ.get(ENV_FIREFOX) or shutil.which("firefox-esr") or shutil.which("firefox")
    if not found:
        pytest.fail(
            "Firefox is not installed, so the web viewer can't be tested in it: run "
            f"`make browser` (apt-get install firefox-esr) or set {ENV_FIREFOX}",
            pytrace=False,
        )
    return found


class BidiError(AssertionError):
    pass


class Firefox:
    """One headless Firefox and one BiDi session; calls are synchronous."""

    def __init__(self, binary: str) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="emdash-ff-"))
        (self.profile / "user.js").write_text(
            "".join(f'user_pref("{k}", {str(v).lower()});\n' for k, v in PREFS.items())
        )
        self.proc = subprocess.Popen(
            [
                binary,
                "--headless",
                "--no-remote",
                "--profile",
                str(self.profile),
                "--remote-debugging-port=0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = self._endpoint()
        self.errors: list[str] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._run(self._connect())
        self.call("session.new", {"capabilities": {}})
        self.call("session.subscribe", {"events": ["log.entryAdded"]})
        tree = self.call("browsingContext.getTree", {})
        self.context = tree["contexts"][0]["context"]

    def _endpoint(self) -> str:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            found = re.search(r"WebDriver BiDi listening on (ws://\S+)", line)
            if found:
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()  # drain
                return found.group(1).rstrip("/") + "/session"
            if not line and self.proc.poll() is not None:
                break
        raise BidiError("Firefox did not start its WebDriver BiDi endpoint")

    def _run(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _connect(self) -> None:
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(self.url, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self._ws:
            data = msg.json()
            if "id" in data and data["id"] in self._pending:
                self._pending.pop(data["id"]).set_result(data)
            elif data.get("method") == "log.entryAdded":
                entry = data["params"]
                if entry.get("level") == "error":
                    self.errors.append(f"{entry.get('type')}: {entry.get('text')}")

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        ident = next(self._ids)
        future: asyncio.Future[Any] = self._loop.create_future()
        self._pending[ident] = future
        await self._ws.send_json({"id": ident, "method": method, "params": params})
        return await future

    def call(self, method: str, params: dict[str, Any], timeout: float = 30) -> Any:
        answer = self._run(self._call(method, params), timeout)
        if answer.get("type") == "error":
            raise BidiError(f"{method}: {answer.get('error')}: {answer.get('message')}")
        return answer["result"]

    # -- what the tests use --------------------------------------------------------

    def viewport(self, width: int, height: int) -> None:
        self.call(
            "browsingContext.setViewport",
            {"context": self.context, "viewport": {"width": width, "height": height}},
        )

    def goto(self, url: str) -> None:
        self.call(
            "browsingContext.navigate", {"context": self.context, "url": url, "wait": "complete"}
        )

    def js(self, expression: str) -> Any:
        """The value of ``expression`` in the page (promises awaited; JSON-like values)."""
        result = self.call(
            "script.evaluate",
            {
                "expression": expression,
                "target": {"context": self.context},
                "awaitPromise": True,
                "resultOwnership": "none",
            },
        )
        if result.get("type") == "exception":
            raise BidiError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return _plain(result["result"])

    def wait_for(self, expression: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.1)
        raise BidiError(f"not true after {timeout}s: {expression}")

    def screenshot(self, path: Path) -> None:
        shot = self.call("browsingContext.captureScreenshot", {"context": self.context})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        async def shut() -> None:
            self._reader.cancel()
            await self._ws.close()
            await self._http.close()

        try:
            self._run(shut(), 5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)


def _plain(remote: dict[str, Any]) -> Any:
    kind = remote.get("type")
    if kind in ("string", "number", "boolean"):
        return remote.get("value")
    if kind in ("null", "undefined"):
        return None
    if kind == "array":
        return [_plain(v) for v in remote.get("value", [])]
    if kind == "object":
        return {k: _plain(v) for k, v in remote.get("value", [])}
    return remote


@pytest.fixture(scope="session")
def firefox() -> Iterator[Firefox]:
    browser = Firefox(firefox_path())
    yield browser
    browser.close()
