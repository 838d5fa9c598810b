"""What a turn reads of its session, bounded by what the agent is given, never by history.

What it owns: at the start of a turn the runner needs the live part of the
session (meta, members, the agent record: ``session.windows``), this
message's earlier attempt (``turns/<mid>``), the message itself and the
conversation before it -- the last :data:`MAX_HISTORY` messages that count
(not cancelled, before this one in server order), with their replies' text
(their turns' chunks). The conversation is read with queries
(``orderBy="at"`` ``endAt`` this message, ``limitToLast``; paging back when
cancelled messages leave it short; then the turns ``startAt`` the oldest
message given), so a turn in a session with 10,000 messages reads what a
turn in one with 300 does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..session import paths, windows
from ..session.records import Message, Turn, as_dict, history_order, with_reply_text

MAX_HISTORY = 200
#: Messages read per page beyond MAX_HISTORY (room for cancelled ones, ties, replies later).
SLACK = 20

Call = Callable[..., Awaitable[Any]]


async def read_live(call: Call, db: Any, sid: str, mid: str) -> dict[str, Any] | None:
    """The live part of the session plus ``turns/<mid>`` (``None``: the session is gone)."""
    live = await call(
        lambda: db.query(paths.session(sid), order_by="$key", end_at=windows.LIVE_END)
    )
    if not live:
        return None
    previous = await call(db.get, paths.turn(sid, mid))
    return {**live, "turns": {mid: previous} if isinstance(previous, dict) else {}}


@dataclass
class Known:
    """What a runner already read of one session's conversation (its last turn's window)."""

    transcript: dict[str, Any] = field(default_factory=dict)
    turns: dict[str, Any] = field(default_factory=dict)
    #: the server time of the message it was read for: what came after it may still
    #: change (a waiting message can be cancelled), so the next read starts there
    upto: int = 0


class Conversations:
    """The conversations a runner has read, by session: the next turn of a session asks
    only for what came after the message it last answered (``startAt`` its server time,
    less windows.MARGIN_MS: a message's state changes only while it waits, and what
    waited then came after it). Bounded: a few hundred messages per session, the
    sessions served lately."""

    MAX_SESSIONS = 64

    def __init__(self) -> None:
        self._known: dict[str, Known] = {}

    def get(self, sid: str) -> Known | None:
        return self._known.get(sid)

    def keep(self, sid: str, known: Known, limit: int) -> None:
        """Remember ``known`` (trimmed to what the next turn can need) for ``sid``."""
        msgs = history_order(
            {k: Message.parse(k, v) for k, v in known.transcript.items() if isinstance(v, dict)}
        )
        kept = {m.id for m in msgs[-(limit + 2 * SLACK) :]}
        transcript = {k: v for k, v in known.transcript.items() if k in kept}
        low = windows.oldest(transcript, "at") or 0
        turns = {
            k: v
            for k, v in known.turns.items()
            if int(as_dict(v).get("startedAt") or 0) >= low or k in kept
        }
        self._known.pop(sid, None)
        self._known[sid] = Known(transcript, turns, known.upto)
        while len(self._known) > self.MAX_SESSIONS:
            self._known.pop(next(iter(self._known)))


async def read_conversation(
    call: Call,
    db: Any,
    sid: str,
    mid: str,
    at: int,
    limit: int = MAX_HISTORY,
    cache: Conversations | None = None,
) -> tuple[Message | None, list[Message]]:
    """(this message, the ``limit`` messages before it that count), oldest first, replies
    with their text. ``at`` is this message's server time (its queue item's createdAt).
    With ``cache``, a session read before costs only what is new since."""
    known = cache.get(sid) if cache is not None else None
    fresh: dict[str, Any] | None = None
    if known is not None and known.transcript:
        # what came after the message it last answered, and the turns since the newest
        # (or the oldest still running) it knows: two independent reads, side by side
        since = max(0, known.upto - windows.MARGIN_MS)
        newer, fresh = await asyncio.gather(
            call(lambda: db.query(paths.messages(sid), order_by="at", start_at=since)),
            call(lambda: _turns_since(db, sid, _turns_start(known))),
        )
        raw = {**known.transcript, **newer}
        if len(_before(raw, mid, at)) < limit and len(known.transcript) >= limit:
            known, fresh = None, None  # cancelled messages left it short: read it all again
    if known is None or not known.transcript:
        raw = await _read_back(call, db, sid, mid, at, limit)
        known, fresh = Known(), None
    counted = _before(raw, mid, at)[-limit:]
    current = Message.parse(mid, raw[mid]) if isinstance(raw.get(mid), dict) else None
    turns: dict[str, Any] = {**known.turns, **(fresh or {})}
    if any(m.role == "assistant" for m in counted):
        if fresh is None:
            start = min(m.at for m in counted)
            turns.update(await call(lambda: _turns_since(db, sid, start)))
        for m in counted:  # a reply at the window's edge whose question came before it
            if m.role == "assistant" and m.reply_to and m.reply_to not in turns:
                turn = await call(db.get, paths.turn(sid, m.reply_to))
                if isinstance(turn, dict):
                    turns[m.reply_to] = turn
        counted = [
            with_reply_text(m, Turn.parse(m.reply_to, turns[m.reply_to]))
            if m.role == "assistant" and m.reply_to in turns
            else with_reply_text(m, None)
            if m.role == "assistant"
            else m
            for m in counted
        ]
    if cache is not None:
        cache.keep(sid, Known(raw, turns, at), limit)
    return current, counted


def _turns_start(known: Known) -> int:
    """Where to resume reading turns: the newest known, or the oldest still running (with
    none known: the message last answered)."""
    turns = known.turns
    if not turns:
        return max(0, known.upto - windows.MARGIN_MS)
    running = [
        int(as_dict(v).get("startedAt") or 0)
        for v in turns.values()
        if as_dict(v).get("state") == "running"
    ]
    start = min([windows.newest(turns, "startedAt") or 0, *running])
    return max(0, start - windows.MARGIN_MS)


def _turns_since(db: Any, sid: str, start: int) -> dict[str, Any]:
    return db.query(f"{paths.session(sid)}/turns", order_by="startedAt", start_at=start)


async def _read_back(
    call: Call, db: Any, sid: str, mid: str, at: int, limit: int
) -> dict[str, Any]:
    """The messages up to ``at``, paging back until ``limit`` of them count."""
    raw: dict[str, Any] = {}
    end = at
    while True:
        page = await call(
            lambda end=end: db.query(
                paths.messages(sid), order_by="at", end_at=end, limit_to_last=limit + SLACK
            )
        )
        fresh = {k: v for k, v in page.items() if k not in raw}
        raw.update(page)
        if len(_before(raw, mid, at)) >= limit or len(page) < limit + SLACK or not fresh:
            return raw
        end = min(
            (int(as_dict(v).get("at", 0)) for v in page.values()), default=0
        )  # inclusive: the boundary's ties come again and are skipped


def _before(raw: dict[str, Any], mid: str, at: int) -> list[Message]:
    """The messages of ``raw`` that count as context for ``mid``: before it in server
    order, not cancelled, said by a person or the agent; oldest first."""
    msgs = history_order({k: Message.parse(k, v) for k, v in raw.items() if isinstance(v, dict)})
    return [
        m
        for m in msgs
        if m.id != mid
        and (m.at, m.id) < (at, mid)
        and m.state != "cancelled"
        and m.role in ("user", "assistant")
    ]
