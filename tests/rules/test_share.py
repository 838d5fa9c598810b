"""Share: a signed-in user creates a session, its owner record and its invite in one write.

Every attack is the honest share body with one thing changed; it must be
refused, and the honest body must then be accepted in the same namespace, so
each refusal is due to the change and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from emdash_fb.emulator.idtoken import mint_id_token
from tests.rules import model
from tests.rules.model import DAY_MS, DROP, TS, edit, replace, without
from tests.rules.world import Actor, World, denied, ok


@dataclass
class Share:
    sid: str
    code: str
    body: dict[str, Any]

    @property
    def meta(self) -> str:
        return f"sessions/{self.sid}/meta"

    @property
    def member(self) -> str:
        return f"sessions/{self.sid}/members/alice"

    @property
    def invite(self) -> str:
        return f"invites/{self.code}"

    @property
    def name(self) -> str:
        return f"sessions/{self.sid}/names/{model.key('Alice')}"


def honest(**kw: Any) -> Share:
    sid, code = model.push_id(), model.invite_code()
    return Share(sid, code, model.share("alice", "Alice", sid, code, **kw))


def recoded(x: Share, code: str) -> dict[str, Any]:
    """The share body with a different invite code, consistently everywhere."""
    body = edit(without(x.body, x.invite), x.meta, inviteCode=code)
    return replace(body, f"invites/{code}", x.body[x.invite])


Attack = Callable[[Share], dict[str, Any]]

ATTACKS: list[tuple[str, Attack]] = [
    ("owner-is-someone-else", lambda x: edit(x.body, x.meta, owner="eve")),
    ("status-closed", lambda x: edit(x.body, x.meta, status="closed")),
    ("status-unknown", lambda x: edit(x.body, x.meta, status="paused")),
    ("member-count-2", lambda x: edit(x.body, x.meta, memberCount=2)),
    ("member-count-0", lambda x: edit(x.body, x.meta, memberCount=0)),
    ("max-members-1", lambda x: edit(x.body, x.meta, maxMembers=1)),
    ("max-members-51", lambda x: edit(x.body, x.meta, maxMembers=51)),
    ("max-members-fraction", lambda x: edit(x.body, x.meta, maxMembers=2.5)),
    ("max-members-string", lambda x: edit(x.body, x.meta, maxMembers="5")),
    ("idle-timeout-0", lambda x: edit(x.body, x.meta, idleTimeoutMs=0)),
    ("idle-timeout-negative", lambda x: edit(x.body, x.meta, idleTimeoutMs=-1000)),
    ("idle-timeout-missing", lambda x: edit(x.body, x.meta, idleTimeoutMs=DROP)),
    ("created-at-client-clock", lambda x: edit(x.body, x.meta, createdAt=model.now_ms() - 60_000)),
    (
        "last-activity-client-clock",
        lambda x: edit(x.body, x.meta, lastActivity=model.now_ms() - 60_000),
    ),
    ("last-activity-future", lambda x: edit(x.body, x.meta, lastActivity=model.now_ms() + DAY_MS)),
    ("title-121-chars", lambda x: edit(x.body, x.meta, title="t" * 121)),
    ("title-not-string", lambda x: edit(x.body, x.meta, title=7)),
    ("mode-unknown", lambda x: edit(x.body, x.meta, mode="yolo")),
    ("meta-extra-field", lambda x: edit(x.body, x.meta, admin=True)),
    ("meta-missing-owner", lambda x: edit(x.body, x.meta, owner=DROP)),
    ("meta-pre-kicked-list", lambda x: edit(x.body, x.meta, lastKicked="bob")),
    ("no-owner-member-record", lambda x: without(x.body, x.member)),
    ("owner-record-role-editor", lambda x: edit(x.body, x.member, role="editor")),
    ("owner-record-with-via", lambda x: edit(x.body, x.member, via=x.code)),
    ("owner-record-name-empty", lambda x: edit(x.body, x.member, name="")),
    ("owner-record-name-65", lambda x: edit(x.body, x.member, name="n" * 65)),
    ("owner-record-joined-client-clock", lambda x: edit(x.body, x.member, joinedAt=1)),
    ("owner-record-extra-field", lambda x: edit(x.body, x.member, admin=True)),
    (
        "second-owner-record",
        lambda x: replace(
            x.body,
            f"sessions/{x.sid}/members/eve",
            {"name": "Eve", "role": "owner", "joinedAt": TS},
        ),
    ),
    (
        "member-record-for-someone-else",
        lambda x: replace(
            x.body,
            f"sessions/{x.sid}/members/eve",
            {"name": "Eve", "role": "editor", "joinedAt": TS},
        ),
    ),
    ("invite-by-someone-else", lambda x: edit(x.body, x.invite, by="eve")),
    ("invite-for-another-sid", lambda x: edit(x.body, x.invite, sid=model.push_id())),
    (
        "invite-created-client-clock",
        lambda x: edit(x.body, x.invite, createdAt=model.now_ms() - 60_000),
    ),
    ("invite-already-expired", lambda x: edit(x.body, x.invite, expiresAt=model.now_ms() - 1)),
    (
        "invite-expiry-31-days",
        lambda x: edit(x.body, x.invite, expiresAt=model.now_ms() + 31 * DAY_MS),
    ),
    (
        "invite-expiry-mismatch",
        lambda x: edit(x.body, x.invite, expiresAt=model.now_ms() + 3_600_000),
    ),
    ("invite-extra-field", lambda x: edit(x.body, x.invite, uses=0)),
    ("invite-missing-expiry", lambda x: edit(x.body, x.invite, expiresAt=DROP)),
    ("invite-missing-role", lambda x: edit(x.body, x.invite, role=DROP)),
    ("invite-role-owner", lambda x: edit(x.body, x.invite, role="owner")),
    ("max-queued-0", lambda x: edit(x.body, x.meta, maxQueued=0)),
    ("max-queued-11", lambda x: edit(x.body, x.meta, maxQueued=11)),
    ("max-queued-missing", lambda x: edit(x.body, x.meta, maxQueued=DROP)),
    # the owner's name is claimed like anyone's
    ("owner-name-unclaimed", lambda x: without(x.body, x.name)),
    ("owner-name-claimed-for-eve", lambda x: replace(x.body, x.name, "eve")),
    (
        "owner-name-claimed-under-another-key",
        lambda x: replace(without(x.body, x.name), f"sessions/{x.sid}/names/someone", "alice"),
    ),
    # an email the token doesn't carry can't be recorded as the owner's
    ("owner-email-unverified", lambda x: edit(x.body, x.meta, ownerEmail="alice@corp.example")),
    ("owner-domain-unverified", lambda x: edit(x.body, x.meta, ownerDomain="corp.example")),
    (
        "invite-code-lower-case",
        lambda x: recoded(x, x.code.lower() if x.code.lower() != x.code else "abcdefghjk"),
    ),
    ("invite-code-9-chars", lambda x: recoded(x, x.code[:9])),
    ("invite-code-11-chars", lambda x: recoded(x, x.code + "A")),
    ("invite-code-with-U", lambda x: recoded(x, "U" + x.code[1:])),
    ("invite-code-with-dash", lambda x: recoded(x, x.code[:5] + "-" + x.code[6:])),
    ("meta-names-code-without-invite", lambda x: without(x.body, x.invite)),
    (
        "invite-for-code-meta-does-not-name",
        lambda x: replace(
            without(x.body, x.invite), f"invites/{model.invite_code()}", x.body[x.invite]
        ),
    ),
]


@pytest.mark.parametrize("attack", [a for _, a in ATTACKS], ids=[n for n, _ in ATTACKS])
def test_share_attack_refused_then_honest_share_allowed(world: World, attack: Attack) -> None:
    alice = world.owner("alice")
    x = honest()
    denied(alice.update(attack(x)))
    ok(alice.update(x.body))
    assert world.value(f"{x.meta}/owner") == "alice"


def test_share_creates_a_readable_session(world: World) -> None:
    alice = world.owner("alice")
    x = honest(max_members=2, idle_ms=60_000, title="", mode="plan")
    ok(alice.update(x.body))
    got = ok(alice.get(f"sessions/{x.sid}")).json()
    assert got["meta"]["memberCount"] == 1 and got["meta"]["status"] == "open"
    assert got["members"]["alice"]["role"] == "owner"
    assert ok(world.user("eve").get(x.invite)).json()["sid"] == x.sid


def test_share_without_invite_then_rotate_creates_one(world: World) -> None:
    """An invite is optional at share; the owner can issue one later."""
    alice = world.owner("alice")
    x = honest()
    body = without(edit(x.body, x.meta, inviteCode=DROP, inviteExpiresAt=DROP), x.invite)
    ok(alice.update(body))
    ok(alice.update(model.rotate("alice", x.sid, None, x.code)))


@pytest.mark.parametrize(
    ("label", "sid"),
    [("short", "abc"), ("21-chars", "A" * 21), ("bad-char", "A" * 19 + "~")],
)
def test_session_id_must_be_a_push_id(world: World, label: str, sid: str) -> None:
    alice, code = world.owner("alice"), model.invite_code()
    denied(alice.update(model.share("alice", "Alice", sid, code)))
    ok(alice.update(model.share("alice", "Alice", model.push_id(), code)))


def test_share_by_nobody_refused(world: World) -> None:
    x = honest()
    denied(world.nobody.update(x.body))
    ok(world.owner("alice").update(x.body))


def test_share_as_someone_else_refused(world: World) -> None:
    """eve (allowed herself) sends alice's share body: every uid in it must be the caller's own."""
    x = honest()
    world.owner("eve")
    denied(world.user("eve").update(x.body))
    ok(world.owner("alice").update(x.body))


def test_a_stranger_cannot_create_a_session(world: World) -> None:
    """Signing in is not enough: only owners on the allowlist (an admin write) may share."""
    eve = world.user("eve")
    sid, code = model.push_id(), model.invite_code()
    body = model.share("eve", "Eve", sid, code)
    denied(eve.update(body))
    # nor can she put herself on the allowlist, by uid, email or domain
    denied(eve.put("allow/uid/eve", True))
    denied(eve.put("allow/email/eve@corp,example", True))
    denied(eve.put("allow/domain/corp,example", True))
    denied(eve.get("allow"))
    denied(eve.get("allow/uid/alice"))
    world.allow(eve)
    assert ok(eve.get("allow/uid/eve")).json() is True  # her own entry, to explain a refusal
    ok(eve.update(body))


def test_a_revoked_owner_cannot_create_a_session(world: World) -> None:
    alice = world.owner("alice")
    ok(world.admin.delete("allow/uid/alice"))
    x = honest()
    denied(alice.update(x.body))


def test_runner_cannot_share(world: World) -> None:
    runner = world.runner()
    sid, code = model.push_id(), model.invite_code()
    denied(runner.update(model.share(runner.uid, "Runner", sid, code)))


def test_share_cannot_take_over_an_existing_session(world: World) -> None:
    alice, eve = world.user("alice"), world.user("eve")
    s = world.share(alice)
    body = model.share("eve", "Eve", s.sid, model.invite_code())
    denied(eve.update(body))
    # nor overwrite the meta alone, nor add herself as owner
    denied(eve.put(s.path("meta"), body[f"sessions/{s.sid}/meta"]))
    denied(eve.put(s.path("members/eve"), {"name": "Eve", "role": "owner", "joinedAt": TS}))
    assert world.value(s.path("meta/owner")) == "alice"


def test_share_cannot_reuse_a_taken_invite_code(world: World) -> None:
    alice, eve = world.user("alice"), world.owner("eve")
    s = world.share(alice)
    assert s.code is not None
    denied(eve.update(model.share("eve", "Eve", model.push_id(), s.code)))
    ok(eve.update(model.share("eve", "Eve", model.push_id(), model.invite_code())))
    assert world.value(f"invites/{s.code}/sid") == s.sid


@pytest.mark.parametrize("how", ["revoke", "rotate", "close"])
def test_a_code_ever_registered_is_never_registered_again(world: World, how: str) -> None:
    """After a revoke, rotate or close the code is a tombstone: a copy of the session
    (same title, same owner name) can't take it over, and the owner can't reuse it."""
    alice, eve = world.user("alice", "Alice"), world.owner("eve", "Alice")
    s = world.share(alice)
    assert s.code is not None
    if how == "revoke":
        ok(alice.update(model.revoke(s.sid, s.code)))
    elif how == "rotate":
        ok(alice.update(model.rotate("alice", s.sid, s.code, model.invite_code())))
    else:
        ok(alice.update(model.close(s.sid, s.code)))
    assert world.value(f"invites/{s.code}/sid") == s.sid  # kept, as a tombstone
    assert isinstance(world.value(f"invites/{s.code}/revokedAt"), int)
    denied(eve.update(model.share("eve", "Alice", model.push_id(), s.code)))
    denied(eve.delete(f"invites/{s.code}"))
    denied(alice.delete(f"invites/{s.code}"))
    denied(alice.put(f"invites/{s.code}/revokedAt", None))
    if how != "close":
        denied(alice.update(model.rotate("alice", s.sid, None, s.code)))
    assert world.value(f"invites/{s.code}/sid") == s.sid


def test_invite_cannot_point_at_someone_elses_session(world: World) -> None:
    """eve can't mint a code that leads into alice's session."""
    alice, eve = world.user("alice"), world.user("eve")
    s = world.share(alice)
    code = model.invite_code()
    invite = {"sid": s.sid, "by": "eve", "createdAt": TS, "expiresAt": model.now_ms() + DAY_MS}
    denied(eve.put(f"invites/{code}", invite))
    denied(eve.update({f"invites/{code}": invite, s.path("meta/inviteCode"): code}))


def test_share_pieces_cannot_be_written_one_by_one(world: World) -> None:
    alice = world.owner("alice")
    x = honest()
    denied(alice.put(x.member, x.body[x.member]))
    denied(alice.put(x.meta, x.body[x.meta]))
    denied(alice.put(x.invite, x.body[x.invite]))
    denied(alice.put(f"sessions/{x.sid}", {"meta": x.body[x.meta]}))


def email_user(world: World, uid: str, email: str, *, verified: bool = True) -> Actor:
    token = mint_id_token(
        project_id=world.project_id,
        uid=uid,
        provider="password",
        email=email,
        email_verified=verified,
    )
    return Actor(world.raw.as_token(token), uid, "Alice")


def emailed_share(email: str) -> Share:
    """The honest share body of an owner who signs in with ``email``."""
    x = honest()
    domain = email.rsplit("@", 1)[1].lower()
    return Share(x.sid, x.code, edit(x.body, x.meta, ownerEmail=email.lower(), ownerDomain=domain))


@pytest.mark.parametrize(
    ("email", "allowance"),
    [
        ("Alice@Corp.Example", "email/alice@corp,example"),
        ("alice@corp.example", "domain/corp,example"),
        # characters a key can't hold: the email allowance can't apply, the domain one must
        ("a#b@corp.example", "domain/corp,example"),
        ("a[1]$x@corp.example", "domain/corp,example"),
        ("a/b@corp.example", "domain/corp,example"),
    ],
)
def test_owners_by_verified_email_or_domain(world: World, email: str, allowance: str) -> None:
    ok(world.admin.put(f"allow/{allowance}", True))
    unverified = email_user(world, "alice", email, verified=False)
    denied(unverified.update(emailed_share(email).body))
    ok(email_user(world, "alice", email).update(emailed_share(email).body))


def test_a_look_alike_address_is_not_on_the_allowance(world: World) -> None:
    ok(world.admin.put("allow/email/alice@corp,example", True))
    ok(world.admin.put('allow/email/"alice,x"@evil,example', True))  # for "alice.x"@evil.example
    for email in (
        "alice@corp.example.evil",
        "alice.corp@example",
        "alice@corp,example",  # a comma would read as the dot of the allowance key
        '"alice,x"@evil.example',
    ):
        denied(email_user(world, "alice", email).update(emailed_share(email).body))
    ok(
        email_user(world, "alice", '"alice.x"@evil.example').update(
            emailed_share('"alice.x"@evil.example').body
        )
    )
