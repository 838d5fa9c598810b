"""Every write a member makes survives a lost answer: no false error, no second copy.

The member's database traffic goes through a fault proxy that forwards one
request whole (the server applies it) and resets the connection before the
answer comes back: the client's HTTP layer may replay it (the rules then
refuse the replay: the id is used, the record exists) or give up with a
network error. Either way the operation must report what really happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from tests.support.allow import allow_owner
from tests.support.faultproxy import FaultProxy


@pytest.fixture
def proxy(rules_emu: ThreadedEmulator) -> Iterator[FaultProxy]:
    with FaultProxy.in_front_of(rules_emu.database_host, seed=7) as p:
        yield p


@pytest.fixture
def through(
    proxy: FaultProxy, rules_emu: ThreadedEmulator, tmp_path: Path
) -> Callable[..., AppContext]:
    """A signed-in member whose database requests go through the proxy."""

    def make(name: str, *, owner: bool = False) -> AppContext:
        env = {
            **rules_emu.env(),
            "FIREBASE_DATABASE_EMULATOR_HOST": proxy.address,
            "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        }
        app = AppContext(profile=name, env=env)
        ident = app.auth.sign_in_anonymous(name)
        if owner:
            allow_owner(rules_emu.project_id, rules_emu.env(), ident.uid)
        return app

    return make


@pytest.mark.parametrize("lost", [1, 2], ids=["replayed", "given-up"])
def test_a_send_whose_answer_is_lost_is_stored_once_and_reported_sent(
    proxy: FaultProxy, through: Callable[..., AppContext], lost: int
) -> None:
    """One lost answer: the client replays and the rules refuse the replay. Two: the client
    gives up. Both times the message is there once, and send says so."""
    alice = through("alice", owner=True)
    sid = alice.sessions.share().session
    proxy.lose_response(method="PATCH", count=lost)
    sent = alice.sessions.send(sid, "was my send stored?")
    assert proxy.stats["lost_responses"] == lost
    msgs = alice.sessions.history(sid)
    assert [(m.id, m.text) for m in msgs] == [(sent.message, "was my send stored?")]
    assert [q.mid for q in alice.sessions.state(sid).queue] == [sent.message]


def test_join_leave_and_owner_actions_survive_lost_answers(
    proxy: FaultProxy, through: Callable[..., AppContext]
) -> None:
    alice, bob = through("alice", owner=True), through("bob")
    shared = alice.sessions.share()
    sid = shared.session
    bob_uid = bob.auth.current().uid

    def lost_once(op: Callable[[], object]) -> object:
        before = proxy.stats["lost_responses"]
        proxy.lose_response(method="PATCH")
        result = op()
        assert proxy.stats["lost_responses"] == before + 1  # the fault really hit this write
        return result

    assert lost_once(lambda: bob.sessions.join(shared.invite).session) == sid
    assert alice.sessions.meta(sid).member_count == 2  # an increment: never applied twice
    lost_once(lambda: alice.sessions.set_role(sid, bob_uid, "viewer"))
    code = str(lost_once(lambda: alice.sessions.rotate_invite(sid)))
    assert alice.sessions.meta(sid).invite_code == code.replace("-", "")
    lost_once(lambda: alice.sessions.set_mode(sid, "plan"))
    mid = str(lost_once(lambda: alice.sessions.send(sid, "cancel me").message))  # type: ignore[attr-defined]
    assert lost_once(lambda: alice.sessions.cancel(sid, mid)) == "skipped"
    lost_once(lambda: bob.sessions.leave(sid))
    assert alice.sessions.meta(sid).member_count == 1
    state = alice.sessions.state(sid)
    assert [m.state for m in state.messages] == ["cancelled"] and state.queue == []
    assert state.meta.mode == "plan"


def test_a_kick_whose_answer_is_lost_still_kills_the_invite(
    proxy: FaultProxy, through: Callable[..., AppContext]
) -> None:
    alice, bob = through("alice", owner=True), through("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    proxy.lose_response(method="PATCH", count=2)
    new = alice.sessions.kick(shared.session, bob.auth.current().uid)
    assert new and alice.sessions.meta(shared.session).invite_code == new.replace("-", "")
    assert alice.sessions.meta(shared.session).member_count == 1
