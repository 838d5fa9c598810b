"""Typed records read from the session tree, and its server-side orderings.

Parsing is defensive: anything malformed reads as a default rather than
raising, because the tree holds other people's data (the rules validate
writes, but a consumer must never crash on one odd record).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .approvals import Approval, Policy, parse_approvals
from .attachments import AttachmentMeta, parse_meta

ROLES = ("owner", "editor", "viewer")
AWAY_AFTER_MS = 45_000


def _str(v: Any, default: str = "") -> str:
    return v if isinstance(v, str) else default


def _int(v: Any, default: int = 0) -> int:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else default


def as_dict(v: Any) -> dict[str, Any]:
    """A node as an object: ``{}`` for a leaf, a list or nothing."""
    return v if isinstance(v, dict) else {}


@dataclass(frozen=True)
class Meta:
    owner: str = ""
    owner_email: str = ""
    title: str = ""
    invite_code: str | None = None
    invite_expires_at: int = 0
    created_at: int = 0
    status: str = "open"
    mode: str = "code"
    max_members: int = 10
    max_queued: int = 5
    member_count: int = 0
    last_activity: int = 0
    idle_timeout_ms: int = 0
    policy: Policy = field(default_factory=Policy)

    @classmethod
    def parse(cls, raw: Any) -> Meta:
        d = as_dict(raw)
        code = d.get("inviteCode")
        return cls(
            owner=_str(d.get("owner")),
            owner_email=_str(d.get("ownerEmail")),
            title=_str(d.get("title")),
            invite_code=code if isinstance(code, str) else None,
            invite_expires_at=_int(d.get("inviteExpiresAt")),
            created_at=_int(d.get("createdAt")),
            status=_str(d.get("status"), "open"),
            mode=_str(d.get("mode"), "code"),
            max_members=_int(d.get("maxMembers"), 10),
            max_queued=_int(d.get("maxQueued"), 5),
            member_count=_int(d.get("memberCount")),
            last_activity=_int(d.get("lastActivity")),
            idle_timeout_ms=_int(d.get("idleTimeoutMs")),
            policy=Policy.parse(d.get("policy")),
        )

    def is_open(self, now_ms: int) -> bool:
        if self.status != "open":
            return False
        return not self.idle_timeout_ms or self.last_activity + self.idle_timeout_ms > now_ms


@dataclass(frozen=True)
class Member:
    uid: str
    name: str
    role: str
    joined_at: int

    @classmethod
    def parse(cls, uid: str, raw: Any) -> Member:
        d = as_dict(raw)
        role = _str(d.get("role"), "viewer")
        return cls(
            uid,
            _str(d.get("name"), uid[:8]),
            role if role in ROLES else "viewer",
            _int(d.get("joinedAt")),
        )


@dataclass(frozen=True)
class Presence:
    last_seen: int = 0
    typing_until: int = 0

    @classmethod
    def parse(cls, raw: Any) -> Presence:
        d = as_dict(raw)
        return cls(_int(d.get("lastSeen")), _int(d.get("typingUntil")))

    def is_away(self, now_ms: int) -> bool:
        return now_ms - self.last_seen > AWAY_AFTER_MS

    def is_typing(self, now_ms: int) -> bool:
        return self.typing_until > now_ms


@dataclass(frozen=True)
class QueueItem:
    mid: str
    uid: str
    name: str
    text: str
    created_at: int
    state: str
    slot: str = ""  # the sender's waiting slot (slots/<uid>/<slot>) it holds

    @classmethod
    def parse(cls, mid: str, raw: Any) -> QueueItem:
        d = as_dict(raw)
        return cls(
            mid,
            _str(d.get("uid")),
            _str(d.get("name")),
            _str(d.get("text")),
            _int(d.get("createdAt")),
            _str(d.get("state"), "queued"),
            _str(d.get("slot")),
        )


@dataclass(frozen=True)
class Message:
    id: str
    role: str
    uid: str
    name: str
    text: str
    at: int
    state: str = ""
    reply_to: str | None = None
    attachments: tuple[AttachmentMeta, ...] = ()

    @classmethod
    def parse(cls, mid: str, raw: Any) -> Message:
        d = as_dict(raw)
        reply = d.get("replyTo")
        return cls(
            mid,
            _str(d.get("role"), "user"),
            _str(d.get("uid")),
            _str(d.get("name")),
            _str(d.get("text")),
            _int(d.get("at")),
            _str(d.get("state")),
            reply if isinstance(reply, str) else None,
            parse_meta(d.get("attachments")) if d.get("attachments") else (),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "role": self.role,
            "author": self.name,
            "text": self.text,
            "at": self.at,
        }
        if self.reply_to is not None:
            out["reply_to"] = self.reply_to
        if self.state:
            out["state"] = self.state
        if self.attachments:
            out["attachments"] = [
                {"name": a.name, "type": a.media_type, "size": a.size} for a in self.attachments
            ]
        return out


@dataclass(frozen=True)
class Tool:
    tid: str
    name: str
    state: str
    detail: str
    output: str
    at: int

    @classmethod
    def parse(cls, tid: str, raw: Any) -> Tool:
        d = as_dict(raw)
        return cls(
            tid,
            _str(d.get("name"), "tool"),
            _str(d.get("state"), "running"),
            _str(d.get("input")),
            _str(d.get("output")),
            _int(d.get("at")),
        )


@dataclass(frozen=True)
class Turn:
    mid: str
    state: str
    runner: str
    started_at: int
    ended_at: int
    chunks: dict[str, str] = field(default_factory=dict)
    tools: dict[str, Tool] = field(default_factory=dict)
    error: str = ""
    cancel_requested: bool = False
    attempt: int = 1
    cancel_by: str = ""  # who asked to cancel it
    fence: int = 0

    @classmethod
    def parse(cls, mid: str, raw: Any) -> Turn:
        d = as_dict(raw)
        chunks = {k: v for k, v in as_dict(d.get("chunks")).items() if isinstance(v, str)}
        tools = {k: Tool.parse(k, v) for k, v in as_dict(d.get("tools")).items()}
        return cls(
            mid,
            _str(d.get("state"), "running"),
            _str(d.get("runner")),
            _int(d.get("startedAt")),
            _int(d.get("endedAt")),
            chunks,
            tools,
            _str(d.get("error")),
            bool(d.get("cancelRequested")),
            _int(d.get("attempt"), 1),
            _str(as_dict(d.get("cancelRequested")).get("by")),
            _int(d.get("fence")),
        )

    @property
    def identity(self) -> tuple[int, int, int]:
        """Which attempt this is: a retry (a new claim) has a new one, and streams afresh."""
        return (self.attempt, self.fence, self.started_at)

    def chunk_keys(self) -> list[str]:
        """Chunk keys in write order (``c000000``.. ; past a million they grow a digit)."""
        return sorted(self.chunks, key=lambda k: (len(k), k))

    @property
    def text(self) -> str:
        return "".join(self.chunks[k] for k in self.chunk_keys())

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class Lock:
    """The session's lock: which message a runner is answering, until when (server ms)."""

    mid: str
    runner: str
    lease_until: int

    @classmethod
    def parse(cls, raw: Any) -> Lock | None:
        d = as_dict(raw)
        if not d:
            return None
        return cls(_str(d.get("mid")), _str(d.get("runner")), _int(d.get("leaseUntil")))


#: A lease this far past its end (ms, server time) means its runner is gone.
LEASE_GRACE_MS = 2_000


def stalled(turn: Turn, lock: Lock | None, server_now_ms: int) -> bool:
    """A running turn that no live runner holds: no lock for it, or a lapsed lease."""
    if turn.state != "running":
        return False
    if lock is None or lock.mid != turn.mid:
        return True
    return lock.lease_until + LEASE_GRACE_MS < server_now_ms


def fill_reply_text(message: Message, turns: Any) -> Message:
    """An agent reply's text is its turn's chunks (streamed once, never written twice).

    A failed or cancelled reply also says why, after what was streamed.
    """
    if message.role != "assistant" or message.text or not message.reply_to:
        return message
    return with_reply_text(
        message, Turn.parse(message.reply_to, as_dict(turns).get(message.reply_to))
    )


def with_reply_text(message: Message, turn: Turn | None) -> Message:
    """``fill_reply_text`` for a turn already parsed (``None``: there is none)."""
    if message.role != "assistant" or message.text or not message.reply_to:
        return message
    if turn is None:
        return replace(message, text="(no reply)")
    text = turn.text
    if turn.error and turn.state in ("failed", "cancelled"):
        text = f"{text}\n\n[{turn.state}: {turn.error}]".strip()
    return replace(message, text=text or "(no reply)")


@dataclass(frozen=True)
class AgentInfo:
    """Which agent answers the session (``sessions/<sid>/agent``), as its runner said."""

    name: str = ""
    model: str = ""
    folder: str = ""
    session_id: str = ""
    runner: str = ""
    at: int = 0

    @classmethod
    def parse(cls, raw: Any) -> AgentInfo:
        d = as_dict(raw)
        return cls(
            _str(d.get("name")),
            _str(d.get("model")),
            _str(d.get("folder")),
            _str(d.get("sessionId")),
            _str(d.get("runner")),
            _int(d.get("at")),
        )

    def describe(self) -> str:
        """``claude (opus) in repo``; ``""`` before any runner has said."""
        if not self.name:
            return ""
        model = f" ({self.model})" if self.model else ""
        folder = f" in {self.folder}" if self.folder else ""
        return f"{self.name}{model}{folder}"


@dataclass(frozen=True)
class SessionState:
    """Everything a member can see of one session, parsed from the tree."""

    sid: str
    meta: Meta
    members: dict[str, Member]
    presence: dict[str, Presence]
    queue: list[QueueItem]
    messages: list[Message]
    turns: dict[str, Turn]
    lock: Lock | None = None
    approvals: dict[tuple[str, str], Approval] = field(default_factory=dict)
    agent: AgentInfo = field(default_factory=AgentInfo)

    @classmethod
    def parse(cls, sid: str, tree: Any) -> SessionState:
        d = as_dict(tree)
        turns = {mid: Turn.parse(mid, v) for mid, v in as_dict(d.get("turns")).items()}
        messages = {}
        for mid, v in as_dict(d.get("transcript")).items():
            m = Message.parse(mid, v)
            messages[mid] = with_reply_text(m, turns.get(m.reply_to or ""))
        return cls(
            sid,
            Meta.parse(d.get("meta")),
            {uid: Member.parse(uid, v) for uid, v in as_dict(d.get("members")).items()},
            {uid: Presence.parse(v) for uid, v in as_dict(d.get("presence")).items()},
            queue_order(
                {mid: QueueItem.parse(mid, v) for mid, v in as_dict(d.get("queue")).items()}
            ),
            history_order(messages),
            turns,
            Lock.parse(d.get("lock")),
            parse_approvals(d.get("turns")),
            AgentInfo.parse(d.get("agent")),
        )

    @property
    def exists(self) -> bool:
        return bool(self.meta.owner)


def queue_order(items: dict[str, QueueItem]) -> list[QueueItem]:
    """Server order: the running item first, then by server time, ties by key."""
    return sorted(items.values(), key=lambda q: (q.state != "running", q.created_at, q.mid))


def history_order(messages: dict[str, Message]) -> list[Message]:
    """Server order: by server time, ties by key (a reply's key sorts after its question)."""
    return sorted(messages.values(), key=lambda m: (m.at, m.id))


def parse_queue(raw: Any) -> list[QueueItem]:
    """A ``queue`` node, parsed (malformed entries skipped) and in server order."""
    return queue_order(
        {k: QueueItem.parse(k, v) for k, v in as_dict(raw).items() if isinstance(v, dict)}
    )


def queue_positions(queue: list[QueueItem]) -> dict[str, int]:
    """1-based places in line; 1 is the message being answered (or next)."""
    return {item.mid: i for i, item in enumerate(queue, start=1)}
