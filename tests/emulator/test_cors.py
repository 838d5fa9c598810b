"""CORS over real HTTP: what a browser page needs from both services, as production answers.

A preflight (OPTIONS with Access-Control-Request-Method) gets the methods and
the headers asked for; every response, errors and streams included, allows any
origin and exposes the ETag.
"""

from __future__ import annotations

import requests

from emdash_fb.emulator.server import ThreadedEmulator
from tests.support.rtdb import RawRtdb

ORIGIN = {"Origin": "http://127.0.0.1:8765"}


def preflight(url: str, method: str, headers: str) -> requests.Response:
    return requests.options(
        url,
        headers={
            **ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
        timeout=5,
    )


def test_database_preflight_and_responses(raw: RawRtdb) -> None:
    r = preflight(raw.url("a") + f"?ns={raw.ns}", "PATCH", "content-type")
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "PATCH" in r.headers["Access-Control-Allow-Methods"]
    assert r.headers["Access-Control-Allow-Headers"] == "content-type"
    assert r.content == b""
    # the preflight wrote nothing, and the request after it works and can be read
    written = raw.patch("a", {"b": 1}, headers=ORIGIN)
    assert written.status_code == 200
    assert written.headers["Access-Control-Allow-Origin"] == "*"
    read = raw.get("a", headers={**ORIGIN, "X-Firebase-ETag": "true"})
    assert read.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" in read.headers["Access-Control-Expose-Headers"]
    # errors too, or a page couldn't tell a refusal from a network failure
    raw.set_rules({"rules": {".read": False}})
    denied = raw.as_token(None).get("a", headers=ORIGIN)
    assert denied.status_code == 401
    assert denied.headers["Access-Control-Allow-Origin"] == "*"
    bad = raw.get("a", headers=ORIGIN, params={"orderBy": "nope"})
    assert bad.status_code == 400 and bad.headers["Access-Control-Allow-Origin"] == "*"


def test_event_stream_allows_any_origin(raw: RawRtdb) -> None:
    with raw.http.get(
        raw.url("a"),
        params={"ns": raw.ns},
        headers={**ORIGIN, "Accept": "text/event-stream"},
        stream=True,
        timeout=5,
    ) as r:
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/event-stream")
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        first = next(r.iter_lines())
        assert first == b"event: put"


def test_auth_preflight_and_sign_up(emulator: ThreadedEmulator) -> None:
    url = f"http://{emulator.auth_host}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=k"
    r = preflight(url, "POST", "content-type")
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == "*"
    signed = requests.post(url, json={"returnSecureToken": True}, headers=ORIGIN, timeout=5)
    assert signed.status_code == 200 and signed.headers["Access-Control-Allow-Origin"] == "*"
    wrong = requests.post(url.replace("signUp", "nope"), json={}, headers=ORIGIN, timeout=5)
    assert wrong.status_code == 404 and wrong.headers["Access-Control-Allow-Origin"] == "*"
