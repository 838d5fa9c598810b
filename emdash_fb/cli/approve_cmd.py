"""``emdash-fb approvals``, ``approve`` and ``deny``: the agent's tool requests from a script
or another terminal (the REPL has ``/approve`` and ``/deny``)."""

from __future__ import annotations

from typing import Any

import typer

from ..session.approvals import Approval
from ..session.errors import BadMessage
from ..session.records import SessionState
from ..session.text import one_line
from .commands import JsonOpt, ctx_of, emit


def _waiting(state: SessionState, server_now: int) -> list[Approval]:
    out = []
    for a in sorted(state.approvals.values(), key=lambda a: a.requested_at):
        turn = state.turns.get(a.mid)
        if a.pending(server_now, turn is not None and turn.state == "running"):
            out.append(a)
    return out


def _json(a: Approval, state: SessionState) -> dict[str, Any]:
    author = state.members.get(a.author)
    return {
        "id": f"{a.mid}/{a.aid}",
        "tool": a.tool,
        "summary": a.summary,
        "detail": a.detail or None,
        "asked_by": author.name if author is not None else a.author,
        "expires_at": a.expires_at,
    }


def approvals(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """The agent's requests waiting for an answer in the current session."""
    app = ctx_of(ctx)
    state = app.sessions.state(app.current_session(), 0)  # requests wait in the running turn
    waiting = [_json(a, state) for a in _waiting(state, app.sessions.server_now_ms())]
    lines = [
        f"{w['id']}  {one_line(w['tool'])}: {one_line(w['summary'])} (for {one_line(w['asked_by'])})"
        for w in waiting
    ]
    emit(waiting, as_json, "\n".join(lines) or "the agent is not asking for anything")


def _answer(
    ctx: typer.Context, request: str | None, allow: bool, reason: str, as_json: bool
) -> None:
    app = ctx_of(ctx)
    sid = app.current_session()
    if request:
        mid, _, aid = request.partition("/")
        if not mid or not aid:
            raise BadMessage(f"{request!r} is not a request id: `emdash-fb approvals` lists them")
    else:
        state = app.sessions.state(sid, 0)
        waiting = _waiting(state, app.sessions.server_now_ms())
        if not waiting:
            raise BadMessage("the agent is not asking for anything now")
        if len(waiting) > 1:
            raise BadMessage("several requests wait: name one (`emdash-fb approvals` lists them)")
        mid, aid = waiting[0].mid, waiting[0].aid
    app.sessions.approvals.answer(sid, mid, aid, allow, reason)
    verb = "allowed" if allow else "denied"
    emit({"id": f"{mid}/{aid}", "allow": allow}, as_json, f"{verb} {mid}/{aid}")


def approve(
    ctx: typer.Context,
    request: str = typer.Argument(
        None, help="MESSAGE/ID from `approvals` (default: the only one)."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Let the agent use the tool it asks for."""
    _answer(ctx, request, True, "", as_json)


def deny(
    ctx: typer.Context,
    request: str = typer.Argument(
        None, help="MESSAGE/ID from `approvals` (default: the only one)."
    ),
    reason: str = typer.Option("", "--reason", help="Why: the agent is told."),
    as_json: bool = JsonOpt,
) -> None:
    """Tell the agent no."""
    _answer(ctx, request, False, reason, as_json)
