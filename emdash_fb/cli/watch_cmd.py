"""``emdash-fb watch``: follow a session from the command line, one line per event.

For scripts, bots and tests: every event the live view derives (messages,
reply deltas, replies, tool events, the queue, members, the agent's status,
connection state) becomes one line of text, or with ``--json`` one JSON object
per line, until Ctrl-C. Each JSON object has ``event`` (its kind) and
``seen_at`` (this machine's clock, ms) besides its own fields; the shapes are
listed in the README. Text from people and agents is cleaned (``--json``
keeps it exact: JSON escapes whatever it holds).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sys
import time
from typing import Any

import typer

from ..session import events as ev
from ..session.records import Member, Message, QueueItem
from ..session.text import layout, one_line, uid_tag
from .commands import JsonOpt, ctx_of


def _member(m: Member) -> dict[str, Any]:
    return {"uid": m.uid, "name": m.name, "role": m.role, "tag": uid_tag(m.uid)}


def _message(m: Message) -> dict[str, Any]:
    return {**m.to_json(), "uid": m.uid}


def _item(q: QueueItem, position: int) -> dict[str, Any]:
    return {
        "message": q.mid,
        "author": q.name,
        "uid": q.uid,
        "state": q.state,
        "position": position,
    }


def event_json(event: ev.Event) -> dict[str, Any] | None:
    """The JSON object for one event (``None``: nothing to say)."""
    match event:
        case ev.Synced(state=state):
            return {
                "event": "synced",
                "session": state.sid,
                "members": [_member(m) for m in state.members.values()],
                "messages": [_message(m) for m in state.messages[-20:]],
                "queue": [_item(q, i) for i, q in enumerate(state.queue, start=1)],
            }
        case ev.MessagePosted(message=m):
            return {"event": "message", **_message(m)}
        case ev.MessageCancelled(message=m):
            return {"event": "message_cancelled", "id": m.id}
        case ev.TurnStarted(turn=t, asked_by=asked):
            return {
                "event": "turn_started",
                "message": t.mid,
                "attempt": t.attempt,
                "asked_by": asked,
            }
        case ev.ReplyDelta(mid=mid, text=text, attempt=attempt):
            return {"event": "reply_delta", "message": mid, "attempt": attempt, "text": text}
        case ev.ToolStarted(mid=mid, tool=tool):
            return {
                "event": "tool_started",
                "message": mid,
                "tool": tool.tid,
                "name": tool.name,
                "input": tool.detail,
            }
        case ev.ToolFinished(mid=mid, tool=tool):
            return {
                "event": "tool_finished",
                "message": mid,
                "tool": tool.tid,
                "name": tool.name,
                "state": tool.state,
                "output": tool.output,
            }
        case ev.TurnEnded(turn=t):
            return {
                "event": "turn_ended",
                "message": t.mid,
                "attempt": t.attempt,
                "state": t.state,
                "error": t.error or None,
            }
        case ev.QueueChanged(items=items):
            return {"event": "queue", "items": [_item(q, pos) for q, pos in items]}
        case ev.MemberJoined(member=m):
            return {"event": "member_joined", **_member(m)}
        case ev.MemberLeft(member=m, kicked=kicked):
            return {"event": "member_left", **_member(m), "kicked": kicked}
        case ev.MemberAway(member=m):
            return {"event": "member_away", **_member(m)}
        case ev.MemberBack(member=m):
            return {"event": "member_back", **_member(m)}
        case ev.RoleChanged(member=m):
            return {"event": "role_changed", **_member(m)}
        case ev.Typing(member=m, typing=typing):
            return {"event": "typing", **_member(m), "typing": typing}
        case ev.AgentStatus(state=state, mid=mid):
            return {"event": "agent", "state": state, "message": mid}
        case ev.MetaChanged(meta=meta):
            return {
                "event": "meta",
                "mode": meta.mode,
                "invite": meta.invite_code,
                "title": meta.title,
            }
        case ev.ApprovalRequested(approval=a, mine=mine, who=who):
            return {
                "event": "approval_requested",
                "message": a.mid,
                "approval": a.aid,
                "tool": a.tool,
                "summary": a.summary,
                "detail": a.detail or None,
                "author": a.author,
                "expires_at": a.expires_at,
                "you_may_answer": mine,
                "answered_by": who,
            }
        case ev.ApprovalDecided(approval=a, allow=allow, by=by):
            return {
                "event": "approval_decided",
                "message": a.mid,
                "approval": a.aid,
                "tool": a.tool,
                "allow": allow,
                "by": by,
                "reason": (a.answer.reason if a.answer is not None else "") or None,
            }
        case ev.AgentChanged(agent=agent):
            return {
                "event": "agent_changed",
                "name": agent.name,
                "model": agent.model or None,
                "folder": agent.folder or None,
                "session_id": agent.session_id or None,
            }
        case ev.SessionClosedEvent():
            return {"event": "closed"}
        case ev.NoLongerMember():
            return {"event": "left"}
        case ev.YouWereKicked():
            return {"event": "kicked"}
        case ev.ConnectionChanged(status=status):
            return {"event": "connection", "status": status}
    return None


def event_line(data: dict[str, Any]) -> str:
    """One readable line (continuation lines behind the gutter) for an event's JSON."""
    kind = data["event"]
    stamp = dt.datetime.fromtimestamp(data["seen_at"] / 1000).strftime("%H:%M:%S")
    if kind == "message":
        who = "agent" if data["role"] == "assistant" else one_line(data["author"])
        state = f" ({data['state']})" if data.get("state") else ""
        return layout(f"{stamp} {who}: ", data["text"] + state)
    if kind == "reply_delta":
        return layout(f"{stamp} … ", data["text"])
    if kind == "synced":
        names = ", ".join(one_line(m["name"]) for m in data["members"])
        return f"{stamp} following session {data['session']} ({names})"
    if kind == "queue":
        line = ", ".join(f"#{i['position']} {one_line(i['author'])}" for i in data["items"])
        return f"{stamp} queue: {line or 'empty'}"
    if kind in ("tool_started", "tool_finished"):
        detail = data.get("input") if kind == "tool_started" else data.get("state")
        return (
            f"{stamp} {kind.replace('_', ' ')}: {one_line(data['name'])} {one_line(detail or '')}"
        )
    if kind == "approval_requested":
        who = "you may answer" if data["you_may_answer"] else f"{data['answered_by']} answers"
        return f"{stamp} the agent asks to use {one_line(data['tool'])}: {one_line(data['summary'])} ({who})"
    if kind == "approval_decided":
        verb = "allowed" if data["allow"] else "denied"
        reason = f" ({one_line(data['reason'])})" if data.get("reason") else ""
        return f"{stamp} {one_line(data['by'])} {verb} {one_line(data['tool'])}{reason}"
    if kind.startswith("member_") or kind in ("role_changed", "typing"):
        extra = {"typing": "typing" if data.get("typing") else "stopped typing"}.get(kind, "")
        return f"{stamp} {kind.replace('_', ' ')}: {one_line(data['name'])} {data['tag']} {extra}".rstrip()
    rest = " ".join(
        f"{k}={one_line(str(v))}"
        for k, v in data.items()
        if k not in ("event", "seen_at") and v is not None
    )
    return f"{stamp} {kind.replace('_', ' ')} {rest}".rstrip()


def watch(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Follow the current session: one line (or JSON object) per event, until Ctrl-C."""
    app = ctx_of(ctx)
    sid = app.current_session()
    app.sessions.state(sid, 0)  # a clear error now if we aren't a member
    code = 0
    with contextlib.suppress(KeyboardInterrupt):
        code = asyncio.run(_follow(app, sid, as_json))
    raise typer.Exit(code)


async def _follow(app: Any, sid: str, as_json: bool) -> int:
    from ..session.view import SessionView  # aiohttp: only when following a session

    kicked = False

    def on_event(event: ev.Event) -> None:
        nonlocal kicked
        data = event_json(event)
        if data is None:
            return
        data["seen_at"] = int(time.time() * 1000)
        line = json.dumps(data, ensure_ascii=False) if as_json else event_line(data)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        if isinstance(event, ev.YouWereKicked | ev.NoLongerMember):
            kicked = True

    view = SessionView(app.target, app.auth, app.sessions, sid, on_event)
    await view.run()
    return 1 if kicked else 0
