"""Security rules as the end user meets them: 401s, per-uid rules, streams cancelled or refused.

These tests change the default namespace's rules, so they get an emulator of
their own.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.firebase.client import Rtdb
from emdash_fb.firebase.errors import PermissionDenied
from emdash_fb.firebase.identity import Auth, IdentityStore
from emdash_fb.firebase.listener import Listener, Update
from emdash_fb.firebase.sse import open_stream
from emdash_fb.firebase.target import Target, resolve_target

RULES = {
    "rules": {
        "open": {".read": True, ".write": True},
        "denied": {".read": False, ".write": False},
        "room": {".read": "data.child('open').val() === true", ".write": "auth != null"},
        "mine": {"$uid": {".read": "auth.uid === $uid", ".write": "auth.uid === $uid"}},
    }
}


@pytest.fixture(scope="module")
def rules_emulator() -> Iterator[ThreadedEmulator]:
    with ThreadedEmulator(keep_alive_seconds=1.0) as emu:
        r = requests.put(
            f"http://{emu.database_host}/.settings/rules.json",
            data=json.dumps(RULES),
            headers={"Authorization": "Bearer owner"},
            timeout=5,
        )
        r.raise_for_status()
        yield emu


@pytest.fixture
def target(rules_emulator: ThreadedEmulator) -> Target:
    return resolve_target(rules_emulator.env())


@pytest.fixture
def auth(target: Target, tmp_path: Path) -> Auth:
    return Auth(target, IdentityStore(target, "default", {"XDG_CONFIG_HOME": str(tmp_path)}))


@pytest.fixture
def db(target: Target, auth: Auth) -> Rtdb:
    return Rtdb(target, auth)


def owner_put(emu: ThreadedEmulator, path: str, value: object) -> None:
    requests.put(
        f"http://{emu.database_host}/{path}.json",
        data=json.dumps(value),
        headers={"Authorization": "Bearer owner"},
        timeout=5,
    ).raise_for_status()


@pytest.mark.parametrize(
    "call",
    [
        lambda db: db.get("denied/x"),
        lambda db: db.get("denied", order_by="$key", limit_to_first=1),
        lambda db: db.get_with_etag("denied/x"),
        lambda db: db.set("denied/x", 1),
        lambda db: db.set_if_match("denied/x", 1, "etag"),
        lambda db: db.update("denied", {"x": 1}),
        lambda db: db.push("denied", 1),
        lambda db: db.delete("denied/x"),
    ],
)
def test_denied_requests_raise_permission_denied(db: Rtdb, call: object) -> None:
    with pytest.raises(PermissionDenied) as caught:
        call(db)  # type: ignore[operator]
    assert str(caught.value) == "permission denied: Permission denied"


def test_a_partly_denied_multi_path_update_writes_nothing(db: Rtdb) -> None:
    with pytest.raises(PermissionDenied):
        db.update("", {"open/partial": 1, "denied/partial": 1})
    assert db.get("open/partial") is None


def test_rules_see_the_signed_in_uid(db: Rtdb, auth: Auth) -> None:
    uid = auth.current().uid
    db.set(f"mine/{uid}/note", "hi")
    assert db.get(f"mine/{uid}") == {"note": "hi"}
    with pytest.raises(PermissionDenied):
        db.set("mine/someone-else/note", "hi")


def test_stream_refused_at_open(target: Target, auth: Auth) -> None:
    async def main() -> None:
        stream = open_stream(
            f"{target.database_url}/denied.json", {"auth": auth.fresh_token()}, timeout=5
        )
        try:
            await anext(aiter(stream))
        finally:
            await stream.aclose()

    with pytest.raises(PermissionDenied):
        asyncio.run(main())


def test_listener_on_a_denied_path_is_cancelled_after_one_token_retry(
    target: Target, auth: Auth
) -> None:
    first = auth.current()
    time.sleep(1.1)  # a retry's new token must differ
    statuses: list[str] = []
    updates: list[Update] = []
    listener = Listener(target, auth, "denied", updates.append, statuses.append)
    asyncio.run(asyncio.wait_for(listener.run(), 10))
    assert statuses == ["connecting", "cancelled"]
    assert updates == []
    saved = auth.store.load()
    assert saved is not None and saved.id_token != first.id_token  # it did try a new token


def test_listener_is_cancelled_when_read_access_is_lost(
    target: Target, auth: Auth, rules_emulator: ThreadedEmulator
) -> None:
    owner_put(rules_emulator, "room", {"open": True, "topic": "x"})

    async def main() -> tuple[list[str], list[Update], set[asyncio.Task]]:
        statuses: list[str] = []
        updates: list[Update] = []
        listener = Listener(target, auth, "room", updates.append, statuses.append)
        task = asyncio.create_task(listener.run())
        deadline = time.monotonic() + 5
        while statuses[-1:] != ["live"] and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.to_thread(owner_put, rules_emulator, "room/open", False)
        await asyncio.wait_for(task, 5)  # returns by itself
        return statuses, updates, asyncio.all_tasks() - {asyncio.current_task()}

    statuses, updates, left = asyncio.run(main())
    assert statuses == ["connecting", "live", "cancelled"]
    assert updates == [Update(None, {"open": True, "topic": "x"}, True)]
    assert left == set()
