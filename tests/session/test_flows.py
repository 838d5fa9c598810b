"""The seed's flows with several identities at once, over the emulator and the real rules."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest

from emdash_fb.cli.context import AppContext
from emdash_fb.session.errors import BadInvite, BadMessage, Kicked, NotAllowed, NotMember
from emdash_fb.session.ops import MAX_TEXT

MakeUser = Callable[[str], AppContext]


def test_share_join_history_and_both_send(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share("pairing")
    first = alice.sessions.send(shared.session, "hello from alice")
    assert first.position == 1
    joined = bob.sessions.join(shared.invite)
    assert joined.session == shared.session
    assert [m.text for m in joined.messages] == ["hello from alice"]
    assert sorted(m.name for m in joined.members) == ["alice", "bob"]
    second = bob.sessions.send(shared.session, "and bob")
    assert second.position == 2
    a_hist = [(m.name, m.text) for m in alice.sessions.history(shared.session)]
    b_hist = [(m.name, m.text) for m in bob.sessions.history(shared.session)]
    assert a_hist == b_hist == [("alice", "hello from alice"), ("bob", "and bob")]


def test_rapid_messages_from_both_keep_server_order(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share(max_queued=10)  # the most waiting messages a member may have
    bob.sessions.join(shared.invite)
    sent: list[str] = []
    lock = threading.Lock()

    def blast(app: AppContext, tag: str) -> None:
        for i in range(10):
            mid = app.sessions.send(shared.session, f"{tag}{i}").message
            with lock:
                sent.append(mid)

    threads = [threading.Thread(target=blast, args=(u, t)) for u, t in ((alice, "a"), (bob, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hist_a = alice.sessions.history(shared.session)
    hist_b = bob.sessions.history(shared.session)
    assert [m.id for m in hist_a] == [m.id for m in hist_b]
    assert len(hist_a) == 20
    # server order: non-decreasing server timestamps; each sender's own messages in send order
    assert [m.at for m in hist_a] == sorted(m.at for m in hist_a)
    for tag in "ab":
        mine = [m.text for m in hist_a if m.text.startswith(tag)]
        assert mine == [f"{tag}{i}" for i in range(10)]
    # queue positions match history order
    queue = alice.sessions.state(shared.session).queue
    assert [q.mid for q in queue] == [m.id for m in hist_a]


def test_rejoin_is_idempotent_and_keeps_role(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    alice.sessions.set_role(shared.session, bob.auth.current().uid, "viewer")
    again = bob.sessions.join(shared.invite.lower().replace("-", ""))
    assert again.already_member
    roles = {m.name: m.role for m in again.members}
    assert roles == {"alice": "owner", "bob": "viewer"}
    assert alice.sessions.meta(shared.session).member_count == 2


def test_leave_is_seen_by_others(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    assert len(alice.sessions.who(shared.session)) == 2
    bob.sessions.leave(shared.session)
    assert [p.member.name for p in alice.sessions.who(shared.session)] == ["alice"]
    assert alice.sessions.meta(shared.session).member_count == 1
    with pytest.raises(NotMember):
        bob.sessions.history(shared.session)


@pytest.mark.parametrize("code", ["AAAAA-AAAAA", "not a code", "12345"])
def test_wrong_code_is_a_clear_error(make_user: MakeUser, code: str) -> None:
    bob = make_user("bob")
    with pytest.raises(BadInvite) as exc:
        bob.sessions.join(code)
    assert "\n" not in str(exc.value) and len(str(exc.value)) < 120


def test_revoked_and_rotated_codes(make_user: MakeUser) -> None:
    alice, bob, cy = make_user("alice"), make_user("bob"), make_user("cy")
    shared = alice.sessions.share()
    alice.sessions.revoke_invite(shared.session)
    with pytest.raises(BadInvite):
        bob.sessions.join(shared.invite)
    new = alice.sessions.rotate_invite(shared.session)
    assert bob.sessions.join(new).session == shared.session
    newer = alice.sessions.rotate_invite(shared.session)
    with pytest.raises(BadInvite):
        cy.sessions.join(new)
    cy.sessions.join(newer)


def test_long_message_refused_cleanly_or_accepted_within_limit(make_user: MakeUser) -> None:
    alice = make_user("alice")
    shared = alice.sessions.share()
    with pytest.raises(BadMessage, match="too long"):
        alice.sessions.send(shared.session, "x" * (MAX_TEXT + 1))
    assert alice.sessions.history(shared.session) == []
    assert alice.sessions.state(shared.session).queue == []
    ok = alice.sessions.send(shared.session, "y" * MAX_TEXT)
    assert alice.sessions.history(shared.session)[0].text == "y" * MAX_TEXT
    assert ok.position == 1


def test_other_peoples_text_is_stored_as_sent(make_user: MakeUser) -> None:
    alice = make_user("alice")
    shared = alice.sessions.share()
    nasty = "[bold red]hi[/] \x1b[31mred\x1b[0m \x07 <script> 'quote' \"dq\" ünï 🎉"
    alice.sessions.send(shared.session, nasty)
    assert alice.sessions.history(shared.session)[0].text == nasty


def test_cancel_queued_message(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    m1 = alice.sessions.send(shared.session, "one").message
    m2 = bob.sessions.send(shared.session, "two").message
    with pytest.raises(NotAllowed):
        bob.sessions.cancel(shared.session, m1)
    assert bob.sessions.cancel(shared.session, m2) == "skipped"
    state = alice.sessions.state(shared.session)
    assert [q.mid for q in state.queue] == [m1]
    assert [m.state for m in state.messages] == ["", "cancelled"]
    assert alice.sessions.cancel(shared.session, m1) == "skipped"  # the owner may


def test_viewer_cannot_send(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    alice.sessions.set_role(shared.session, bob.auth.current().uid, "viewer")
    with pytest.raises(NotAllowed, match="viewer"):
        bob.sessions.send(shared.session, "let me in")


def test_kicked_user_cannot_rejoin(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    alice.sessions.kick(shared.session, bob.auth.current().uid)
    with pytest.raises(Kicked):
        bob.sessions.history(shared.session)
    with pytest.raises(Kicked):
        bob.sessions.join(shared.invite)


def test_non_owner_actions_refused(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    for action in (
        lambda: bob.sessions.kick(shared.session, alice.auth.current().uid),
        lambda: bob.sessions.set_role(shared.session, bob.auth.current().uid, "editor"),
        lambda: bob.sessions.rotate_invite(shared.session),
        lambda: bob.sessions.close(shared.session),
    ):
        with pytest.raises(NotAllowed):
            action()


def test_closed_session_is_read_only(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    alice.sessions.send(shared.session, "before")
    alice.sessions.close(shared.session)
    from emdash_fb.session.errors import SessionClosed

    with pytest.raises(SessionClosed):
        bob.sessions.send(shared.session, "after")
    assert [m.text for m in bob.sessions.history(shared.session)] == ["before"]


def test_idle_session_closes(make_user: MakeUser) -> None:
    import time

    from emdash_fb.session.errors import SessionClosed

    alice = make_user("alice")
    shared = alice.sessions.share(idle_timeout_s=1)
    time.sleep(1.2)
    assert not alice.sessions.meta(shared.session).is_open(alice.sessions.now_ms())
    with pytest.raises(SessionClosed):
        alice.sessions.send(shared.session, "anyone?")


def test_member_limit_holds(make_user: MakeUser) -> None:
    from emdash_fb.session.errors import SessionFull

    alice = make_user("alice")
    shared = alice.sessions.share(max_members=2)
    make_user("bob").sessions.join(shared.invite)
    with pytest.raises(SessionFull):
        make_user("cy").sessions.join(shared.invite)
    assert alice.sessions.meta(shared.session).member_count == 2


def test_who_reports_typing_and_presence(make_user: MakeUser) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    bob.sessions.typing(shared.session)
    alice.sessions.heartbeat(shared.session)
    people = {p.member.name: p for p in alice.sessions.who(shared.session)}
    assert people["bob"].typing and not people["bob"].away
    assert not people["alice"].typing and not people["alice"].away
    assert json.loads(json.dumps(people["bob"].to_json()))["typing"] is True


def test_length_limit_counts_like_the_rules(make_user: MakeUser) -> None:
    alice = make_user("alice")
    shared = alice.sessions.share()
    emoji = "🎉" * (MAX_TEXT // 2)  # 8000 code points, 16000 UTF-16 units: at the limit
    alice.sessions.send(shared.session, emoji)
    with pytest.raises(BadMessage, match="too long"):
        alice.sessions.send(shared.session, emoji + "🎉")
    assert len(alice.sessions.history(shared.session)) == 1


def test_send_uses_the_name_the_session_knows(make_user: MakeUser, user_env: dict) -> None:
    alice = make_user("alice")
    shared = alice.sessions.share()
    bob = AppContext(profile="bob", env=user_env)
    bob.auth.sign_in_email("bob@example.com", "secret123", create=True, name="bob")
    bob.sessions.join(shared.invite)
    # same account, new display name: the session still knows him as bob
    again = AppContext(profile="bob", env=user_env)
    again.auth.sign_in_email("bob@example.com", "secret123", name="robert")
    assert again.auth.current().name == "robert"
    again.sessions.send(shared.session, "hi")
    assert alice.sessions.history(shared.session)[-1].name == "bob"
