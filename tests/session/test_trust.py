"""Who may drive the agent, through the product's own session library (real emulator, real rules).

The rules suite attacks every path with raw REST; these tests walk the same
ground as the product does it, and check the one-line reasons people see.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from emdash_fb.cli.context import AppContext
from emdash_fb.session.errors import (
    BadInvite,
    Kicked,
    NameTaken,
    NotAllowed,
    SessionError,
    TooManyWaiting,
)
from emdash_fb.session.names import BadName

MakeUser = Callable[..., AppContext]


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text and len(text) < 200, text
    return text


def test_a_stranger_cannot_start_a_session(make_user: MakeUser) -> None:
    eve = make_user("eve", owner=False)
    with pytest.raises(NotAllowed) as exc:
        eve.sessions.share()
    text = one_line(exc)
    assert "may not start sessions" in text and eve.auth.current().uid in text


def test_a_viewer_who_leaves_and_rejoins_is_still_a_viewer(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    alice.sessions.set_role(shared.session, bob.auth.current().uid, "viewer")
    bob.sessions.leave(shared.session)
    again = bob.sessions.join(shared.invite)
    assert {m.name: m.role for m in again.members}["bob"] == "viewer"
    with pytest.raises(NotAllowed, match="viewer"):
        bob.sessions.send(shared.session, "let me in")


def test_the_owner_chooses_the_role_joiners_get(make_user: MakeUser) -> None:
    alice, bob, cy = make_user("alice"), make_user("bob"), make_user("cy")
    shared = alice.sessions.share(join_role="viewer")
    roles = {m.name: m.role for m in bob.sessions.join(shared.invite).members}
    assert roles["bob"] == "viewer"
    alice.sessions.set_join_role(shared.session, "editor")
    assert {m.name: m.role for m in cy.sessions.join(shared.invite).members}["cy"] == "editor"
    assert alice.sessions.invite_role(alice.sessions.meta(shared.session)) == "editor"
    with pytest.raises(NotAllowed):
        cy.sessions.set_join_role(shared.session, "editor")


def test_a_kick_sticks_and_the_owner_sees_the_new_code(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    new = alice.sessions.kick(shared.session, bob.auth.current().uid)
    assert new is not None and new != shared.invite
    assert alice.sessions.meta(shared.session).invite_code == new.replace("-", "")
    with pytest.raises(Kicked):
        bob.sessions.join(new)
    # the same person with a new account, through the code he knew: dead
    bob2 = make_user("bob-again")
    with pytest.raises(BadInvite) as exc:
        bob2.sessions.join(shared.invite)
    assert "no longer valid" in one_line(exc)
    # ... and under the same name with the new code (if someone leaks it): the name is bound
    bob3 = AppContext(profile="bob-third", env=bob.env)
    bob3.auth.sign_in_anonymous("bob")
    with pytest.raises(NameTaken) as exc2:
        bob3.sessions.join(new)
    assert "taken" in one_line(exc2)


@pytest.mark.parametrize("name", ["Alice", "ALICE", "a1ice", "\u0430lice", "Ali ce"])
def test_a_look_alike_name_is_refused_with_a_reason(make_user: MakeUser, name: str) -> None:
    alice = make_user("alice")
    shared = alice.sessions.share()
    eve = make_user(name, profile="eve")
    with pytest.raises(NameTaken) as exc:
        eve.sessions.join(shared.invite)
    assert "--name" in one_line(exc)
    assert len(alice.sessions.who(shared.session)) == 1  # nothing half-written


@pytest.mark.parametrize("name", ["agent", "Agent", "System", "echo"])
def test_reserved_names_are_refused(make_user: MakeUser, name: str) -> None:
    alice = make_user("alice")
    shared = alice.sessions.share()
    eve = make_user(name)
    with pytest.raises(BadName) as exc:
        eve.sessions.join(shared.invite)
    assert "reserved" in one_line(exc)


def test_a_name_with_invisible_characters_is_refused(make_user: MakeUser) -> None:
    alice = make_user("alice")
    shared = alice.sessions.share()
    eve = AppContext(profile="eve", env=alice.env)
    eve.auth.sign_in_anonymous("eve")
    # a profile name saved with a bidi override (e.g. by an older client)
    ident = eve.store.load()
    assert ident is not None
    ident.name = "eve\u202e"
    eve.store.save(ident)
    with pytest.raises(SessionError) as exc:
        eve.sessions.join(shared.invite)
    assert "U+202E" in one_line(exc)


def test_waiting_messages_per_member_are_limited(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share(max_queued=3)
    bob.sessions.join(shared.invite)
    for i in range(3):
        bob.sessions.send(shared.session, f"m{i}")
    with pytest.raises(TooManyWaiting) as exc:
        bob.sessions.send(shared.session, "one more")
    assert one_line(exc) == "you have 3 messages waiting: wait for the agent or /cancel one"
    # the owner isn't stuck behind bob's limit, and a cancel frees a slot
    alice.sessions.send(shared.session, "owner's turn")
    first = bob.sessions.history(shared.session)[0]
    assert bob.sessions.cancel(shared.session, first.id) == "skipped"
    bob.sessions.send(shared.session, "now it fits")
    assert len(alice.sessions.state(shared.session).queue) == 4
