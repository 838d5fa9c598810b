"""Session settings: mode, invites (rotate, revoke), close, and the fields nobody may change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.rules import model
from tests.rules.model import DAY_MS, TS, edit, replace, without
from tests.rules.world import Team, denied, ok


def actor(t: Team, name: str):
    return t.world.nobody if name == "nobody" else getattr(t, name)


# -- mode ----------------------------------------------------------------------


@pytest.mark.parametrize(("who", "mode"), [("alice", "plan"), ("bob", "plan"), ("bob", "code")])
def test_owner_and_editors_set_mode(team: Team, who: str, mode: str) -> None:
    ok(actor(team, who).put(team.s.path("meta/mode"), mode))
    assert team.world.value(team.s.path("meta/mode")) == mode


@pytest.mark.parametrize(
    ("who", "mode"),
    [
        ("carol", "plan"),
        ("eve", "plan"),
        ("runner", "plan"),
        ("nobody", "plan"),
        ("alice", "yolo"),
        ("alice", 1),
    ],
)
def test_mode_refused(team: Team, who: str, mode: Any) -> None:
    denied(actor(team, who).put(team.s.path("meta/mode"), mode))
    assert team.world.value(team.s.path("meta/mode")) == "code"


def test_mode_cannot_be_deleted(team: Team) -> None:
    denied(team.alice.delete(team.s.path("meta/mode")))


# -- fields nobody may change (or not like this) --------------------------------

REFUSED_META = [
    ("owner", "bob"),
    ("owner", "alice"),  # even an unchanged value needs a grant
    ("createdAt", TS),
    ("maxMembers", 50),
    ("idleTimeoutMs", 10 * DAY_MS),
    ("title", "renamed"),
    ("memberCount", 10),
    ("status", "open"),
    ("inviteExpiresAt", "never"),
    ("lastKicked", "bob"),
    ("extra", True),
]


@pytest.mark.parametrize(
    ("field", "value"), REFUSED_META, ids=[f"{f}={v}" for f, v in REFUSED_META]
)
def test_owner_meta_write_refused(team: Team, field: str, value: Any) -> None:
    before = team.world.value(team.s.path("meta"))
    denied(team.alice.put(team.s.path(f"meta/{field}"), value))
    assert team.world.value(team.s.path("meta")) == before


@pytest.mark.parametrize(
    "field", ["owner", "createdAt", "maxMembers", "idleTimeoutMs", "title", "status"]
)
def test_owner_cannot_delete_meta_fields(team: Team, field: str) -> None:
    denied(team.alice.delete(team.s.path(f"meta/{field}")))


def test_nobody_replaces_or_deletes_meta_whole(team: Team) -> None:
    meta = team.world.value(team.s.path("meta"))
    denied(team.alice.put(team.s.path("meta"), {**meta, "maxMembers": 50}))
    denied(team.alice.delete(team.s.path("meta")))
    denied(team.alice.delete(team.s.path()))
    denied(team.runner.delete(team.s.path()))


# -- last activity -------------------------------------------------------------


def test_activity_bumped_by_the_runner_alone(team: Team) -> None:
    ok(team.runner.put(team.s.path("meta/lastActivity"), TS))


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_members_bump_activity_only_by_sending(team: Team, who: str) -> None:
    """A bare write (or one naming an old message) would keep a session from ever idling."""
    member = actor(team, who)
    denied(member.put(team.s.path("meta/lastActivity"), TS))
    stale = {
        team.s.path("meta/lastActivity"): TS,
        team.s.path("meta/lastMessage"): team.queued,
    }
    denied(member.update(stale))
    mid = model.push_id()
    slot = team.world.free_slot(team.s, member)
    ok(member.update(model.send(member.uid, member.name, team.s.sid, mid, "hi", slot=slot)))
    assert team.world.value(team.s.path("meta/lastMessage")) == mid


@pytest.mark.parametrize(
    ("who", "value"),
    [
        ("carol", TS),  # viewers don't keep a session alive
        ("eve", TS),
        ("nobody", TS),
        ("alice", model.now_ms() + DAY_MS),  # client clock: would postpone idling at will
        ("runner", model.now_ms() + DAY_MS),
        ("alice", None),
    ],
    ids=["viewer", "outsider", "nobody", "owner-future", "runner-future", "owner-delete"],
)
def test_activity_refused(team: Team, who: str, value: Any) -> None:
    r = actor(team, who).put(team.s.path("meta/lastActivity"), value)
    denied(r)


# -- rotate / revoke -----------------------------------------------------------


def rotate_body(t: Team) -> tuple[str, dict[str, Any]]:
    new = model.invite_code()
    return new, model.rotate("alice", t.s.sid, t.s.code, new)


RotateAttack = Callable[[Team, str, dict[str, Any]], tuple[Any, dict[str, Any]]]

ROTATE_ATTACKS: list[tuple[str, RotateAttack]] = [
    ("editor", lambda t, new, b: (t.bob, edit(b, f"invites/{new}", by="bob"))),
    ("viewer", lambda t, new, b: (t.carol, edit(b, f"invites/{new}", by="carol"))),
    ("outsider", lambda t, new, b: (t.eve, edit(b, f"invites/{new}", by="eve"))),
    ("runner", lambda t, new, b: (t.runner, edit(b, f"invites/{new}", by=t.runner.uid))),
    ("code-without-invite", lambda t, new, b: (t.alice, without(b, f"invites/{new}"))),
    ("invite-without-code", lambda t, new, b: (t.alice, without(b, t.s.path("meta/inviteCode")))),
    (
        "expiry-mismatch",
        lambda t, new, b: (
            t.alice,
            replace(b, t.s.path("meta/inviteExpiresAt"), model.now_ms() + 5000),
        ),
    ),
    (
        "invite-for-other-sid",
        lambda t, new, b: (t.alice, edit(b, f"invites/{new}", sid=model.push_id())),
    ),
    (
        "bad-code",
        lambda t, new, b: (t.alice, model.rotate("alice", t.s.sid, t.s.code, "not-a-code")),
    ),
    (
        "reuse-live-code",
        lambda t, new, b: (t.alice, model.rotate("alice", t.s.sid, None, t.s.code)),
    ),
]


@pytest.mark.parametrize(
    "attack", [a for _, a in ROTATE_ATTACKS], ids=[n for n, _ in ROTATE_ATTACKS]
)
def test_rotate_attack_refused_then_rotate_allowed(team: Team, attack: RotateAttack) -> None:
    new, body = rotate_body(team)
    who, bad = attack(team, new, body)
    denied(who.update(bad))
    ok(team.alice.update(body))
    assert team.world.value(team.s.path("meta/inviteCode")) == new
    assert team.world.value(f"invites/{team.s.code}/revokedAt")  # a tombstone


def test_code_cannot_point_at_another_sessions_invite(team: Team) -> None:
    other = team.world.share(team.eve)
    denied(team.alice.put(team.s.path("meta/inviteCode"), other.code))


@pytest.mark.parametrize("who", ["bob", "carol", "eve", "runner", "nobody"])
def test_revoke_by_non_owner_refused(team: Team, who: str) -> None:
    assert team.s.code is not None
    denied(actor(team, who).update(model.revoke(team.s.sid, team.s.code)))
    denied(actor(team, who).delete(f"invites/{team.s.code}"))
    denied(actor(team, who).delete(team.s.path("meta/inviteCode")))
    denied(actor(team, who).put(f"invites/{team.s.code}/revokedAt", TS))
    ok(team.alice.update(model.revoke(team.s.sid, team.s.code)))
    assert team.world.value(f"invites/{team.s.code}/revokedAt")


def test_invite_cannot_be_edited_in_place(team: Team) -> None:
    later = model.now_ms() + 2 * DAY_MS
    denied(team.alice.put(f"invites/{team.s.code}/expiresAt", later))
    denied(team.alice.put(f"invites/{team.s.code}/sid", model.push_id()))
    invite = team.world.value(f"invites/{team.s.code}")
    denied(team.alice.put(f"invites/{team.s.code}", {**invite, "expiresAt": later}))


# -- close ---------------------------------------------------------------------


@pytest.mark.parametrize("who", ["bob", "carol", "eve", "runner", "nobody"])
def test_close_by_non_owner_refused(team: Team, who: str) -> None:
    denied(actor(team, who).update(model.close(team.s.sid, team.s.code)))
    denied(actor(team, who).put(team.s.path("meta/status"), "closed"))
    ok(team.alice.update(model.close(team.s.sid, team.s.code)))
    assert team.world.value(team.s.path("meta/status")) == "closed"


def test_closed_session_cannot_be_reopened(team: Team) -> None:
    ok(team.alice.update(model.close(team.s.sid, team.s.code)))
    denied(team.alice.put(team.s.path("meta/status"), "open"))


@pytest.mark.parametrize("value", ["paused", "", 0, None])
def test_status_values(team: Team, value: Any) -> None:
    denied(team.alice.put(team.s.path("meta/status"), value))
