"""Leave, kick and roles: who may end or change a membership, and the count that follows it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.rules import model
from tests.rules.model import TS, edit, inc, replace, without
from tests.rules.world import Team, denied, ok

# -- leave ---------------------------------------------------------------------


def leave_body(t: Team, uid: str = "dave") -> dict[str, Any]:
    return model.leave(uid, t.s.sid)


LeaveAttack = Callable[[Team], tuple[Any, dict[str, Any]]]

LEAVE_ATTACKS: list[tuple[str, LeaveAttack]] = [
    ("count-unchanged", lambda t: (t.dave, without(leave_body(t), t.s.path("meta/memberCount")))),
    (
        "count-minus-2",
        lambda t: (t.dave, replace(leave_body(t), t.s.path("meta/memberCount"), inc(-2))),
    ),
    (
        "count-plus-1",
        lambda t: (t.dave, replace(leave_body(t), t.s.path("meta/memberCount"), inc(1))),
    ),
    ("count-only", lambda t: (t.dave, {t.s.path("meta/memberCount"): inc(-1)})),
    ("remove-another-member", lambda t: (t.bob, leave_body(t))),
    ("outsider-removes-member", lambda t: (t.eve, leave_body(t))),
    ("runner-removes-member", lambda t: (t.runner, leave_body(t))),
    ("viewer-removes-member", lambda t: (t.carol, leave_body(t))),
    ("nobody-removes-member", lambda t: (t.world.nobody, leave_body(t))),
]


@pytest.mark.parametrize("attack", [a for _, a in LEAVE_ATTACKS], ids=[n for n, _ in LEAVE_ATTACKS])
def test_leave_attack_refused_then_honest_leave_allowed(team: Team, attack: LeaveAttack) -> None:
    actor, body = attack(team)
    denied(actor.update(body))
    ok(team.dave.update(leave_body(team)))
    assert team.world.value(team.s.path("members/dave")) is None
    assert team.world.value(team.s.path("meta/memberCount")) == 3


def test_leave_removes_own_presence(team: Team) -> None:
    ok(team.dave.put(team.s.path("presence/dave"), model.presence()))
    ok(team.dave.update(leave_body(team)))
    assert team.world.value(team.s.path("presence/dave")) is None
    denied(team.dave.get(team.s.path()))


def test_viewer_may_leave(team: Team) -> None:
    ok(team.carol.update(leave_body(team, "carol")))


def test_owner_cannot_leave(team: Team) -> None:
    denied(team.alice.update(leave_body(team, "alice")))
    assert team.world.value(team.s.path("members/alice/role")) == "owner"


def test_member_cannot_delete_own_record_bare(team: Team) -> None:
    denied(team.dave.delete(team.s.path("members/dave")))


# -- kick ----------------------------------------------------------------------


def kick_body(t: Team, uid: str = "dave") -> dict[str, Any]:
    """Kick ``uid``, replacing the invite with a fresh code (``t.s.code`` is the current one)."""
    return model.kick(
        "alice", t.s.sid, uid, t.s.code, NEW_CODE.setdefault(t.s.sid, model.invite_code())
    )


NEW_CODE: dict[str, str] = {}


KickAttack = Callable[[Team], tuple[Any, dict[str, Any]]]


def _key(t: Team, rest: str) -> str:
    return t.s.path(rest)


KICK_ATTACKS: list[tuple[str, KickAttack]] = [
    ("editor-kicks", lambda t: (t.bob, edit(kick_body(t), _key(t, "kicked/dave"), by="bob"))),
    ("editor-kicks-as-owner", lambda t: (t.bob, kick_body(t))),
    ("viewer-kicks", lambda t: (t.carol, kick_body(t))),
    ("outsider-kicks", lambda t: (t.eve, kick_body(t))),
    ("runner-kicks", lambda t: (t.runner, kick_body(t))),
    ("no-kicked-record", lambda t: (t.alice, without(kick_body(t), _key(t, "kicked/dave")))),
    (
        "count-unchanged",
        lambda t: (
            t.alice,
            without(kick_body(t), _key(t, "meta/memberCount"), _key(t, "meta/lastKicked")),
        ),
    ),
    (
        "count-minus-2",
        lambda t: (t.alice, replace(kick_body(t), _key(t, "meta/memberCount"), inc(-2))),
    ),
    ("membership-kept", lambda t: (t.alice, without(kick_body(t), _key(t, "members/dave")))),
    ("no-last-kicked", lambda t: (t.alice, without(kick_body(t), _key(t, "meta/lastKicked")))),
    (
        "last-kicked-names-another",
        lambda t: (t.alice, replace(kick_body(t), _key(t, "meta/lastKicked"), "bob")),
    ),
    (
        "kicked-by-someone-else",
        lambda t: (t.alice, edit(kick_body(t), _key(t, "kicked/dave"), by="bob")),
    ),
    (
        "kicked-at-client-clock",
        lambda t: (t.alice, edit(kick_body(t), _key(t, "kicked/dave"), at=1)),
    ),
    (
        "kicked-extra-field",
        lambda t: (t.alice, edit(kick_body(t), _key(t, "kicked/dave"), reason="spam")),
    ),
]


@pytest.mark.parametrize("attack", [a for _, a in KICK_ATTACKS], ids=[n for n, _ in KICK_ATTACKS])
def test_kick_attack_refused_then_honest_kick_allowed(team: Team, attack: KickAttack) -> None:
    actor, body = attack(team)
    denied(actor.update(body))
    ok(team.alice.update(kick_body(team)))
    assert team.world.value(team.s.path("members/dave")) is None
    assert team.world.value(team.s.path("meta/memberCount")) == 3
    assert team.world.value(team.s.path("kicked/dave/by")) == "alice"


def test_kicked_user_reads_own_kick_record_only(team: Team) -> None:
    ok(team.alice.update(kick_body(team)))
    denied(team.dave.get(team.s.path()))
    denied(team.dave.get(team.s.path("transcript")))
    assert ok(team.dave.get(team.s.path("kicked/dave"))).json()["by"] == "alice"
    denied(team.dave.get(team.s.path("kicked")))


def test_owner_cannot_kick_themself(team: Team) -> None:
    denied(team.alice.update(kick_body(team, "alice")))


def test_owner_cannot_ban_a_non_member(team: Team) -> None:
    """Kick needs a membership to remove; a kicked record alone is refused."""
    denied(team.alice.put(team.s.path("kicked/eve"), {"by": "alice", "at": TS}))
    denied(team.alice.update(kick_body(team, "eve")))


def test_owner_cannot_lower_the_count_without_a_kick(team: Team) -> None:
    """Otherwise the owner could let the session grow past maxMembers."""
    denied(team.alice.update({team.s.path("meta/memberCount"): inc(-1)}))
    denied(
        team.alice.update(
            {team.s.path("meta/memberCount"): inc(-1), team.s.path("meta/lastKicked"): "dave"}
        )
    )


def test_owner_cannot_unkick(team: Team) -> None:
    ok(team.alice.update(kick_body(team)))
    denied(team.alice.delete(team.s.path("kicked/dave")))
    denied(team.alice.put(team.s.path("kicked/dave"), {"by": "alice", "at": TS}))


def test_owner_clears_presence_of_a_former_member_only(team: Team) -> None:
    ok(team.dave.put(team.s.path("presence/dave"), model.presence()))
    ok(team.bob.put(team.s.path("presence/bob"), model.presence()))
    denied(team.alice.delete(team.s.path("presence/bob")))  # bob is still a member
    ok(team.alice.update(without(kick_body(team), team.s.path("presence/dave"))))
    ok(team.alice.delete(team.s.path("presence/dave")))


# -- roles ---------------------------------------------------------------------

ROLE_CHANGES_ALLOWED = [
    ("bob", "viewer"),
    ("carol", "editor"),
    ("bob", "editor"),
    ("carol", "viewer"),
]


@pytest.mark.parametrize(("target", "role"), ROLE_CHANGES_ALLOWED)
def test_owner_sets_roles(team: Team, target: str, role: str) -> None:
    ok(team.alice.update(model.set_role(team.s.sid, target, role)))
    assert team.world.value(team.s.path(f"members/{target}/role")) == role
    assert team.world.value(team.s.path(f"roles/{target}")) == role


ROLE_ATTACKS = [
    # (actor, target, role)
    ("carol", "carol", "editor"),  # viewer self-promotion
    ("bob", "bob", "owner"),  # editor self-promotion
    ("bob", "carol", "editor"),  # editor promotes another
    ("bob", "dave", "viewer"),  # editor demotes another
    ("carol", "bob", "viewer"),
    ("eve", "bob", "viewer"),  # outsider
    ("runner", "bob", "viewer"),
    ("nobody", "bob", "viewer"),
    ("alice", "bob", "owner"),  # a second owner
    ("alice", "bob", "admin"),  # unknown role
    ("alice", "alice", "editor"),  # owner on self
    ("alice", "eve", "editor"),  # not a member: would create a partial record
]


@pytest.mark.parametrize(("actor", "target", "role"), ROLE_ATTACKS)
def test_role_change_refused(team: Team, actor: str, target: str, role: str) -> None:
    who = team.world.nobody if actor == "nobody" else getattr(team, actor)
    before = team.world.value(team.s.path(f"members/{target}"))
    denied(who.update(model.set_role(team.s.sid, target, role)))
    denied(who.put(team.s.path(f"members/{target}/role"), role))
    assert team.world.value(team.s.path(f"members/{target}")) == before


def test_role_cannot_be_deleted(team: Team) -> None:
    denied(team.alice.delete(team.s.path("members/bob/role")))


@pytest.mark.parametrize(
    ("actor", "field", "value"),
    [
        ("bob", "name", "Alice"),
        ("alice", "name", "Robert"),
        ("bob", "joinedAt", 1),
        ("bob", "via", "X"),
        ("alice", "via", "X"),
    ],
)
def test_member_record_fields_are_fixed(team: Team, actor: str, field: str, value: Any) -> None:
    denied(getattr(team, actor).put(team.s.path(f"members/bob/{field}"), value))


def test_member_record_cannot_be_replaced_whole(team: Team) -> None:
    record = {"name": "Bob", "role": "owner", "joinedAt": TS}
    denied(team.bob.put(team.s.path("members/bob"), record))
    denied(team.alice.put(team.s.path("members/bob"), {**record, "role": "viewer"}))


def test_runner_cannot_write_membership(team: Team) -> None:
    r = team.runner
    denied(r.put(team.s.path(f"members/{r.uid}"), {"name": "R", "role": "editor", "joinedAt": TS}))
    denied(r.put(team.s.path("members/bob/role"), "viewer"))
    denied(r.update(model.set_role(team.s.sid, "bob", "viewer")))
    denied(r.delete(team.s.path("members/bob")))
    denied(r.update(kick_body(team)))
