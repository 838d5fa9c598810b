"""EventDeriver on the trees a reconnect produces: one update carrying a whole stretch of history."""

from __future__ import annotations

from typing import Any

from emdash_fb.session import events as ev
from emdash_fb.session.events import EventDeriver

SID, MID = "-Nsession00000000000", "-Nmessage00000000000"


def tree(*, question: bool = True, turn: dict[str, Any] | None = None, reply: bool = False) -> dict:
    messages: dict[str, Any] = {}
    if question:
        messages[MID] = {"role": "user", "uid": "alice", "name": "alice", "text": "hi", "at": 1}
    if reply:
        messages[f"{MID}~a"] = {
            "role": "assistant",
            "uid": "runner:r",
            "name": "echo",
            "at": 3,
            "replyTo": MID,
        }
    out: dict[str, Any] = {
        "meta": {"owner": "alice", "status": "open", "lastActivity": 1, "idleTimeoutMs": 10**12},
        "members": {"alice": {"name": "alice", "role": "owner", "joinedAt": 1}},
        "messages": messages,
    }
    if turn is not None:
        out["turns"] = {MID: turn}
    return out


def running(*chunks: str, state: str = "running") -> dict[str, Any]:
    return {
        "state": state,
        "runner": "runner:r",
        "fence": 1,
        "startedAt": 2,
        "attempt": 1,
        "chunks": {f"c{i:06d}": text for i, text in enumerate(chunks)},
    }


def story(events: list[ev.Event]) -> list[tuple[str, str]]:
    """The reply-related events, as (kind, detail)."""
    out = []
    for e in events:
        if isinstance(e, ev.MessagePosted):
            out.append(("posted", f"{e.message.role}:{e.message.text}"))
        elif isinstance(e, ev.TurnStarted):
            out.append(("started", e.asked_by))
        elif isinstance(e, ev.ReplyDelta):
            out.append(("delta", e.text))
        elif isinstance(e, ev.TurnEnded):
            out.append(("ended", e.turn.state))
    return out


def test_reply_finished_while_away_is_finished_once_before_it_is_posted() -> None:
    d = EventDeriver(SID, "bob")
    d.update(tree(turn=running("Hello ")), 10)
    events = d.update(tree(turn=running("Hello ", "world", state="done"), reply=True), 20)
    assert story(events) == [
        ("delta", "world"),
        ("posted", "assistant:Hello world"),
        ("ended", "done"),
    ]


def test_a_whole_exchange_missed_comes_back_in_order() -> None:
    d = EventDeriver(SID, "bob")
    d.update(tree(question=False), 10)
    events = d.update(tree(turn=running("Hello ", "world", state="done"), reply=True), 20)
    assert story(events) == [
        ("posted", "user:hi"),
        ("started", "alice"),
        ("delta", "Hello world"),
        ("posted", "assistant:Hello world"),
        ("ended", "done"),
    ]


def test_live_updates_one_write_at_a_time() -> None:
    d = EventDeriver(SID, "bob")
    d.update(tree(), 10)
    seen = []
    for t in (
        tree(turn=running()),
        tree(turn=running("Hel")),
        tree(turn=running("Hel", "lo")),
        tree(turn=running("Hel", "lo", state="done"), reply=True),
    ):
        seen += story(d.update(t, 20))
    assert seen == [
        ("started", "alice"),
        ("delta", "Hel"),
        ("delta", "lo"),
        ("posted", "assistant:Hello"),
        ("ended", "done"),
    ]
