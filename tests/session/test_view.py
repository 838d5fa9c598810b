"""The live view: typed events from real streams, reconnects without gaps or repeats."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.runner.agents import load_agent
from emdash_fb.session import events as ev
from emdash_fb.session.view import SessionView
from tests.support.runner import BackgroundRunner

MakeUser = Callable[[str], AppContext]


class Watching:
    """A SessionView on its own thread, events into a queue."""

    def __init__(self, app: AppContext, sid: str) -> None:
        self.events: queue.Queue[ev.Event] = queue.Queue()
        self.view = SessionView(
            app.target, app.auth, app.sessions, sid, self.events.put, tick_seconds=0.2
        )
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self.view.run(),), daemon=True
        )
        self._thread.start()
        self.synced = self.expect(ev.Synced)

    def expect(
        self, kind: type, timeout: float = 10.0, where: Callable[[Any], bool] = lambda e: True
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kind.__name__} event within {timeout}s")
            e = self.events.get(timeout=left)
            if isinstance(e, kind) and where(e):
                return e

    def drain(self, seconds: float = 0.3) -> list[ev.Event]:
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.events.get(timeout=left))
            except queue.Empty:
                break
        return out

    def close(self) -> None:
        self.view.stop()
        self._thread.join(10)


@pytest.fixture
def watch():
    opened: list[Watching] = []

    def make(app: AppContext, sid: str) -> Watching:
        w = Watching(app, sid)
        opened.append(w)
        return w

    yield make
    for w in opened:
        w.close()


def test_members_messages_typing_events(make_user: MakeUser, watch) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    a = watch(alice, shared.session)
    bob.sessions.join(shared.invite)
    joined = a.expect(ev.MemberJoined)
    assert joined.member.name == "bob"
    b = watch(bob, shared.session)
    alice.sessions.send(shared.session, "one")
    bob.sessions.send(shared.session, "two")
    # the queue and the transcript come by different streams: in either order
    queues: list[ev.QueueChanged] = []

    def posted(w: Watching) -> list[str]:
        texts: list[str] = []
        deadline = time.monotonic() + 10
        while len(texts) < 2 or (w is a and not any(len(q.items) == 2 for q in queues)):
            e = w.events.get(timeout=max(0.1, deadline - time.monotonic()))
            if isinstance(e, ev.MessagePosted):
                texts.append(e.message.text)
            elif isinstance(e, ev.QueueChanged) and w is a:
                queues.append(e)
        return texts

    assert posted(a) == posted(b) == ["one", "two"]
    q = next(q for q in queues if len(q.items) == 2)
    assert [(item.name, pos) for item, pos in q.items] == [("alice", 1), ("bob", 2)]
    bob.sessions.typing(shared.session)
    typing = a.expect(ev.Typing)
    assert typing.member.name == "bob" and typing.typing
    stopped = a.expect(ev.Typing, timeout=8)
    assert stopped.typing is False
    bob.sessions.leave(shared.session)
    left = a.expect(ev.MemberLeft)
    assert left.member.name == "bob" and not left.kicked


def test_reply_streams_and_survives_server_side_disconnects(
    make_user: MakeUser, watch, rules_emu: ThreadedEmulator
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    b = watch(bob, shared.session)
    agent = load_agent("echo", {"rate": "30"})
    with BackgroundRunner(rules_emu, agent, flush_interval=0.05):
        mid = alice.sessions.send(shared.session, " ".join(f"w{i}" for i in range(60))).message
        b.expect(ev.TurnStarted)
        deltas: list[str] = []
        cuts = 0
        final = None
        deadline = time.monotonic() + 30
        while final is None and time.monotonic() < deadline:
            e = b.events.get(timeout=10)
            if isinstance(e, ev.ReplyDelta):
                deltas.append(e.text)
                if cuts < 3:
                    # cut every stream from the server side, mid-reply
                    rules_emu.call(
                        lambda: [
                            s.close("test cut") for s in list(rules_emu.server.rtdb.active_streams)
                        ]
                    )
                    cuts += 1
            elif isinstance(e, ev.MessagePosted) and e.message.reply_to == mid:
                final = e.message
        late: list[ev.Event] = []  # what came between the reply and its turn's end
        while not (late and isinstance(late[-1], ev.TurnEnded)):
            late.append(b.events.get(timeout=10))
    assert final is not None and cuts == 3 and late[-1].turn.state == "done"
    assert "".join(deltas) == final.text  # nothing shown twice, nothing missed
    assert not [e for e in late + b.drain() if isinstance(e, ev.ReplyDelta)]
    assert "alice asked" in final.text


def test_kicked_member_is_told(make_user: MakeUser, watch) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    b = watch(bob, shared.session)
    alice.sessions.kick(shared.session, bob.auth.current().uid)
    b.expect(ev.YouWereKicked)


def test_closed_session_event(make_user: MakeUser, watch) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    b = watch(bob, shared.session)
    alice.sessions.close(shared.session)
    b.expect(ev.SessionClosedEvent)
