"""Closed and idle sessions are read-only for everyone, runners included.

Each operation in the table is allowed in an open session (a fresh one per
test) and refused in a closed one and in an idle one. The idle session still
says ``status: "open"``: the rules compute idleness from ``lastActivity +
idleTimeoutMs``, so no process has to notice. The only write left is the
owner's ``status: "closed"``, so the owner's client can record the close.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from emdash_fb.emulator.server import ThreadedEmulator
from tests.rules import model
from tests.rules.model import TS
from tests.rules.world import Team, World, build_team, denied, ok
from tests.support.rtdb import RawRtdb

IDLE_MS = 1500  # long enough to build the team in, short enough to wait out
_names = itertools.count()

Op = Callable[[Team], requests.Response]


def _claim_and_start(t: Team) -> requests.Response:
    """Re-point the runner's own lock at the queued message, then start its turn."""
    claim = t.runner.put(t.s.path("lock"), model.lock(t.queued, t.runner.uid, fence=2))
    if claim.status_code != 200:
        return claim
    return t.runner.update(model.start_turn(t.s.sid, t.queued, t.runner.uid, fence=2))


def _hand_back(t: Team) -> dict[str, object]:
    """A runner shutting down mid-turn puts the message back in line."""
    return {
        t.s.path(f"turns/{t.running}/state"): "interrupted",
        t.s.path(f"turns/{t.running}/endedAt"): TS,
        t.s.path(f"queue/{t.running}/state"): "queued",
        t.s.path("lock"): None,
    }


OPERATIONS: list[tuple[str, Op]] = [
    ("join", lambda t: t.eve.update(model.join("eve", "Eve", t.s.sid, t.s.code or ""))),
    (
        "send",
        lambda t: t.bob.update(model.send("bob", "Bob", t.s.sid, model.push_id(), "hi", slot="s2")),
    ),
    (
        "owner-send",
        lambda t: t.alice.update(model.send("alice", "Alice", t.s.sid, model.push_id(), "hi")),
    ),
    ("set-mode", lambda t: t.bob.put(t.s.path("meta/mode"), "plan")),
    ("presence", lambda t: t.bob.put(t.s.path("presence/bob"), model.presence())),
    ("leave", lambda t: t.dave.update(model.leave("dave", t.s.sid))),
    ("kick", lambda t: t.alice.update(model.kick("alice", t.s.sid, "dave", t.s.code, None))),
    ("set-role", lambda t: t.alice.update(model.set_role(t.s.sid, "bob", "viewer"))),
    (
        "rotate",
        lambda t: t.alice.update(model.rotate("alice", t.s.sid, t.s.code, model.invite_code())),
    ),
    ("revoke", lambda t: t.alice.update(model.revoke(t.s.sid, t.s.code or ""))),
    ("cancel-queued", lambda t: t.bob.update(model.cancel_queued(t.s.sid, t.queued, "bob", "s1"))),
    (
        "cancel-running",
        lambda t: t.bob.put(
            t.s.path(f"turns/{t.running}/cancelRequested"), model.cancel_running("bob")
        ),
    ),
    ("runner-bump-activity", lambda t: t.runner.put(t.s.path("meta/lastActivity"), TS)),
    (
        "runner-claim",
        lambda t: t.runner.put(t.s.path("lock"), model.lock(t.queued, t.runner.uid, fence=2)),
    ),
    ("runner-release", lambda t: t.runner.delete(t.s.path("lock"))),
    ("runner-start-turn", lambda t: _claim_and_start(t)),
    ("runner-hand-back", lambda t: t.runner.update(_hand_back(t))),
    (
        "runner-chunk",
        lambda t: t.runner.patch(t.s.path(f"turns/{t.running}/chunks"), {"c000000": "partial"}),
    ),
    (
        "runner-finish",
        lambda t: t.runner.update(model.finish_turn(t.s.sid, t.running, t.runner.uid, "done")),
    ),
]
IDS = [name for name, _ in OPERATIONS]
OPS = [op for _, op in OPERATIONS]


def _team_in_fresh_namespace(emulator: ThreadedEmulator, label: str, **kw: object) -> Team:
    ns = f"{label}-{next(_names)}-{os.getpid()}"
    world = World(RawRtdb(f"http://{emulator.database_host}", ns), emulator.project_id)
    return build_team(world, **kw)


@pytest.fixture(scope="module")
def closed_team(emulator: ThreadedEmulator) -> Iterator[Team]:
    t = _team_in_fresh_namespace(emulator, "closed")
    # status alone (the invite is kept), so a refused join is refused for the close itself
    ok(t.alice.put(t.s.path("meta/status"), "closed"))
    yield t
    t.world.release()


@pytest.fixture(scope="module")
def idle_team(emulator: ThreadedEmulator) -> Iterator[Team]:
    t = _team_in_fresh_namespace(emulator, "idle", idle_ms=IDLE_MS)
    t.world.wait_idle(t.s)
    yield t
    t.world.release()


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_allowed_while_open(team: Team, op: Op) -> None:
    ok(op(team))


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_refused_when_closed(closed_team: Team, op: Op) -> None:
    before = closed_team.world.value("")
    denied(op(closed_team))
    assert closed_team.world.value("") == before


@pytest.mark.parametrize("op", OPS, ids=IDS)
def test_refused_when_idle(idle_team: Team, op: Op) -> None:
    before = idle_team.world.value("")
    denied(op(idle_team))
    assert idle_team.world.value("") == before


@pytest.mark.parametrize("state", ["closed", "idle"])
def test_members_still_read_history(closed_team: Team, idle_team: Team, state: str) -> None:
    t = closed_team if state == "closed" else idle_team
    for who in (t.alice, t.carol, t.runner):
        assert ok(who.get(t.s.path("transcript"))).json()
    denied(t.eve.get(t.s.path()))


@pytest.mark.parametrize("who", ["bob", "carol", "eve", "runner"])
def test_only_the_owner_closes_an_idle_session(idle_team: Team, who: str) -> None:
    denied(getattr(idle_team, who).update(model.close(idle_team.s.sid, idle_team.s.code)))
    denied(getattr(idle_team, who).put(idle_team.s.path("meta/status"), "closed"))


def test_owner_records_the_idle_close(emulator: ThreadedEmulator) -> None:
    t = _team_in_fresh_namespace(emulator, "idle-close", idle_ms=IDLE_MS)
    t.world.wait_idle(t.s)
    assert t.world.value(t.s.path("meta/status")) == "open"
    ok(t.alice.update(model.close(t.s.sid, t.s.code)))
    assert t.world.value(t.s.path("meta/status")) == "closed"
    assert t.world.value(t.s.path("meta/inviteCode")) is None
    assert t.world.value(f"invites/{t.s.code}/revokedAt")  # a tombstone, never reused


def test_idle_session_cannot_be_woken_up(idle_team: Team) -> None:
    """Nothing moves lastActivity once idle; the owner may only close."""
    for who in (idle_team.alice, idle_team.bob, idle_team.runner):
        denied(who.put(idle_team.s.path("meta/lastActivity"), TS))
    denied(idle_team.alice.put(idle_team.s.path("meta/status"), "open"))


def test_activity_keeps_a_session_open(world: World) -> None:
    """Each send restarts the idle clock; the session idles only after a quiet timeout."""
    idle_ms = 800
    alice = world.user("alice")
    s = world.share(alice, idle_ms=idle_ms)
    time.sleep(0.5)
    world.send(s, alice, "one")  # restarts the clock
    time.sleep(0.5)  # past the first deadline, not the second
    world.send(s, alice, "two")
    world.wait_idle(s)
    denied(alice.update(model.send("alice", "Alice", s.sid, model.push_id(), "three")))
