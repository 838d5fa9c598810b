"""Typed session events, derived from changes of the session tree.

Events are never sent on a bus: ``EventDeriver`` compares the tree it saw
last with the new one (the listener's mirror, copied on write, so unchanged
subtrees are the *same* objects and are skipped by identity) and says what
happened. A re-sync after a reconnect goes through the same diff, so nothing
is shown twice and nothing is missed. Time-based states (away, typing) are
re-evaluated on ``tick``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .approvals import Approval, may_answer, parse_turn_approvals
from .paths import REPLY_SUFFIX
from .records import (
    AgentInfo,
    Lock,
    Member,
    Message,
    Meta,
    Presence,
    QueueItem,
    SessionState,
    Tool,
    Turn,
    as_dict,
    fill_reply_text,
    parse_queue,
    queue_positions,
    stalled,
)

#: A reply and its turn's end are one write, delivered by two streams (transcript and
#: turns): each waits this long at most for the other before it is shown alone.
PAIR_GRACE_MS = 3_000
RUNNER_FRESH_MS = 35_000  # a runner's heartbeat (every 10 s) older than this: it is gone
OFFSET_SAMPLES = 5


@dataclass(frozen=True)
class Event:
    """Base class of everything a live view reports."""


@dataclass(frozen=True)
class Synced(Event):
    """The first full picture of the session (render recent history from it)."""

    state: SessionState


@dataclass(frozen=True)
class MemberJoined(Event):
    member: Member


@dataclass(frozen=True)
class MemberLeft(Event):
    member: Member
    kicked: bool = False


@dataclass(frozen=True)
class MemberAway(Event):
    member: Member


@dataclass(frozen=True)
class MemberBack(Event):
    member: Member


@dataclass(frozen=True)
class RoleChanged(Event):
    member: Member


@dataclass(frozen=True)
class Typing(Event):
    member: Member
    typing: bool


@dataclass(frozen=True)
class MessagePosted(Event):
    """A user message, or the agent's final reply (``message.role == "assistant"``)."""

    message: Message


@dataclass(frozen=True)
class MessageCancelled(Event):
    message: Message


@dataclass(frozen=True)
class QueueChanged(Event):
    """The waiting line, in order, with 1-based positions."""

    items: tuple[tuple[QueueItem, int], ...]


@dataclass(frozen=True)
class TurnStarted(Event):
    turn: Turn
    asked_by: str


@dataclass(frozen=True)
class ReplyDelta(Event):
    """More of the reply to ``mid``. Deltas after a ``TurnStarted`` add up to a prefix of that
    attempt's final text; a retry starts again with a new ``TurnStarted``."""

    mid: str
    text: str
    attempt: int = 1


@dataclass(frozen=True)
class ToolStarted(Event):
    mid: str
    tool: Tool


@dataclass(frozen=True)
class ToolFinished(Event):
    mid: str
    tool: Tool


@dataclass(frozen=True)
class TurnEnded(Event):
    """``turn.state`` is done, failed or cancelled; ``turn.error`` says why it failed."""

    turn: Turn


@dataclass(frozen=True)
class AgentStatus(Event):
    """What the agent is doing, as far as the database shows: ``working`` (a runner holds
    the running turn's lease), ``stalled`` (a turn is running but no runner holds it: its
    lease lapsed), ``idle`` (a runner is alive, nothing running) or ``offline`` (no runner's
    heartbeat is fresh). ``mid`` is the running (or stalled) message."""

    state: str
    mid: str | None = None


@dataclass(frozen=True)
class ApprovalRequested(Event):
    """The agent asks to use a tool; ``mine`` says whether I may answer, ``who`` who may."""

    approval: Approval
    mine: bool
    who: str


@dataclass(frozen=True)
class ApprovalDecided(Event):
    """A request was answered (``approval.answer``) or ended unanswered (``approval.outcome``:
    timeout, cancel, stopped). ``by`` is the answerer's name, or that reason."""

    approval: Approval
    allow: bool
    by: str


@dataclass(frozen=True)
class AgentChanged(Event):
    """Which agent answers the session (name, model, folder) changed."""

    agent: AgentInfo


@dataclass(frozen=True)
class MetaChanged(Event):
    """Mode, invite or title changed."""

    meta: Meta


@dataclass(frozen=True)
class SessionClosedEvent(Event):
    pass


@dataclass(frozen=True)
class YouWereKicked(Event):
    pass


@dataclass(frozen=True)
class NoLongerMember(Event):
    """The stream was cancelled and we are no longer a member (left from elsewhere)."""


@dataclass(frozen=True)
class ConnectionChanged(Event):
    """``status`` is connecting, live, reconnecting, cancelled or stopped."""

    status: str


def _int(v: Any, default: int) -> int:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else default


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _running(tree: dict[str, Any], mid: str) -> bool:
    return as_dict(as_dict(tree.get("turns")).get(mid)).get("state") == "running"


def _changed(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """(added, removed, changed) keys; unchanged subtrees are skipped by identity."""
    if old is new:
        return [], [], []
    added = [k for k in new if k not in old]
    removed = [k for k in old if k not in new]
    changed = [k for k, v in new.items() if k in old and old[k] is not v and old[k] != v]
    return added, removed, changed


def _only_chunks_differ(old: dict[str, Any], new: dict[str, Any]) -> bool:
    if old.keys() != new.keys() and old.keys() ^ new.keys() != {"chunks"}:
        return False
    return all(old.get(k) is v or old.get(k) == v for k, v in new.items() if k != "chunks")


def _fresh_text(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The text of chunks in ``new`` and not in ``old``, in write order."""
    fresh = sorted(new.keys() - old.keys(), key=lambda k: (len(k), k))
    return "".join(t for k in fresh if isinstance(t := new[k], str))


class EventDeriver:
    """Remembers what was shown and turns each new tree into events."""

    def __init__(self, sid: str, me: str) -> None:
        self.sid = sid
        self.me = me
        self.tree: dict[str, Any] | None = None
        self._away: set[str] = set()
        self._typing: set[str] = set()
        self._members: dict[str, Member] = {}
        self._closed = False
        self._agent: AgentStatus | None = None
        self._my_last_seen = 0
        self._offsets: list[int] = []
        #: server clock - ours (ms), measured from our own server-timestamped presence
        self.clock_offset_ms = 0
        #: when the freshest runner heartbeat was written (server ms; None: not known yet)
        self.runner_heartbeat: int | None = None
        #: replies whose turn hasn't ended in the view yet, turn ends whose reply hasn't
        #: arrived: (event, since ms) by message id (see PAIR_GRACE_MS)
        self._held_replies: dict[str, tuple[MessagePosted, int]] = {}
        self._held_ends: dict[str, tuple[TurnEnded, int]] = {}
        #: a running turn no lock names, and since when (ours, ms): the lock and the turn
        #: arrive on different streams, so the lock of a turn that just ended may go first
        self._unheld: tuple[str, int] | None = None

    def update(self, tree: Any, now_ms: int) -> list[Event]:
        new = as_dict(tree)
        old = self.tree
        self.tree = new
        self._measure_clock(new, now_ms)
        if old is None:
            state = SessionState.parse(self.sid, new)
            self._members = dict(state.members)
            self._away = {
                u for u, p in state.presence.items() if p.is_away(now_ms) and u in self._members
            }
            self._typing = {
                u for u, p in state.presence.items() if p.is_typing(now_ms) and u != self.me
            }
            self._closed = not state.meta.is_open(now_ms) if state.exists else False
            server_now = self.server_now(now_ms)
            waiting: list[Event] = [
                self._requested(a, new)
                for a in sorted(state.approvals.values(), key=lambda a: a.requested_at)
                if a.pending(server_now, _running(new, a.mid))
            ]
            return [Synced(state), *waiting, *self._agent_events(now_ms)]
        events: list[Event] = []
        self._members_events(as_dict(old.get("members")), as_dict(new.get("members")), new, events)
        # A question, then its turn's progress, then the reply, then the turn's end:
        # live, each arrives in its own update; after a reconnect one update may
        # carry all of them and they still come out in that order.
        replies: list[Event] = []
        ended: list[Event] = []
        turns = as_dict(new.get("turns"))
        self._message_events(
            as_dict(old.get("transcript")), as_dict(new.get("transcript")), turns, events, replies
        )
        self._turn_events(as_dict(old.get("turns")), turns, new, events, ended)
        events += self._pair(replies, ended, new, now_ms)
        if old.get("agent") != new.get("agent"):
            events.append(AgentChanged(AgentInfo.parse(new.get("agent"))))
        self._queue_events(as_dict(old.get("queue")), as_dict(new.get("queue")), events)
        self._meta_events(old.get("meta"), new.get("meta"), now_ms, events)
        events += self.tick(now_ms)
        return events

    def _pair(
        self, replies: list[Event], ended: list[Event], tree: dict[str, Any], now_ms: int
    ) -> list[Event]:
        """A reply is shown once its turn has ended, and a turn's end after its reply: the
        runner writes both at once, but they come by two streams, in either order. A turn
        that ends without a reply (handed back, or cancelled while its runner was gone:
        the question itself is marked cancelled) is shown at once."""
        for e in replies:
            assert isinstance(e, MessagePosted)
            self._held_replies[e.message.reply_to or ""] = (e, now_ms)
        for e in ended:
            assert isinstance(e, TurnEnded)
            self._held_ends[e.turn.mid] = (e, now_ms)
        return self._release(tree, now_ms, force=False)

    def _release(self, tree: dict[str, Any], now_ms: int, *, force: bool) -> list[Event]:
        if not self._held_replies and not self._held_ends:
            return []
        transcript, turns = as_dict(tree.get("transcript")), as_dict(tree.get("turns"))
        out: list[Event] = []
        for mid, (e, since) in list(self._held_replies.items()):
            turn = Turn.parse(mid, turns[mid]) if mid in turns else None
            if (turn is not None and turn.finished) or (force and now_ms - since >= PAIR_GRACE_MS):
                del self._held_replies[mid]
                out.append(MessagePosted(fill_reply_text(replace(e.message, text=""), turns)))
        for mid, (e, since) in list(self._held_ends.items()):
            question = as_dict(transcript.get(mid))
            alone = e.turn.state == "interrupted" or question.get("state") == "cancelled"
            replied = (mid + REPLY_SUFFIX) in transcript and mid not in self._held_replies
            if alone or replied or (force and now_ms - since >= PAIR_GRACE_MS):
                del self._held_ends[mid]
                out.append(e)
        return out

    def tick(self, now_ms: int) -> list[Event]:
        """Time-based changes: away/back and typing that ran out."""
        if self.tree is None:
            return []
        events: list[Event] = self._release(self.tree, now_ms, force=True)
        presence = as_dict(self.tree.get("presence"))
        for uid, member in self._members.items():
            if uid not in presence:
                continue  # no heartbeat yet (just joined): not known to be away
            p = Presence.parse(presence.get(uid))
            away = p.is_away(now_ms)
            if away and uid not in self._away:
                self._away.add(uid)
                events.append(MemberAway(member))
            elif not away and uid in self._away:
                self._away.discard(uid)
                events.append(MemberBack(member))
            typing = p.is_typing(now_ms) and uid != self.me
            if typing and uid not in self._typing:
                self._typing.add(uid)
                events.append(Typing(member, True))
            elif not typing and uid in self._typing:
                self._typing.discard(uid)
                events.append(Typing(member, False))
        meta = Meta.parse(self.tree.get("meta"))
        if meta.owner and not self._closed and not meta.is_open(now_ms):
            self._closed = True
            events.append(SessionClosedEvent())
        events += self._agent_events(now_ms)
        return events

    # -- the agent's status and the server's clock ------------------------------------

    def server_now(self, now_ms: int) -> int:
        return now_ms + self.clock_offset_ms

    def _measure_clock(self, tree: dict[str, Any], now_ms: int) -> None:
        """Our own presence carries the server's time of our last heartbeat: it arrived now,
        so server - local >= lastSeen - now (latency makes it a lower bound; keep the best)."""
        seen = Presence.parse(as_dict(tree.get("presence")).get(self.me)).last_seen
        if seen and seen != self._my_last_seen:
            self._my_last_seen = seen
            self._offsets = [*self._offsets[-(OFFSET_SAMPLES - 1) :], seen - now_ms]
            self.clock_offset_ms = max(self._offsets)

    def agent_status(self, now_ms: int) -> AgentStatus:
        tree = self.tree or {}
        turns = as_dict(tree.get("turns"))
        lock = Lock.parse(tree.get("lock"))
        server_now = self.server_now(now_ms)
        if self._closed:  # nothing can run in a closed session, whatever its turns say
            return AgentStatus("idle")
        last_turn = 0  # a runner's writes prove it alive as well as its heartbeat does
        for mid, raw in turns.items():
            d = as_dict(raw)
            if d.get("state") == "running":
                turn = Turn.parse(mid, raw)
                if not stalled(turn, lock, server_now):
                    self._unheld = None
                    return AgentStatus("working", mid)
                if self._unheld_for(mid, lock, now_ms):
                    return AgentStatus("stalled", mid)
                return AgentStatus("working", mid)
            last_turn = max(last_turn, _int(d.get("endedAt"), 0), _int(d.get("startedAt"), 0))
        beat = self.runner_heartbeat
        if beat is not None and server_now - max(beat, last_turn) > RUNNER_FRESH_MS:
            return AgentStatus("offline")
        return AgentStatus("idle")

    def _unheld_for(self, mid: str, lock: Lock | None, now_ms: int) -> bool:
        """Whether the stall of ``mid`` is real: a lapsed lease is (the runner held it and
        stopped renewing); a missing lock only once it has stayed missing PAIR_GRACE_MS,
        since the finishing write removes it while the turn's own end may still be on
        its way (the turns stream is not the live one)."""
        if lock is not None and lock.mid == mid:
            self._unheld = None
            return True
        if self._unheld is None or self._unheld[0] != mid:
            self._unheld = (mid, now_ms)
        return now_ms - self._unheld[1] >= PAIR_GRACE_MS

    def _agent_events(self, now_ms: int) -> list[Event]:
        status = self.agent_status(now_ms)
        if status == self._agent:
            return []
        self._agent = status
        return [status]

    # -- sections ---------------------------------------------------------------

    def _members_events(
        self, old: dict[str, Any], new: dict[str, Any], tree: dict[str, Any], out: list[Event]
    ) -> None:
        added, removed, changed = _changed(old, new)
        kicked = as_dict(tree.get("kicked"))
        for uid in added:
            m = Member.parse(uid, new[uid])
            self._members[uid] = m
            out.append(MemberJoined(m))
        for uid in removed:
            m = self._members.pop(uid, None) or Member.parse(uid, old[uid])
            self._away.discard(uid)
            self._typing.discard(uid)
            out.append(MemberLeft(m, kicked=uid in kicked))
        for uid in changed:
            m = Member.parse(uid, new[uid])
            before = self._members.get(uid)
            self._members[uid] = m
            if before is None or before.role != m.role:
                out.append(RoleChanged(m))

    def _message_events(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        turns: dict[str, Any],
        out: list[Event],
        replies: list[Event],
    ) -> None:
        added, _removed, changed = _changed(old, new)
        posted = sorted(
            (fill_reply_text(Message.parse(k, new[k]), turns) for k in added),
            key=lambda m: (m.at, m.id),
        )
        for m in posted:
            (replies if m.role == "assistant" else out).append(MessagePosted(m))
        for k in changed:
            m = Message.parse(k, new[k])
            if m.state == "cancelled" and Message.parse(k, old[k]).state != "cancelled":
                out.append(MessageCancelled(m))

    def _turn_events(
        self,
        old: dict[str, Any],
        new: dict[str, Any],
        tree: dict[str, Any],
        out: list[Event],
        ended: list[Event],
    ) -> None:
        added, _removed, changed = _changed(old, new)
        messages = as_dict(tree.get("transcript"))
        for mid in added + changed:
            raw_old, raw_new = as_dict(old.get(mid)), as_dict(new[mid])
            if mid in old and _only_chunks_differ(raw_old, raw_new):
                # The hot path while a reply streams: no parse of the whole turn (the
                # same attempt, since nothing but chunks changed).
                text = _fresh_text(as_dict(raw_old.get("chunks")), as_dict(raw_new.get("chunks")))
                if text:
                    out.append(ReplyDelta(mid, text, _int(raw_new.get("attempt"), 1)))
                continue
            before = Turn.parse(mid, raw_old) if mid in old else None
            after = Turn.parse(mid, raw_new)
            if before is not None and before.identity != after.identity:
                # A retry (new claim, new attempt): whatever was shown of the old one is
                # not part of this one, even if updates in between were missed.
                if not before.finished:  # its end was missed: say so before the new start
                    out.append(TurnEnded(replace(before, state="interrupted")))
                before = None
            if before is None or (before.finished and not after.finished):
                asked = Message.parse(mid, messages.get(mid)).name
                out.append(TurnStarted(after, asked))
                before = None
            text = _fresh_text(before.chunks if before is not None else {}, after.chunks)
            if text:
                out.append(ReplyDelta(mid, text, after.attempt))
            self._approval_events(
                mid, raw_old.get("approvals"), raw_new.get("approvals"), tree, out
            )
            old_tools = before.tools if before is not None else {}
            for tid in sorted(after.tools, key=lambda t: (after.tools[t].at, t)):
                tool = after.tools[tid]
                prev = old_tools.get(tid)
                if prev is None:
                    out.append(ToolStarted(mid, tool))
                if tool.state != "running" and (prev is None or prev.state == "running"):
                    out.append(ToolFinished(mid, tool))
            if after.finished and (before is None or not before.finished):
                ended.append(TurnEnded(after))

    def _approval_events(
        self, mid: str, old: Any, new: Any, tree: dict[str, Any], out: list[Event]
    ) -> None:
        """The requests of ``mid``'s turn (``turns/<mid>/approvals``) that are new or decided."""
        if old is new or old == new:
            return
        before, after = parse_turn_approvals(mid, old), parse_turn_approvals(mid, new)
        members = as_dict(tree.get("members"))
        for key in sorted(after, key=lambda k: (after[k].requested_at, k)):
            a, prev = after[key], before.get(key)
            if prev is None and a.answer is None and a.outcome is None:
                out.append(self._requested(a, tree))
            was_decided = prev is not None and (prev.answer is not None or prev.outcome is not None)
            if was_decided:
                continue
            if a.answer is not None:
                name = _str(as_dict(members.get(a.answer.by)).get("name")) or a.answer.by[:8]
                out.append(ApprovalDecided(a, a.answer.allow, name))
            elif a.outcome is not None:
                out.append(ApprovalDecided(a, a.outcome.allow, a.outcome.by))

    def _requested(self, a: Approval, tree: dict[str, Any]) -> ApprovalRequested:
        meta = Meta.parse(tree.get("meta"))
        role = _str(as_dict(as_dict(tree.get("members")).get(self.me)).get("role"))
        mine = may_answer(meta.policy, uid=self.me, role=role, owner=meta.owner, author=a.author)
        return ApprovalRequested(a, mine, meta.policy.who())

    def _queue_events(self, old: dict[str, Any], new: dict[str, Any], out: list[Event]) -> None:
        if old is new or old == new:
            return
        ordered = parse_queue(new)
        pos = queue_positions(ordered)
        out.append(QueueChanged(tuple((q, pos[q.mid]) for q in ordered)))

    def _meta_events(self, old: Any, new: Any, now_ms: int, out: list[Event]) -> None:
        if old is new or old == new:
            return
        before, after = Meta.parse(old), Meta.parse(new)
        if not after.owner:
            if not self._closed:
                self._closed = True
                out.append(SessionClosedEvent())
            return
        if (before.mode, before.invite_code, before.title) != (
            after.mode,
            after.invite_code,
            after.title,
        ):
            out.append(MetaChanged(after))
