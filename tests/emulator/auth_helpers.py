"""Test helpers for the Auth emulator: run it on a free port, call it like a client."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

import requests
from aiohttp import web

from emdash_fb.emulator.auth import AuthProject, create_auth_app

PROJECT_ID = "demo-emdash"
API_KEY = "fake-api-key"
V1 = "identitytoolkit.googleapis.com/v1"
V3 = "www.googleapis.com/identitytoolkit/v3/relyingparty"
TOKEN_URL = "securetoken.googleapis.com/v1/token"


class FakeClock:
    """A clock the test moves by hand, starting at the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class BackgroundServer:
    """An aiohttp application served from its own thread and event loop."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner = web.AppRunner(app)
        self.host_port = ""

    def start(self) -> str:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=10)
        return self.host_port

    async def _serve(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.host_port = f"{host}:{port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@dataclass
class AuthEndpoint:
    """Where an Auth emulator answers, with the calls the tests make on it."""

    host_port: str

    @property
    def base(self) -> str:
        return f"http://{self.host_port}"

    def post(
        self, path: str, body: Any = None, *, key: str | None = API_KEY, **kwargs: Any
    ) -> requests.Response:
        params = {"key": key} if key is not None else {}
        if body is not None:
            kwargs["json"] = body
        return requests.post(f"{self.base}/{path}", params=params, timeout=10, **kwargs)

    def ok(self, path: str, body: Any = None, **kwargs: Any) -> dict[str, Any]:
        reply = self.post(path, body, **kwargs)
        assert reply.status_code == 200, reply.text
        return reply.json()

    def error(self, path: str, body: Any = None, **kwargs: Any) -> tuple[int, str]:
        reply = self.post(path, body, **kwargs)
        assert reply.status_code != 200, reply.text
        return reply.status_code, reply.json()["error"]["message"]

    def sign_up(self, **fields: Any) -> dict[str, Any]:
        return self.ok(f"{V1}/accounts:signUp", {"returnSecureToken": True, **fields})


def start_auth_emulator(project: AuthProject) -> tuple[BackgroundServer, AuthEndpoint]:
    server = BackgroundServer(create_auth_app(project.project_id, project=project))
    return server, AuthEndpoint(server.start())


def jwt_payload(token: str) -> dict[str, Any]:
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def jwt_header(token: str) -> dict[str, Any]:
    segment = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def unsigned_jwt(payload: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."
