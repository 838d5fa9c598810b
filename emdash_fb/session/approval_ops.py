"""Answering the agent's tool requests and setting the owner's approval policy.

What it owns: the member's side of shared approvals (``/approve``, ``/deny``,
``/policy``): one write each, verified when its answer is lost, and when the
rules refuse, one line that says why (already answered and by whom, timed out,
the turn ended, or who may answer under the policy). The shapes are in
:mod:`emdash_fb.session.approvals`; the rules decide.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..firebase.client import SERVER_TIMESTAMP
from ..firebase.errors import NetworkError, PermissionDenied
from . import paths
from .approvals import (
    APPROVERS,
    MAX_REASON,
    MAX_TIMEOUT_S,
    MIN_TIMEOUT_S,
    Approval,
    Policy,
    may_answer,
    valid_tool,
)
from .errors import BadMessage, NotAllowed, SessionClosed
from .records import Turn, as_dict

if TYPE_CHECKING:
    from .ops import SessionClient


class ApprovalOps:
    def __init__(self, client: SessionClient) -> None:
        self.client = client
        self.db = client.db

    # -- answers ---------------------------------------------------------------------

    def answer(self, sid: str, mid: str, aid: str, allow: bool, reason: str = "") -> None:
        """Allow or deny the request ``turns/<mid>/approvals/<aid>``; the first valid answer wins."""
        reason = " ".join(reason.split())
        if len(reason) > MAX_REASON:
            raise BadMessage(f"the reason is too long: at most {MAX_REASON} characters")
        me = self.client.me
        body: dict[str, Any] = {
            "by": me.uid,
            "decision": "allow" if allow else "deny",
            "at": SERVER_TIMESTAMP,
        }
        if reason:
            body["reason"] = reason
        where = f"{paths.approval(sid, mid, aid)}/answer"
        try:
            self.db.set(where, body)
        except (PermissionDenied, NetworkError) as exc:
            if self._answered_by_me(where, allow):
                return
            if isinstance(exc, NetworkError):
                raise
            raise self._why_refused(sid, mid, aid) from None

    def _answered_by_me(self, where: str, allow: bool) -> bool:
        try:
            got = as_dict(self.db.get(where))
        except (PermissionDenied, NetworkError):
            return False
        return got.get("by") == self.client.me.uid and got.get("decision") == (
            "allow" if allow else "deny"
        )

    def _why_refused(self, sid: str, mid: str, aid: str) -> Exception:
        me = self.client.me.uid
        try:
            raw = self.db.get(paths.approval(sid, mid, aid))
        except PermissionDenied:
            return self.client._not_member(sid)
        if raw is None:
            return BadMessage("there is no such request from the agent")
        request = Approval.parse(mid, aid, raw)
        meta = self.client.meta(sid)
        members = as_dict(self.db.get(paths.session(sid) + "/members"))
        if request.answer is not None:
            who = "you" if request.answer.by == me else _name(members, request.answer.by)
            verb = "allowed" if request.answer.allow else "denied"
            return NotAllowed(f"already answered: {who} {verb} it")
        if request.outcome is not None:
            return NotAllowed(f"this request already ended: {_ended(request.outcome.by)}")
        turn = Turn.parse(mid, self.db.get(paths.turn(sid, mid)))
        if turn.state != "running":
            return NotAllowed("this request already ended: its turn is over")
        if self.client.server_now_ms() >= request.expires_at:
            return NotAllowed("this request timed out: the agent was told no")
        if not meta.is_open(self.client.server_now_ms()):
            return SessionClosed("this session is closed: it is read-only now")
        role = str(as_dict(members.get(me)).get("role", ""))
        if not may_answer(meta.policy, uid=me, role=role, owner=meta.owner, author=request.author):
            return NotAllowed(
                f"only {meta.policy.who()} may answer the agent's requests in this session"
            )
        return NotAllowed("you can't answer this request")

    # -- the policy ------------------------------------------------------------------

    def set_policy(
        self,
        sid: str,
        *,
        approvers: str | None = None,
        allow: Iterable[str] = (),
        ask: Iterable[str] = (),
        timeout_s: int | None = None,
        reset: bool = False,
    ) -> Policy:
        """Change the owner's policy (owner only); returns the new one."""
        meta = self.client._owner_check(sid, "change the approval policy")
        current = Policy() if reset else meta.policy
        if approvers is not None and approvers not in APPROVERS:
            raise BadMessage(f"unknown approvers {approvers!r}: use {', '.join(APPROVERS)}")
        if timeout_s is not None and not MIN_TIMEOUT_S <= timeout_s <= MAX_TIMEOUT_S:
            raise BadMessage(
                f"the approval timeout must be {MIN_TIMEOUT_S}..{MAX_TIMEOUT_S} seconds"
            )
        allow, ask = list(allow), list(ask)
        for tool in (*allow, *ask):
            if not valid_tool(tool):
                raise BadMessage(
                    f"{tool!r} is not a tool name: use the agent's names, like Bash, Edit, "
                    "write_file"
                )
        tools = (set(current.allowed) | set(allow)) - set(ask)
        policy = Policy(
            approvers or current.approvers,
            frozenset(tools) if (allow or ask or current.allow is not None) else None,
            timeout_s or current.timeout_s,
        )
        if len(policy.to_json().get("allow", "")) > 2000:
            raise BadMessage("too many pre-approved tools: ask for some instead")
        body = policy.to_json()
        self.client._write(
            sid,
            {paths.policy(sid): body},
            action="change the approval policy",
            verify=lambda: as_dict(self.db.get(paths.policy(sid))) == body,
        )
        return policy


def _name(members: dict[str, Any], uid: str) -> str:
    return str(as_dict(members.get(uid)).get("name") or uid[:8])


def _ended(by: str) -> str:
    return {
        "timeout": "nobody answered in time (the agent was told no)",
        "cancel": "the turn was cancelled",
        "stopped": "the runner stopped",
    }.get(by, "it was decided")
