"""Shared tool approvals: the owner's policy, approval records, who may answer.

What it owns: the shapes under ``sessions/<sid>/meta/policy`` and
``sessions/<sid>/turns/<mid>/approvals/<aid>`` (see docs/DATA-MODEL.md), parsed
defensively, and the one definition of who may answer an approval that the
client, the runner and the rules generator (``rules/build_rules.py``) share.

The policy names who answers tool approvals (``owner``, the default; ``editors``:
the owner or any editor; ``author``: the owner or the author of the message that
caused the request), which tools run without asking for every message (the
read-only tools unless the owner says otherwise) and how long a request waits
(no answer in time is a deny).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .attachments import as_dict

APPROVERS = ("owner", "editors", "author")
DEFAULT_TIMEOUT_S = 300
MIN_TIMEOUT_S = 10
MAX_TIMEOUT_S = 3600
MAX_ALLOW_CHARS = 2000
#: A tool name in a policy: what the agents call their tools ("Bash", "write_file",
#: "mcp__github__create_issue").
TOOL_NAME = r"[A-Za-z0-9_:-]{1,64}"
_TOOL = re.compile(f"^{TOOL_NAME}$")
MAX_SUMMARY = 500
MAX_DETAIL = 4000
MAX_REASON = 500
#: Outcomes nobody answered: the request timed out, the turn was cancelled, the runner stopped.
UNANSWERED = ("timeout", "cancel", "stopped")

#: Tools a policy pre-approves unless the owner says otherwise: they only read the working
#: folder (web search and fetch are left out: a query can carry what was read to the outside).
READ_ONLY_TOOLS = frozenset(
    {
        # Claude Code
        "Read", "Glob", "Grep", "LS", "NotebookRead", "TodoRead", "TodoWrite",
        # Gemini CLI
        "read_file", "read_many_files", "list_directory", "glob", "search_file_content",
        # the echo agent
        "list_files",
    }
)  # fmt: skip


def valid_tool(name: str) -> bool:
    return bool(_TOOL.match(name))


@dataclass(frozen=True)
class Policy:
    approvers: str = "owner"
    allow: frozenset[str] | None = None  # None: the read-only tools
    timeout_s: int = DEFAULT_TIMEOUT_S

    @classmethod
    def parse(cls, raw: Any) -> Policy:
        d = as_dict(raw)
        approvers = d.get("approvers")
        allow = d.get("allow")
        timeout = d.get("timeoutS")
        return cls(
            approvers if approvers in APPROVERS else "owner",
            frozenset(t for t in allow.split(",") if t) if isinstance(allow, str) else None,
            int(timeout)
            if isinstance(timeout, int | float)
            and not isinstance(timeout, bool)
            and MIN_TIMEOUT_S <= timeout <= MAX_TIMEOUT_S
            else DEFAULT_TIMEOUT_S,
        )

    @property
    def allowed(self) -> frozenset[str]:
        """The tools every message may use without asking."""
        return READ_ONLY_TOOLS if self.allow is None else self.allow

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"approvers": self.approvers, "timeoutS": self.timeout_s}
        if self.allow is not None:
            out["allow"] = ",".join(sorted(self.allow))
        return out

    def who(self) -> str:
        """Who answers, in words."""
        return {
            "owner": "the owner",
            "editors": "the owner or an editor",
            "author": "the owner or the message's author",
        }[self.approvers]


def may_answer(policy: Policy, *, uid: str, role: str, owner: str, author: str) -> bool:
    """Whether ``uid`` (a member with ``role``) may answer a request caused by ``author``'s
    message. Mirrors the rule on ``turns/<mid>/approvals/<aid>/answer``."""
    if uid == owner:
        return True
    if policy.approvers == "editors":
        return role == "editor"
    if policy.approvers == "author":
        return uid == author
    return False


@dataclass(frozen=True)
class Answer:
    by: str  # uid
    allow: bool
    reason: str
    at: int

    @classmethod
    def parse(cls, raw: Any) -> Answer | None:
        d = as_dict(raw)
        if not isinstance(d.get("by"), str) or d.get("decision") not in ("allow", "deny"):
            return None
        reason = d.get("reason")
        at = d.get("at")
        return cls(
            d["by"],
            d["decision"] == "allow",
            reason if isinstance(reason, str) else "",
            int(at) if isinstance(at, int | float) else 0,
        )


@dataclass(frozen=True)
class Outcome:
    allow: bool
    by: str  # a uid (who answered) or one of UNANSWERED
    reason: str

    @classmethod
    def parse(cls, raw: Any) -> Outcome | None:
        d = as_dict(raw)
        if not isinstance(d.get("allow"), bool) or not isinstance(d.get("by"), str):
            return None
        reason = d.get("reason")
        return cls(d["allow"], d["by"], reason if isinstance(reason, str) else "")


@dataclass(frozen=True)
class Approval:
    """One request of the agent to use a tool, and what became of it."""

    mid: str
    aid: str
    tool: str
    summary: str
    detail: str
    author: str  # uid of the message's author
    requested_at: int
    expires_at: int
    answer: Answer | None = None
    outcome: Outcome | None = None

    @classmethod
    def parse(cls, mid: str, aid: str, raw: Any) -> Approval:
        d = as_dict(raw)

        def text(key: str) -> str:
            v = d.get(key)
            return v if isinstance(v, str) else ""

        def number(key: str) -> int:
            v = d.get(key)
            return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0

        return cls(
            mid,
            aid,
            text("tool") or "tool",
            text("summary"),
            text("detail"),
            text("author"),
            number("requestedAt"),
            number("expiresAt"),
            Answer.parse(d.get("answer")),
            Outcome.parse(d.get("outcome")),
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.mid, self.aid)

    def pending(self, server_now_ms: int, turn_running: bool) -> bool:
        """Still waiting for an answer: no answer or outcome, not expired, its turn running."""
        return (
            turn_running
            and self.answer is None
            and self.outcome is None
            and server_now_ms < self.expires_at
        )


def parse_turn_approvals(mid: str, raw: Any) -> dict[tuple[str, str], Approval]:
    """One turn's ``approvals`` node: ``{(mid, aid): Approval}``."""
    return {
        (mid, aid): Approval.parse(mid, aid, record)
        for aid, record in as_dict(raw).items()
        if isinstance(record, dict)
    }


def parse_approvals(turns: Any) -> dict[tuple[str, str], Approval]:
    """Every turn's requests, from the ``turns`` node: ``{(mid, aid): Approval}``."""
    out: dict[tuple[str, str], Approval] = {}
    for mid, turn in as_dict(turns).items():
        out.update(parse_turn_approvals(mid, as_dict(turn).get("approvals")))
    return out
