"""Join: the caller's own editor record, via the session's current, unexpired code.

Attacks are refused, and then the honest join succeeds in the same state, so
each refusal is due to the attack alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.rules import model
from tests.rules.model import DROP, TS, edit, inc, replace, without
from tests.rules.world import Session, World, denied, ok


def join_body(s: Session, uid: str = "bob", code: str | None = None) -> dict[str, Any]:
    return model.join(uid, uid.capitalize(), s.sid, code or s.code or "")


def member_key(s: Session, uid: str = "bob") -> str:
    return f"sessions/{s.sid}/members/{uid}"


def count_key(s: Session) -> str:
    return f"sessions/{s.sid}/meta/memberCount"


Attack = Callable[[Session], dict[str, Any]]

ATTACKS: list[tuple[str, Attack]] = [
    ("role-owner", lambda s: edit(join_body(s), member_key(s), role="owner")),
    ("role-viewer", lambda s: edit(join_body(s), member_key(s), role="viewer")),
    ("role-unknown", lambda s: edit(join_body(s), member_key(s), role="admin")),
    ("no-via", lambda s: edit(join_body(s), member_key(s), via=DROP)),
    ("wrong-code", lambda s: join_body(s, code=model.invite_code())),
    ("lower-case-code", lambda s: join_body(s, code="a" + (s.code or "")[1:].lower())),
    ("joined-at-client-clock", lambda s: edit(join_body(s), member_key(s), joinedAt=1)),
    ("name-empty", lambda s: edit(join_body(s), member_key(s), name="")),
    ("name-65-chars", lambda s: edit(join_body(s), member_key(s), name="n" * 65)),
    ("name-not-string", lambda s: edit(join_body(s), member_key(s), name=5)),
    ("extra-field", lambda s: edit(join_body(s), member_key(s), admin=True)),
    ("count-unchanged", lambda s: without(join_body(s), count_key(s))),
    ("count-plus-2", lambda s: replace(join_body(s), count_key(s), inc(2))),
    ("count-set-to-1", lambda s: replace(join_body(s), count_key(s), 1)),
    ("count-deleted", lambda s: replace(join_body(s), count_key(s), None)),
    ("count-alone", lambda s: {count_key(s): inc(1)}),
    ("record-for-another-uid", lambda s: join_body(s, uid="carol")),
    (
        "two-records-at-once",
        lambda s: {**join_body(s), **without(join_body(s, uid="carol"), count_key(s))},
    ),
    (
        "last-activity-client-clock",
        lambda s: replace(join_body(s), f"sessions/{s.sid}/meta/lastActivity", 1),
    ),
    (
        "presence-of-another",
        lambda s: replace(join_body(s), f"sessions/{s.sid}/presence/alice", {"lastSeen": TS}),
    ),
]


@pytest.mark.parametrize("attack", [a for _, a in ATTACKS], ids=[n for n, _ in ATTACKS])
def test_join_attack_refused_then_honest_join_allowed(world: World, attack: Attack) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    s = world.share(alice)
    denied(bob.update(attack(s)))
    ok(bob.update(join_body(s)))
    meta = world.value(s.path("meta"))
    assert meta["memberCount"] == 2
    assert world.value(s.path("members/bob")) == {
        "name": "Bob",
        "role": "editor",
        "joinedAt": meta["lastActivity"],
        "via": s.code,
    }


def test_joined_member_reads_the_session(world: World) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    s = world.share(alice)
    denied(bob.get(s.path()))
    sid = ok(bob.get(f"invites/{s.code}")).json()["sid"]
    assert sid == s.sid
    world.join(s, bob)
    assert ok(bob.get(s.path())).json()["members"]["bob"]["role"] == "editor"


def test_rejoin_is_a_no_op_and_a_second_join_write_is_refused(world: World) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    s = world.share(alice)
    world.join(s, bob)
    world.set_role(s, bob, "viewer")
    denied(bob.update(join_body(s)))  # would reset the role and count bob twice
    assert world.value(s.path("members/bob/role")) == "viewer"
    assert world.value(s.path("meta/memberCount")) == 2


def test_join_with_code_of_another_session(world: World) -> None:
    alice, eve, bob = world.user("alice"), world.user("eve"), world.user("bob")
    s, other = world.share(alice), world.share(eve)
    denied(bob.update(join_body(s, code=other.code)))
    ok(bob.update(join_body(s)))


def test_join_with_expired_code(world: World) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    s = world.share(alice, expires_at=model.now_ms() + 400)
    time.sleep(0.45)
    denied(bob.update(join_body(s)))
    new = model.invite_code()
    ok(alice.update(model.rotate("alice", s.sid, s.code, new)))
    ok(bob.update(join_body(s, code=new)))


def test_join_with_revoked_code(world: World) -> None:
    alice, bob = world.user("alice"), world.user("bob")
    s = world.share(alice)
    assert s.code is not None
    ok(alice.update(model.revoke(s.sid, s.code)))
    denied(bob.update(join_body(s)))
    new = model.invite_code()
    ok(alice.update(model.rotate("alice", s.sid, None, new)))
    ok(bob.update(join_body(s, code=new)))


def test_join_with_rotated_away_code(world: World) -> None:
    """The old code is refused even if its invite record was left behind."""
    alice, bob = world.user("alice"), world.user("bob")
    s = world.share(alice)
    assert s.code is not None
    new = model.invite_code()
    rotate = without(model.rotate("alice", s.sid, s.code, new), f"invites/{s.code}")
    ok(alice.update(rotate))
    assert world.value(f"invites/{s.code}/sid") == s.sid  # still there, but not current
    denied(bob.update(join_body(s)))
    ok(bob.update(join_body(s, code=new)))


def test_join_past_the_member_limit(world: World) -> None:
    alice, bob, carol, dave = (world.user(u) for u in ("alice", "bob", "carol", "dave"))
    s = world.share(alice, max_members=3)
    world.join(s, bob)
    world.join(s, carol)
    denied(dave.update(join_body(s, uid="dave")))
    assert world.value(s.path("meta/memberCount")) == 3
    ok(carol.update(model.leave("carol", s.sid)))
    ok(dave.update(join_body(s, uid="dave")))
    assert world.value(s.path("meta/memberCount")) == 3


def test_two_person_session_takes_exactly_one_guest(world: World) -> None:
    alice, bob, carol = world.user("alice"), world.user("bob"), world.user("carol")
    s = world.share(alice, max_members=2)
    world.join(s, bob)
    denied(carol.update(join_body(s, uid="carol")))


def test_kicked_user_cannot_rejoin(world: World) -> None:
    alice, bob, eve = world.user("alice"), world.user("bob"), world.user("eve")
    s = world.share(alice)
    world.join(s, bob)
    new = model.invite_code()
    ok(alice.update(model.kick("alice", s.sid, "bob", s.code, new)))
    denied(bob.update(join_body(s)))
    denied(bob.update(join_body(s, code=new)))  # not even with the new code
    ok(bob.get(s.path("kicked/bob")))  # bob can tell why
    denied(eve.update(join_body(s, uid="eve")))  # the code bob knew is dead for everyone
    ok(eve.update(join_body(s, uid="eve", code=new)))


def test_runner_cannot_join(world: World) -> None:
    alice, runner = world.user("alice"), world.runner()
    s = world.share(alice)
    denied(runner.update(join_body(s, uid=runner.uid)))


def test_nobody_cannot_join(world: World) -> None:
    alice = world.user("alice")
    s = world.share(alice)
    denied(world.nobody.update(join_body(s)))
    denied(world.nobody.get(f"invites/{s.code}"))
