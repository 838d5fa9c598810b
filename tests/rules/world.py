"""Actors and fixture worlds for the rules tests, all over real HTTP.

A ``World`` is one fresh emulator namespace loaded with the real
``rules/database.rules.json``. Its actors are end users (unsigned emulator ID
tokens, like the Auth emulator mints), runners (admin credentials plus
``auth_variable_override``, as firebase-admin sends them) and nobody (no
credentials). Fixture data is made by the users themselves through the
allowed writes, so building a world already proves the honest paths.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from emdash_fb.emulator.idtoken import mint_id_token
from tests.rules import model
from tests.support.rtdb import RawRtdb

RULES_FILE = Path(__file__).resolve().parents[2] / "rules" / "database.rules.json"


def ok(resp: requests.Response) -> requests.Response:
    """Assert the request was allowed."""
    assert resp.status_code == 200, f"expected 200, got {resp.status_code}: {resp.text}"
    return resp


def denied(resp: requests.Response) -> requests.Response:
    """Assert the rules refused the request (not some other error)."""
    assert resp.status_code == 401, f"expected 401, got {resp.status_code}: {resp.text}"
    assert resp.json() == {"error": "Permission denied"}, resp.text
    return resp


class Actor:
    """One identity making RTDB REST requests to one namespace."""

    def __init__(
        self,
        raw: RawRtdb,
        uid: str | None,
        name: str = "",
        params: dict[str, str] | None = None,
    ) -> None:
        self.raw = raw
        self.uid = uid
        self.name = name
        self.params = params or {}

    def __repr__(self) -> str:
        return f"Actor({self.uid!r})"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        return self.raw.request(
            method, path, body, params={**self.params, **(params or {})}, headers=headers
        )

    def get(self, path: str, **params: str) -> requests.Response:
        return self.request("GET", path, params=params)

    def put(self, path: str, body: Any, **kw: Any) -> requests.Response:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any) -> requests.Response:
        return self.request("PATCH", path, body)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def update(self, body: dict[str, Any]) -> requests.Response:
        """A multi-path update at the root, the way every product operation writes."""
        return self.patch("", body)


@dataclass
class Session:
    sid: str
    code: str | None
    owner: Actor
    members: dict[str, Actor] = field(default_factory=dict)

    def path(self, rest: str = "") -> str:
        return model.session_path(self.sid, rest)


class World:
    """A fresh namespace with the real rules file, and the people in it."""

    def __init__(self, raw: RawRtdb, project_id: str) -> None:
        self.raw = raw
        self.project_id = project_id
        raw.set_rules(RULES_FILE.read_text())
        self.admin = raw.owner()
        self.nobody = Actor(raw.as_token(None), None)

    def release(self) -> None:
        """Drop the namespace's data and compiled rules, so hundreds of tests don't pile up."""
        ok(self.admin.delete(""))
        self.raw.set_rules('{"rules": {}}')

    def user(self, uid: str, name: str | None = None) -> Actor:
        token = mint_id_token(project_id=self.project_id, uid=uid, provider="anonymous")
        return Actor(self.raw.as_token(token), uid, name or uid.capitalize())

    def owner(self, uid: str, name: str | None = None) -> Actor:
        """A user on the owners' allowlist (may create sessions)."""
        user = self.user(uid, name)
        self.allow(user)
        return user

    def runner(self, rid: str = "runner:r1") -> Actor:
        override = json.dumps({"uid": rid, "token": {"runner": True}})
        return Actor(self.raw.owner(), rid, "demo-agent", {"auth_variable_override": override})

    def value(self, path: str) -> Any:
        """Read with admin credentials (test inspection only, never part of a check)."""
        return ok(self.admin.get(path)).json()

    # -- honest operations, each asserted allowed ----------------------------

    def allow(self, user: Actor) -> None:
        """Put ``user`` on the owners' allowlist (an admin write, as `emdash-fb admin allow`)."""
        ok(self.admin.put(f"allow/uid/{user.uid}", True))

    def share(self, owner: Actor, **kw: Any) -> Session:
        self.allow(owner)
        sid, code = model.push_id(), model.invite_code()
        ok(owner.update(model.share(owner.uid, owner.name, sid, code, **kw)))
        return Session(sid, code, owner, {owner.uid: owner})

    def join(self, s: Session, user: Actor, **kw: Any) -> None:
        assert s.code is not None
        ok(user.update(model.join(user.uid, user.name, s.sid, s.code, **kw)))
        s.members[user.uid] = user

    def set_role(self, s: Session, user: Actor, role: str) -> None:
        ok(s.owner.update(model.set_role(s.sid, user.uid, role)))

    def free_slot(self, s: Session, user: Actor) -> str:
        taken = self.value(s.path(f"slots/{user.uid}")) or {}
        return next(f"s{i}" for i in range(10) if f"s{i}" not in taken)

    def send(self, s: Session, user: Actor, text: str = "hello agent") -> str:
        mid = model.push_id()
        slot = self.free_slot(s, user)
        ok(user.update(model.send(user.uid, user.name, s.sid, mid, text, slot=slot)))
        return mid

    def claim(self, s: Session, runner: Actor, mid: str) -> None:
        etag = runner.request("GET", s.path("lock"), headers={"X-Firebase-ETag": "true"})
        ok(etag)
        ok(
            runner.put(
                s.path("lock"),
                model.lock(mid, runner.uid),
                headers={"if-match": etag.headers["ETag"]},
            )
        )

    def start(self, s: Session, runner: Actor, mid: str) -> None:
        self.claim(s, runner, mid)
        ok(runner.update(model.start_turn(s.sid, mid, runner.uid)))

    def wait_idle(self, s: Session) -> None:
        """Sleep until the session's idle timeout has passed (server clock = this clock)."""
        meta = self.value(s.path("meta"))
        due = (meta["lastActivity"] + meta["idleTimeoutMs"]) / 1000 + 0.05
        time.sleep(max(0.0, due - time.time()))


@dataclass
class Team:
    """One session with every kind of participant and message in it.

    alice owns it; bob and dave are editors; carol is a viewer; eve is a
    signed-in outsider; the runner has its heartbeat record. bob's message ``running`` has been claimed and started
    by the runner; bob's later message ``queued`` waits in the queue.
    """

    world: World
    s: Session
    alice: Actor
    bob: Actor
    carol: Actor
    dave: Actor
    eve: Actor
    runner: Actor
    running: str
    queued: str


def build_team(world: World, **share_kw: Any) -> Team:
    alice, bob, carol = world.user("alice"), world.user("bob"), world.user("carol")
    dave, eve, runner = world.user("dave"), world.user("eve"), world.runner()
    ok(runner.put(f"runners/{runner.uid}", model.runner_record()))
    s = world.share(alice, **share_kw)
    for user in (bob, carol, dave):
        world.join(s, user)
    world.set_role(s, carol, "viewer")
    running = world.send(s, bob, "first question")
    world.start(s, runner, running)
    queued = world.send(s, bob, "second question")
    return Team(world, s, alice, bob, carol, dave, eve, runner, running, queued)
