"""A thin raw-HTTP helper for emulator tests: URLs, namespaces and credentials."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from emdash_fb.cli.context import AppContext
    from emdash_fb.emulator.server import ThreadedEmulator

SERVER_TIMESTAMP = {".sv": "timestamp"}


class RawRtdb:
    """Builds RTDB REST requests against one namespace; returns ``requests`` responses."""

    def __init__(self, base: str, ns: str, *, token: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.ns = ns
        self.token = token
        self.http = requests.Session()

    def as_token(self, token: str | None) -> RawRtdb:
        other = RawRtdb(self.base, self.ns, token=token)
        other.http = self.http
        return other

    def owner(self) -> RawRtdb:
        return self.as_token("owner")

    def url(self, path: str) -> str:
        path = path.strip("/")
        return f"{self.base}/{path}.json" if path else f"{self.base}/.json"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw_body: bytes | str | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        q = {"ns": self.ns, **(params or {})}
        h = dict(headers or {})
        if self.token == "owner":
            h.setdefault("Authorization", "Bearer owner")
        elif self.token:
            q.setdefault("auth", self.token)
        data = (
            raw_body
            if raw_body is not None
            else (None if body is None and method in ("GET", "DELETE") else json.dumps(body))
        )
        return self.http.request(
            method, self.url(path), params=q, data=data, headers=h, timeout=10, **kwargs
        )

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.request("PUT", path, body, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def set_rules(self, rules: dict[str, Any] | str) -> None:
        text = rules if isinstance(rules, str) else json.dumps(rules)
        r = self.http.put(
            f"{self.base}/.settings/rules.json",
            params={"ns": self.ns},
            data=text,
            headers={"Authorization": "Bearer owner"},
            timeout=10,
        )
        r.raise_for_status()


def raw_send(emu: ThreadedEmulator, app: AppContext, sid: str, name: str, text: str) -> None:
    """A member's send, written as raw REST with their token (no client code of ours)."""
    uid = app.auth.current().uid
    db = RawRtdb(
        f"http://{emu.database_host}",
        f"{emu.project_id}-default-rtdb",
        token=app.auth.fresh_token(),
    )
    mid = app.db.new_key()
    taken = db.get(f"sessions/{sid}/slots/{uid}").json() or {}
    slot = next(f"s{i}" for i in range(10) if f"s{i}" not in taken)
    body = {
        f"sessions/{sid}/queue/{mid}": {
            "uid": uid,
            "name": name,
            "text": text,
            "createdAt": SERVER_TIMESTAMP,
            "state": "queued",
            "slot": slot,
        },
        f"sessions/{sid}/transcript/{mid}": {
            "role": "user",
            "uid": uid,
            "name": name,
            "text": text,
            "at": SERVER_TIMESTAMP,
        },
        f"sessions/{sid}/slots/{uid}/{slot}": mid,
        f"work/{mid}": {"sid": sid, "uid": uid, "at": SERVER_TIMESTAMP},
        f"sessions/{sid}/meta/lastMessage": mid,
        f"sessions/{sid}/meta/lastActivity": SERVER_TIMESTAMP,
    }
    response = db.patch("", body)
    assert response.status_code == 200, response.text
