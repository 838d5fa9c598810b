"""The web viewer: where its page is, what its config says, and a small server for it.

The page itself (``web/``) is static and talks to Firebase directly; nothing
here relays data. The page reads its project from Firebase Hosting's reserved
``/__/firebase/init.json``; ``emdash-fb web`` serves the files and that same
URL, naming the configured project (or the emulators), so the page reaches
the same database as the terminal. ``web_link`` is the link
``/share`` prints: the invite code travels in the URL fragment, which browsers
never send to a server.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from .firebase.target import Target

ENV_WEB_DIR = "EMDASH_FB_WEB_DIR"
ENV_WEB_URL = "EMDASH_FB_WEB_URL"
DEFAULT_PORT = 8765
#: Firebase Hosting's reserved URL with the project's web app config.
INIT_JSON = "/__/firebase/init.json"
#: The page's files (anything else is a 404: the folder is not browsable).
FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "style.css": "text/css",
    "names.json": "application/json",
}
# Mirrors the page's own meta policy, so the server says it too.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' http: https:; frame-src 'none'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class WebFilesMissing(RuntimeError):
    """The page's files can't be found; ``str()`` says where to get them."""


def web_dir(env: Mapping[str, str] = os.environ) -> Path:
    """The folder with the page: ``$EMDASH_FB_WEB_DIR``, else ``web/`` of this checkout."""
    folder = Path(env.get(ENV_WEB_DIR) or Path(__file__).resolve().parents[1] / "web")
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise WebFilesMissing(
            f"the web viewer's files are not in {folder} ({', '.join(missing)} missing): "
            f"run emdash-fb from a checkout of the repository, or set {ENV_WEB_DIR}"
        )
    return folder


def page_config(target: Target) -> dict[str, Any]:
    """What the page needs to reach the project: the web app config, or the emulators."""
    config: dict[str, Any] = {
        "projectId": target.project_id,
        "apiKey": target.api_key,
        "databaseURL": target.database_url,
    }
    if target.database_emulator:
        config["databaseEmulatorHost"] = target.database_emulator
        config["namespace"] = f"{target.project_id}-default-rtdb"
    if target.auth_emulator:
        config["authEmulatorHost"] = target.auth_emulator
    return config


def base_url(target: Target, env: Mapping[str, str] = os.environ) -> str:
    """Where people open the page: ``$EMDASH_FB_WEB_URL``, else ``emdash-fb web``'s
    default address against an emulator, else the project's Firebase Hosting site."""
    url = env.get(ENV_WEB_URL)
    if not url:
        if target.is_emulator:
            url = f"http://127.0.0.1:{DEFAULT_PORT}/"
        else:
            url = f"https://{target.project_id}.web.app/"
    return url if url.endswith("/") else url + "/"


def web_link(target: Target, code: str, env: Mapping[str, str] = os.environ) -> str:
    """The browser link for invite ``code`` (in the fragment: never sent to a server)."""
    return f"{base_url(target, env)}#code={code}"


def create_app(target: Target, folder: Path) -> web.Application:
    """The page's files and its config at ``INIT_JSON``, with headers that keep it plain."""
    config = page_config(target)

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("name") or "index.html"
        if request.path == INIT_JSON:
            response: web.StreamResponse = web.json_response(config)
        elif name in FILES:
            body = (folder / name).read_bytes()
            response = web.Response(body=body, content_type=FILES[name], charset="utf-8")
        else:
            raise web.HTTPNotFound(text="not found")
        response.headers.update(
            {
                "Cache-Control": "no-cache",
                "Content-Security-Policy": CSP,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            }
        )
        return response

    app = web.Application()
    app.router.add_get("/", serve)
    app.router.add_get(INIT_JSON, serve)
    app.router.add_get("/{name}", serve)
    return app


class WebServer:
    """The viewer served on its own thread and loop, so the demo can run it beside a REPL.

    ``start()`` binds (``port=0``: any free port) and returns the page's address;
    an ``OSError`` from binding is raised there, in the caller's thread.
    """

    def __init__(self, target: Target, folder: Path, host: str = "127.0.0.1", port: int = 0):
        self.app = create_app(target, folder)
        self.host, self.port = host, port
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(self.app, access_log=None)
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="emdash-web", daemon=True
        )

    def start(self) -> str:
        async def bind() -> int:
            await self._runner.setup()
            await web.TCPSite(self._runner, self.host, self.port).start()
            return int(self._runner.addresses[0][1])

        self._thread.start()
        bound = asyncio.run_coroutine_threadsafe(bind(), self._loop).result(timeout=10)
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        self.url = f"http://{shown}:{bound}/"
        return self.url

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
