"""Shared approvals end to end below the screen: the real runner, the real rules, real members.

The echo agent asks for tool ``Bash`` on ``run: CMD`` and really runs CMD when allowed,
so what an answer did is visible on disk, in the reply and in the history.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.runner.agents import load_agent
from emdash_fb.session.attachments import read_file
from emdash_fb.session.errors import BadMessage, NotAllowed
from tests.runner.test_runner import owner_get, replies, wait_for
from tests.support.runner import BackgroundRunner

MakeUser = Callable[..., AppContext]


def team(make_user: MakeUser) -> tuple[AppContext, AppContext, AppContext, str]:
    alice, bob, dave = make_user("alice"), make_user("bob"), make_user("dave")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    dave.sessions.join(shared.invite)
    return alice, bob, dave, shared.session


def pending(emu: ThreadedEmulator, sid: str, mid: str) -> tuple[str, dict[str, Any]]:
    """The first request of ``mid``'s turn, once the runner has written it."""
    got = wait_for(lambda: owner_get(emu, f"sessions/{sid}/turns/{mid}/approvals"), timeout=30)
    aid, record = next(iter(got.items()))
    return aid, record


def echo() -> Any:
    return load_agent("echo", {"rate": "0"})


def test_a_guest_asks_the_owner_approves_it_runs(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    alice, bob, dave, sid = team(make_user)
    with BackgroundRunner(rules_emu, echo(), workdir=tmp_path):
        mid = bob.sessions.send(sid, "please run: touch made.txt").message
        aid, record = pending(rules_emu, sid, mid)
        assert record["tool"] == "Bash" and record["summary"] == "touch made.txt"
        assert record["author"] == bob.auth.current().uid
        assert not (tmp_path / "made.txt").exists()  # nothing runs before the answer
        with pytest.raises(NotAllowed, match="only the owner may answer"):
            dave.sessions.approvals.answer(sid, mid, aid, True)  # an editor, owner-only policy
        with pytest.raises(NotAllowed, match="only the owner may answer"):
            bob.sessions.approvals.answer(sid, mid, aid, True)  # not even the author
        alice.sessions.approvals.answer(sid, mid, aid, True)
        state = wait_for(lambda: (s := alice.sessions.state(sid)) and mid in replies(s) and s)
    assert (tmp_path / "made.txt").exists()
    assert "I ran touch made.txt: it finished with status 0." in replies(state)[mid].text
    request = state.approvals[(mid, aid)]
    assert request.answer is not None and request.answer.by == alice.auth.current().uid
    assert request.outcome is not None and request.outcome.allow
    with pytest.raises(NotAllowed, match="already answered: you allowed it"):
        alice.sessions.approvals.answer(sid, mid, aid, False)
    assert state.agent.name == "echo" and state.agent.folder == tmp_path.name


def test_a_deny_and_its_reason_reach_the_agent(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    alice, bob, _dave, sid = team(make_user)
    with BackgroundRunner(rules_emu, echo(), workdir=tmp_path):
        mid = bob.sessions.send(sid, "run: touch nope.txt").message
        aid, _ = pending(rules_emu, sid, mid)
        alice.sessions.approvals.answer(sid, mid, aid, False, "not on\nmain  please")
        state = wait_for(lambda: (s := alice.sessions.state(sid)) and mid in replies(s) and s)
    assert not (tmp_path / "nope.txt").exists()
    assert "alice said no (not on main please)" in replies(state)[mid].text
    outcome = state.approvals[(mid, aid)].outcome
    assert outcome is not None and not outcome.allow and outcome.reason == "not on main please"


def test_editors_policy_and_timeouts(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    alice, bob, dave, sid = team(make_user)
    with pytest.raises(NotAllowed, match="only the session owner"):
        bob.sessions.approvals.set_policy(sid, approvers="editors")
    alice.sessions.approvals.set_policy(sid, approvers="editors")
    with BackgroundRunner(rules_emu, echo(), workdir=tmp_path, approval_wait_s=1.5):
        first = bob.sessions.send(sid, "run: touch one.txt").message
        aid, _ = pending(rules_emu, sid, first)
        dave.sessions.approvals.answer(sid, first, aid, True)  # another editor may now
        wait_for(lambda: first in replies(alice.sessions.state(sid)))
        second = bob.sessions.send(sid, "run: touch two.txt").message
        aid2, _ = pending(rules_emu, sid, second)
        state = wait_for(lambda: (s := alice.sessions.state(sid)) and second in replies(s) and s)
    assert (tmp_path / "one.txt").exists() and not (tmp_path / "two.txt").exists()
    assert "nobody answered in time" in replies(state)[second].text
    outcome = state.approvals[(second, aid2)].outcome
    assert outcome is not None and outcome.by == "timeout" and not outcome.allow
    with pytest.raises(NotAllowed, match="already ended: nobody answered in time"):
        alice.sessions.approvals.answer(sid, second, aid2, True)
    assert state.approvals[(first, aid)].answer.by == dave.auth.current().uid  # type: ignore[union-attr]


def test_pre_approved_tools_run_without_asking(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    alice, bob, _dave, sid = team(make_user)
    with pytest.raises(BadMessage, match="not a tool name"):
        alice.sessions.approvals.set_policy(sid, allow=["Bash;rm"])
    policy = alice.sessions.approvals.set_policy(sid, allow=["Bash"])
    assert "Bash" in policy.allowed and "Read" in policy.allowed
    with BackgroundRunner(rules_emu, echo(), workdir=tmp_path):
        mid = bob.sessions.send(sid, "run: touch free.txt").message
        state = wait_for(lambda: (s := alice.sessions.state(sid)) and mid in replies(s) and s)
    assert (tmp_path / "free.txt").exists()
    assert not state.approvals  # nothing asked, nothing recorded
    assert alice.sessions.meta(sid).policy.allowed == policy.allowed


def test_a_cancel_while_waiting_closes_the_request(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    alice, bob, _dave, sid = team(make_user)
    with BackgroundRunner(rules_emu, echo(), workdir=tmp_path):
        mid = bob.sessions.send(sid, "run: touch never.txt").message
        aid, _ = pending(rules_emu, sid, mid)
        assert bob.sessions.cancel(sid, mid) == "stopping"
        wait_for(
            lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/approvals/{aid}/outcome"),
            timeout=30,
        )
        wait_for(lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/state") == "cancelled")
    outcome = owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/approvals/{aid}/outcome")
    assert outcome["by"] == "cancel" and outcome["allow"] is False
    assert not (tmp_path / "never.txt").exists()
    with pytest.raises(NotAllowed, match="already ended"):
        alice.sessions.approvals.answer(sid, mid, aid, True)


def test_attachments_reach_the_agent(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    alice, bob, _dave, sid = team(make_user)
    shot = tmp_path / "shot.png"
    shot.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x01" * 3000)
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\n")
    with BackgroundRunner(rules_emu, echo(), workdir=tmp_path):
        mid = bob.sessions.send(sid, "look at these", [read_file(shot), read_file(notes)]).message
        state = wait_for(lambda: (s := alice.sessions.state(sid)) and mid in replies(s) and s)
    assert "You attached shot.png (image, 3 KB), notes.txt (text, 9 B)." in replies(state)[mid].text
    message = next(m for m in state.messages if m.id == mid)
    assert [a.label for a in message.attachments] == [
        "[image shot.png 3 KB]",
        "[file notes.txt 9 B]",
    ]
    # the session tree holds no file data; the data sits outside it
    assert "data" not in str(owner_get(rules_emu, f"sessions/{sid}"))
    assert set(owner_get(rules_emu, f"attachments/{sid}/{mid}")) == {"a0", "a1"}


def test_a_guests_message_to_the_command_agent_is_refused(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    import sys

    alice, bob, _dave, sid = team(make_user)
    agent = load_agent("command", {"cmd": f"{sys.executable} -c print(1)"}, env={})
    with BackgroundRunner(rules_emu, agent, workdir=tmp_path):
        mid = bob.sessions.send(sid, "delete everything").message
        wait_for(lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/state") == "failed")
        own = alice.sessions.send(sid, "hello").message
        wait_for(lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{own}/state") == "done")
    assert "answers only the owner's messages" in owner_get(
        rules_emu, f"sessions/{sid}/turns/{mid}/error"
    )
