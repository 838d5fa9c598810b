"""Costs that don't grow with history: what a member and the runner read of a long session.

Real emulator, real rules, real members; a fault proxy for the outage.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.firebase.admin import RunnerDatabase
from emdash_fb.runner.agents import load_agent
from emdash_fb.runner.context import MAX_HISTORY, read_conversation
from emdash_fb.session import events as ev
from emdash_fb.session import windows
from emdash_fb.session.errors import TooManyWaiting
from emdash_fb.session.records import SessionState
from emdash_fb.session.view import SessionView
from tests.faults.test_streams import member
from tests.runner.test_runner import owner_get, wait_for
from tests.support.faultproxy import FaultProxy
from tests.support.rtdb import RawRtdb
from tests.support.runner import BackgroundRunner

MakeUser = Callable[[str], AppContext]
RULES = Path(__file__).resolve().parents[2] / "rules" / "database.rules.json"


class Live:
    """A SessionView on its own loop thread; events in order."""

    def __init__(self, app: AppContext, sid: str) -> None:
        self.events: list[ev.Event] = []
        self.view = SessionView(app.target, app.auth, app.sessions, sid, self.events.append)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_until_complete, args=(self.view.run(),), daemon=True
        )
        self.thread.start()

    def of(self, kind: type) -> list[Any]:
        return [e for e in list(self.events) if isinstance(e, kind)]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.view.stop)
        self.thread.join(10)


@pytest.fixture
def proxy(rules_emu: ThreadedEmulator) -> Iterator[FaultProxy]:
    with FaultProxy.in_front_of(rules_emu.database_host, seed=5) as p:
        yield p


def admin(emu: ThreadedEmulator) -> RawRtdb:
    return RawRtdb(f"http://{emu.database_host}", f"{emu.project_id}-default-rtdb").owner()


def fill_history(
    emu: ThreadedEmulator, sid: str, uid: str, count: int, start_ms: int, step: int = 10
) -> list[str]:
    """``count`` answered exchanges written straight into the session (a long day's history,
    in the runner's shape), oldest first; returns the question ids in order."""
    raw = admin(emu)
    mids: list[str] = []
    transcript: dict[str, Any] = {}
    turns: dict[str, Any] = {}
    for i in range(count):
        mid = f"-H{i:08d}xxxxxxxxxxx"[:20]
        at = start_ms + i * step
        mids.append(mid)
        transcript[mid] = {"role": "user", "uid": uid, "name": "alice", "text": f"q{i}", "at": at}
        transcript[mid + "~a"] = {
            "role": "assistant", "uid": "runner:r", "name": "echo", "at": at + 5, "replyTo": mid,
        }  # fmt: skip
        turns[mid] = {
            "state": "done", "runner": "runner:r", "fence": 1, "startedAt": at + 1,
            "endedAt": at + 5, "attempt": 1, "chunks": {"c000000": f"answer {i}"},
        }  # fmt: skip
    for part, value in (("transcript", transcript), ("turns", turns)):
        resp = raw.patch(f"sessions/{sid}/{part}", value)
        assert resp.status_code == 200, resp.text
    return mids


def test_the_live_part_is_every_session_child_but_the_history() -> None:
    """The key range a member follows whole covers every child the rules know except the
    transcript and turns (so a new child lands on the right side of it by its name)."""
    text = "\n".join(
        line for line in RULES.read_text().splitlines() if not line.strip().startswith("//")
    )
    children = [k for k in json.loads(text)["rules"]["sessions"]["$sid"] if not k.startswith(".")]
    live = sorted(k for k in children if k <= windows.LIVE_END)
    assert sorted(children) == [*live, *windows.HISTORY_KEYS]
    assert all(k > windows.LIVE_END for k in windows.HISTORY_KEYS)


def test_joining_a_10000_message_session_shows_the_last_and_pages_back_to_the_first(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    sid = shared.session
    mids = fill_history(rules_emu, sid, alice.auth.current().uid, 5_000, 1_000_000)
    joined = bob.sessions.join(shared.invite)
    assert [m.text for m in joined.messages] == [
        t for i in range(4_990, 5_000) for t in (f"q{i}", f"answer {i}")
    ]
    live = Live(bob, sid)
    try:
        synced = wait_for(lambda: live.of(ev.Synced), timeout=20)[0]
        assert len(synced.state.messages) == windows.RECENT  # not the whole history
        assert synced.state.messages[-1].text == "answer 4999"
        assert len(synced.state.turns) <= windows.RECENT
    finally:
        live.stop()
    pages = list(bob.sessions.history_pages(sid, page=windows.PAGE))
    everything = [m for page in reversed(pages) for m in page]
    assert len(everything) == 10_000 and len(pages) >= 10_000 // windows.PAGE
    assert [m.id for m in everything[::2]] == mids  # every question once, in order
    assert everything[0].text == "q0" and everything[1].text == "answer 0"
    assert [m.text for m in bob.sessions.history(sid, 3)] == ["answer 4998", "q4999", "answer 4999"]


def test_a_member_back_from_an_outage_sees_each_missed_message_once(
    make_user: MakeUser, rules_emu: ThreadedEmulator, proxy: FaultProxy, tmp_path: Path
) -> None:
    alice = make_user("alice")
    shared = alice.sessions.share()
    sid = shared.session
    fill_history(rules_emu, sid, alice.auth.current().uid, 300, 2_000_000)
    bob = member(rules_emu, tmp_path, "bob", proxy.address)
    bob.sessions.join(shared.invite)
    live = Live(bob, sid)
    try:
        wait_for(lambda: live.of(ev.Synced), timeout=20)
        wait_for(lambda: [e for e in live.of(ev.ConnectionChanged) if e.status == "live"])
        proxy.refuse(True)
        proxy.reset_all()
        wait_for(lambda: live.view.status == "reconnecting", timeout=10)
        sent: list[str] = []
        with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "0"})):
            for i in range(50):  # answered as they come: at most 5 wait at once
                sent.append(
                    wait_for(lambda i=i: _send(alice, sid, f"missed {i}"), timeout=20, every=0.05)
                )
            wait_for(lambda: owner_get(rules_emu, f"sessions/{sid}/queue") is None, timeout=30)
        proxy.refuse(False)
        wait_for(lambda: live.view.status == "live", timeout=15)
        wait_for(lambda: len(live.of(ev.MessagePosted)) >= 100, timeout=15)
        time.sleep(0.5)  # anything shown twice would have come by now
        posted = [e.message for e in live.of(ev.MessagePosted)]
    finally:
        live.stop()
    # each question and each reply once, nothing from before the outage; questions in
    # server order, replies in server order (a reply shows once its turn's end has come)
    assert sorted(m.id for m in posted) == sorted(x for mid in sent for x in (mid, mid + "~a"))
    questions = [m for m in posted if m.role == "user"]
    answers = [m for m in posted if m.role == "assistant"]
    assert [m.id for m in questions] == sent
    assert [m.reply_to for m in answers] == sent
    assert all(m.text.startswith("alice asked: missed") for m in answers)


def _send(app: AppContext, sid: str, text: str) -> str | None:
    try:
        return app.sessions.send(sid, text).message
    except TooManyWaiting:
        return None


def test_the_runner_gives_the_agent_the_same_last_200(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    """read_conversation (queries, paging back past cancelled messages) gives what the whole
    session, read at once, gives: the 200 messages before this one that count."""
    alice = make_user("alice")
    sid = alice.sessions.share().session
    uid = alice.auth.current().uid
    mids = fill_history(rules_emu, sid, uid, 400, 3_000_000)
    raw = admin(rules_emu)
    # cancelled questions, ties in server time, replies without a turn at the window's edge
    for i in range(150, 400, 3):
        raw.put(f"sessions/{sid}/transcript/{mids[i]}/state", "cancelled")
    raw.put(f"sessions/{sid}/transcript/{mids[300]}/at", 3_000_000 + 299 * 10)
    current = mids[390]
    at = 3_000_000 + 390 * 10
    whole = SessionState.parse(sid, owner_get(rules_emu, f"sessions/{sid}"))
    expected = [
        (m.id, m.text)
        for m in whole.messages
        if m.id != current
        and (m.at, m.id) < (at, current)
        and m.state != "cancelled"
        and m.role in ("user", "assistant")
    ][-MAX_HISTORY:]
    db = RunnerDatabase("r-ctx", project_id=rules_emu.project_id, env=rules_emu.env())

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    try:
        message, before = asyncio.run(read_conversation(call, db, sid, current, at))
    finally:
        db.close()
    assert message is not None and message.id == current
    assert [(m.id, m.text) for m in before] == expected
    assert len(before) == MAX_HISTORY


def test_the_runners_remembered_conversation_stays_true(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    """A runner that remembers a session's conversation reads only what is new, and gives
    the agent exactly what a fresh read gives: even when a waiting message was cancelled,
    answers came in and other runners wrote in between."""
    from emdash_fb.runner.context import Conversations

    alice = make_user("alice")
    sid = alice.sessions.share().session
    uid = alice.auth.current().uid
    mids = fill_history(rules_emu, sid, uid, 300, 4_000_000, step=5_000)  # 5 s apart
    raw = admin(rules_emu)
    # the reply to 240 is still streaming when the runner first reads
    raw.put(f"sessions/{sid}/turns/{mids[240]}/state", "running")
    raw.delete(f"sessions/{sid}/transcript/{mids[240]}~a")
    db = RunnerDatabase("r-cache", project_id=rules_emu.project_id, env=rules_emu.env())
    cache = Conversations()

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    def at_of(i: int) -> int:
        return 4_000_000 + i * 5_000

    def read(i: int, remembered: Conversations | None) -> list[tuple[str, str]]:
        _, before = asyncio.run(
            read_conversation(call, db, sid, mids[i], at_of(i), cache=remembered)
        )
        return [(m.id, m.text) for m in before]

    try:
        first = read(250, cache)
        assert first == read(250, None)
        assert (mids[240] + "~a") not in dict(first)
        assert read(255, cache) == read(255, None)  # it now knows messages up to the last
        # then: a message that was waiting is cancelled, the streaming reply ends
        raw.put(f"sessions/{sid}/transcript/{mids[260]}/state", "cancelled")
        raw.put(f"sessions/{sid}/turns/{mids[240]}/chunks/c000001", " and more")
        raw.put(f"sessions/{sid}/turns/{mids[240]}/state", "done")
        raw.put(
            f"sessions/{sid}/transcript/{mids[240]}~a",
            {"role": "assistant", "uid": "runner:r", "name": "echo", "at": at_of(262), "replyTo": mids[240]},
        )  # fmt: skip
        remembered = read(280, cache)
        assert remembered == read(280, None)
        assert (mids[260], "q260") not in remembered
        assert (mids[240] + "~a", "answer 240 and more") in remembered
    finally:
        db.close()
