"""EventDeriver on the trees a reconnect produces: one update carrying a whole stretch of history."""

from __future__ import annotations

from typing import Any

from emdash_fb.session import events as ev
from emdash_fb.session.events import PAIR_GRACE_MS, EventDeriver

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
        "transcript": messages,
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


# -- a retried reply starts afresh; the agent's status tells the truth -------------------


def attempt(n: int, *chunks: str, state: str = "running", fence: int | None = None) -> dict:
    return {**running(*chunks, state=state), "attempt": n, "fence": fence or n, "startedAt": 10 * n}


def live_text(events: list[ev.Event], mid: str = MID) -> str:
    """What a member's preview shows at the end: the stream of the latest attempt."""
    text = ""
    for e in events:
        if isinstance(e, ev.TurnStarted) and e.turn.mid == mid:
            text = ""
        elif isinstance(e, ev.ReplyDelta) and e.mid == mid:
            text += e.text
    return text


def test_a_retry_seen_after_a_reconnect_starts_the_stream_afresh() -> None:
    """The member saw attempt 1 stream, missed its interruption and attempt 2's start, and
    reconnects to attempt 2's chunks under the same keys: no merge of the two attempts."""
    d = EventDeriver(SID, "bob")
    seen = d.update(tree(), 0)
    seen += d.update(tree(turn=attempt(1, "ann2 asked: ", "hotel café")), 0)
    resync = d.update(tree(turn=attempt(2, "ann2 asked: ", "hotel caf")), 0)
    assert [k for k, _ in story(resync)] == ["ended", "started", "delta"]
    assert story(resync)[0] == ("ended", "interrupted")
    assert live_text(seen + resync) == "ann2 asked: hotel caf"
    more = d.update(tree(turn=attempt(2, "ann2 asked: ", "hotel caf", "é, please")), 0)
    assert live_text(seen + resync + more) == "ann2 asked: hotel café, please"
    deltas = [e for e in resync + more if isinstance(e, ev.ReplyDelta)]
    assert {e.attempt for e in deltas} == {2}


def test_a_retry_seen_live_starts_afresh_too() -> None:
    d = EventDeriver(SID, "bob")
    events = d.update(tree(), 0)
    for t in (
        attempt(1, "partial ", "words"),
        attempt(1, "partial ", "words", state="interrupted"),
        attempt(2),
        attempt(2, "the whole"),
        attempt(2, "the whole", " answer", state="done"),
    ):
        events += d.update(tree(turn=t, reply=t["state"] == "done"), 0)
    assert live_text(events) == "the whole answer"
    kinds = story(events)
    assert kinds.count(("started", "alice")) == 2
    assert ("ended", "interrupted") in kinds and kinds[-1] == ("ended", "done")


def with_lock(t: dict, *, lease_until: int, mid: str = MID) -> dict:
    return {**t, "lock": {"mid": mid, "runner": "runner:r", "fence": 1, "leaseUntil": lease_until}}


def agent(events: list[ev.Event]) -> list[str]:
    return [e.state for e in events if isinstance(e, ev.AgentStatus)]


def test_a_running_turn_whose_lease_lapsed_is_stalled() -> None:
    d = EventDeriver(SID, "bob")
    d.runner_heartbeat = 1_000
    assert agent(d.update(with_lock(tree(turn=attempt(1, "hi")), lease_until=30_000), 1_000)) == [
        "working"
    ]
    assert agent(d.tick(31_000)) == []  # within the lease plus its grace
    assert agent(d.tick(32_500)) == ["stalled"]
    # a runner claims it again: working
    back = with_lock(tree(turn=attempt(2, "hi")), lease_until=70_000)
    assert agent(d.update(back, 40_000)) == ["working"]


def test_a_lock_gone_before_its_turns_end_arrives_is_not_a_stall() -> None:
    """The finishing write removes the lock and ends the turn together, but the lock is
    in the live stream and the turn in the turns stream: either may arrive first. A
    turn that ends within the grace never showed a stalled agent; one whose lock stays
    gone is stalled once the grace is over."""
    d = EventDeriver(SID, "bob")
    d.runner_heartbeat = 1_000
    running = tree(turn=attempt(1, "hi"))
    assert agent(d.update(with_lock(running, lease_until=30_000), 1_000)) == ["working"]
    assert agent(d.update(running, 2_000)) == []  # the lock went first
    assert agent(d.tick(3_000)) == []
    done = tree(turn=attempt(1, "hi", state="done"), reply=True)
    assert agent(d.update(done, 3_500)) == ["idle"]  # never "stalled"
    # a turn that stays running with no lock at all is stalled, after the grace
    again = tree(turn=attempt(2, "hi"))
    assert agent(d.update(with_lock(again, lease_until=60_000), 10_000)) == ["working"]
    assert agent(d.update(again, 11_000)) == []
    assert agent(d.tick(11_000 + PAIR_GRACE_MS - 1)) == []
    assert agent(d.tick(11_000 + PAIR_GRACE_MS)) == ["stalled"]


def test_without_a_fresh_runner_heartbeat_the_agent_is_offline() -> None:
    d = EventDeriver(SID, "bob")
    d.runner_heartbeat = 1_000
    assert agent(d.update(tree(), 2_000)) == ["idle"]
    assert agent(d.tick(30_000)) == []
    assert agent(d.tick(40_000)) == ["offline"]
    d.runner_heartbeat = 39_000
    assert agent(d.tick(40_000)) == ["idle"]


def test_the_server_clock_is_measured_from_our_own_presence() -> None:
    """Our clock is 5 s behind the server's: a lease that lapsed by the server's clock is
    stalled although our clock says it hasn't ended."""
    d = EventDeriver(SID, "bob")
    t = with_lock(tree(turn=attempt(1, "hi")), lease_until=100_000)
    t["presence"] = {"bob": {"lastSeen": 103_000}}
    t["members"]["bob"] = {"name": "bob", "role": "editor", "joinedAt": 1}
    assert agent(d.update(t, 98_000)) == ["stalled"]
    assert d.clock_offset_ms == 5_000


def test_a_runner_that_just_answered_is_not_offline() -> None:
    """The view read /runners before any runner started (no heartbeat); a turn that ended a
    moment ago proves a runner is alive until the next read says so too."""
    d = EventDeriver(SID, "bob")
    d.runner_heartbeat = 0
    done = {**attempt(1, "hi", state="done"), "endedAt": 50_000}
    assert agent(d.update(tree(turn=done, reply=True), 50_500)) == ["idle"]
    assert agent(d.tick(80_000)) == []
    assert agent(d.tick(90_000)) == ["offline"]  # 40 s of nothing: gone for all we know


def test_a_closed_session_has_no_working_or_stalled_agent() -> None:
    """A reply streaming when the owner closed can never finish (no runner may write to a
    closed session): that is not a stalled agent, nothing will run here any more."""
    d = EventDeriver(SID, "bob")
    d.runner_heartbeat = 1_000
    t = with_lock(tree(turn=attempt(1, "half a")), lease_until=1_000)
    assert agent(d.update(t, 1_000)) == ["working"]
    closed = {**t, "meta": {**t["meta"], "status": "closed"}}
    events = d.update(closed, 10_000)
    assert any(isinstance(e, ev.SessionClosedEvent) for e in events)
    assert agent(events) == ["idle"]
