"""Session operations: share, join, leave, who, send, cancel, history, presence, owner actions.

Every write is one request and has the exact shape docs/DATA-MODEL.md lists,
so the rules can judge it; multi-path writes are atomic, so nothing is ever
half-written. Failures the user can fix become ``SessionError`` lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..firebase.client import SERVER_TIMESTAMP, Rtdb, server_increment
from ..firebase.errors import PermissionDenied
from ..firebase.identity import MAX_NAME, Auth, Identity
from . import codes, paths
from .errors import (
    BadInvite,
    BadMessage,
    Kicked,
    NotAllowed,
    NotMember,
    SessionClosed,
    SessionFull,
)
from .records import (
    Member,
    Message,
    Meta,
    Presence,
    SessionState,
    fill_reply_text,
    history_order,
    parse_queue,
    queue_positions,
)

MAX_TEXT = 16_000
DEFAULT_MAX_MEMBERS = 10
DEFAULT_INVITE_TTL_S = 24 * 3600
DEFAULT_IDLE_TIMEOUT_S = 8 * 3600
TYPING_WINDOW_MS = 4_000


@dataclass(frozen=True)
class Shared:
    session: str
    invite: str  # display form, ABCDE-FGHJK


@dataclass(frozen=True)
class Joined:
    session: str
    members: list[Member]
    messages: list[Message]
    already_member: bool


@dataclass(frozen=True)
class Sent:
    message: str
    position: int


@dataclass(frozen=True)
class MemberStatus:
    member: Member
    away: bool
    typing: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "uid": self.member.uid,
            "name": self.member.name,
            "role": self.member.role,
            "away": self.away,
            "typing": self.typing,
        }


class SessionClient:
    """One identity's handle on sessions. Thread-safe as far as the Rtdb client is."""

    def __init__(self, db: Rtdb, auth: Auth, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.auth = auth
        self._clock = clock
        self._names: dict[str, str] = {}  # the name each session knows me by

    @property
    def me(self) -> Identity:
        return self.auth.current()

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    # -- creating and joining ------------------------------------------------

    def share(
        self,
        title: str = "",
        *,
        max_members: int = DEFAULT_MAX_MEMBERS,
        invite_ttl_s: int = DEFAULT_INVITE_TTL_S,
        idle_timeout_s: int = DEFAULT_IDLE_TIMEOUT_S,
        mode: str = "code",
        invite: bool = True,
    ) -> Shared:
        """Create a session owned by me, in one atomic write.

        With ``invite`` (the default) it is shared at once: the invite is
        written in the same write. Without, it starts private (``Shared.invite``
        is empty) and ``rotate_invite`` shares it later.
        """
        me = self.me
        sid = self.db.new_key()
        code = codes.new_code()
        expires = self.now_ms() + invite_ttl_s * 1000
        meta: dict[str, Any] = {
            "owner": me.uid,
            "title": title[:120],
            "createdAt": SERVER_TIMESTAMP,
            "status": "open",
            "mode": mode,
            "maxMembers": max_members,
            "memberCount": 1,
            "lastActivity": SERVER_TIMESTAMP,
            "idleTimeoutMs": idle_timeout_s * 1000,
        }
        updates: dict[str, Any] = {
            paths.meta(sid): meta,
            paths.member(sid, me.uid): {
                "name": _name(me),
                "role": "owner",
                "joinedAt": SERVER_TIMESTAMP,
            },
        }
        if invite:
            meta.update(inviteCode=code, inviteExpiresAt=expires)
            updates[paths.invite(code)] = {
                "sid": sid,
                "by": me.uid,
                "createdAt": SERVER_TIMESTAMP,
                "expiresAt": expires,
            }
        self.db.update("", updates)
        self._names[sid] = _name(me)
        return Shared(sid, codes.display(code) if invite else "")

    def join(self, typed_code: str) -> Joined:
        """Join by invite code; rejoining keeps your role (idempotent)."""
        code = codes.normalize(typed_code)
        if code is None:
            raise BadInvite(
                f"{typed_code.strip()!r} is not an invite code (codes look like ABCDE-FGHJK)"
            )
        shown = codes.display(code)
        invite = self.db.get(paths.invite(code))
        if not isinstance(invite, dict) or not isinstance(invite.get("sid"), str):
            raise BadInvite(f"no session has invite code {shown}: check it, or ask for a new one")
        sid = invite["sid"]
        me = self.me
        if self._is_member(sid, me.uid):
            state = self.state(sid)
            return Joined(sid, list(state.members.values()), state.messages, True)
        expires = invite.get("expiresAt")
        if isinstance(expires, int | float) and expires <= self.now_ms():
            raise BadInvite(f"invite {shown} has expired: ask the owner for a new one")
        try:
            self.db.update(
                "",
                {
                    paths.member(sid, me.uid): {
                        "name": _name(me),
                        "role": "editor",
                        "joinedAt": SERVER_TIMESTAMP,
                        "via": code,
                    },
                    f"{paths.meta(sid)}/memberCount": server_increment(1),
                    f"{paths.meta(sid)}/lastActivity": SERVER_TIMESTAMP,
                },
            )
        except PermissionDenied:
            raise self._why_join_failed(sid, me.uid, code) from None
        self._names[sid] = _name(me)
        state = self.state(sid)
        return Joined(sid, list(state.members.values()), state.messages, False)

    def _why_join_failed(self, sid: str, uid: str, code: str) -> Exception:
        shown = codes.display(code)
        try:
            if self.db.get(paths.kicked(sid, uid)) is not None:
                return Kicked("the owner removed you from this session; you can't rejoin it")
        except PermissionDenied:
            pass
        if self.db.get(paths.invite(code)) is None:
            return BadInvite(f"invite {shown} was revoked: ask the owner for a new one")
        return SessionFull(f"can't join with {shown}: the session is full or closed")

    def _is_member(self, sid: str, uid: str) -> bool:
        try:
            return self.db.get(paths.member(sid, uid)) is not None
        except PermissionDenied:
            return False

    def leave(self, sid: str) -> None:
        me = self.me
        if self._meta_of_member(sid).owner == me.uid:
            raise NotAllowed("you own this session: /close it instead of leaving")
        self._write(
            sid,
            {
                paths.member(sid, me.uid): None,
                paths.presence(sid, me.uid): None,
                f"{paths.meta(sid)}/memberCount": server_increment(-1),
            },
        )

    # -- reading ---------------------------------------------------------------

    def state(self, sid: str) -> SessionState:
        """One GET of the whole session (members only)."""
        try:
            tree = self.db.get(paths.session(sid))
        except PermissionDenied:
            raise self._not_member(sid) from None
        if tree is None:
            raise self._not_member(sid)
        return SessionState.parse(sid, tree)

    def _not_member(self, sid: str) -> NotMember:
        try:
            if self.db.get(paths.kicked(sid, self.me.uid)) is not None:
                return Kicked("the owner removed you from this session")
        except PermissionDenied:
            pass
        return NotMember(f"you are not a member of session {sid}: join it with its invite code")

    def meta(self, sid: str) -> Meta:
        try:
            return Meta.parse(self.db.get(paths.meta(sid)))
        except PermissionDenied:
            raise self._not_member(sid) from None

    def _meta_of_member(self, sid: str) -> Meta:
        """``meta``, or NotMember when the session is gone (a small read, not the session)."""
        meta = self.meta(sid)
        if not meta.owner:
            raise self._not_member(sid)
        return meta

    def who(self, sid: str) -> list[MemberStatus]:
        state = self.state(sid)
        now = self.now_ms()
        out = []
        for m in sorted(state.members.values(), key=lambda m: (m.joined_at, m.uid)):
            p = state.presence.get(m.uid, Presence())
            out.append(MemberStatus(m, p.is_away(now), p.is_typing(now)))
        return out

    def history(self, sid: str, limit: int | None = None) -> list[Message]:
        try:
            if limit is None:
                raw = self.db.get(paths.messages(sid))
            else:
                raw = self.db.get(paths.messages(sid), order_by="at", limit_to_last=limit)
        except PermissionDenied:
            raise self._not_member(sid) from None
        raw = raw or {}
        turns = (
            self.db.get(f"{paths.session(sid)}/turns")
            if any(isinstance(v, dict) and v.get("role") == "assistant" for v in raw.values())
            else None
        )
        msgs = history_order(
            {
                mid: fill_reply_text(Message.parse(mid, v), turns)
                for mid, v in raw.items()
                if isinstance(v, dict)
            }
        )
        return msgs[-limit:] if limit is not None else msgs

    # -- talking ---------------------------------------------------------------

    def send(self, sid: str, text: str) -> Sent:
        """Queue a message for the agent: queue item, history entry and work index in one write."""
        if not text.strip():
            raise BadMessage("nothing to send: the message is empty")
        length = utf16_length(text)
        if length > MAX_TEXT:
            raise BadMessage(
                f"message too long: {length} characters (the limit is {MAX_TEXT}); nothing was sent"
            )
        me = self.me
        mid = self.db.new_key()
        name = self._names.get(sid) or _name(me)
        try:
            self.db.update("", self._send_write(sid, mid, me.uid, name, text))
        except PermissionDenied:
            # The rules hold a sender to the name they joined with; if ours
            # changed since, send under the member record's name.
            member = self._member_name(sid, me.uid)
            if member is None or member == name:
                raise self._why_denied(sid, "send") from None
            self._names[sid] = member
            self._write(sid, self._send_write(sid, mid, me.uid, member, text), action="send")
        return Sent(mid, self.position(sid, mid))

    def _send_write(self, sid: str, mid: str, uid: str, name: str, text: str) -> dict[str, Any]:
        return {
            paths.queue_item(sid, mid): {
                "uid": uid,
                "name": name,
                "text": text,
                "createdAt": SERVER_TIMESTAMP,
                "state": "queued",
            },
            paths.message(sid, mid): {
                "role": "user",
                "uid": uid,
                "name": name,
                "text": text,
                "at": SERVER_TIMESTAMP,
            },
            paths.work(mid): {"sid": sid, "uid": uid, "at": SERVER_TIMESTAMP},
            f"{paths.meta(sid)}/lastActivity": SERVER_TIMESTAMP,
        }

    def _member_name(self, sid: str, uid: str) -> str | None:
        try:
            raw = self.db.get(f"{paths.member(sid, uid)}/name")
        except PermissionDenied:
            return None
        return raw if isinstance(raw, str) else None

    def position(self, sid: str, mid: str) -> int:
        """1-based place of ``mid`` in the queue (0 once it has been answered)."""
        return queue_positions(parse_queue(self.db.get(paths.queue(sid)))).get(mid, 0)

    def cancel(self, sid: str, mid: str) -> str:
        """Cancel my queued message (skipped) or my running turn (stopped, kept). Returns which."""
        state = self.state(sid)
        me = self.me
        item = next((q for q in state.queue if q.mid == mid), None)
        if item is None:
            raise BadMessage(f"message {mid} is not waiting or running: nothing to cancel")
        if item.uid != me.uid and state.meta.owner != me.uid:
            raise NotAllowed("only the message's author or the session owner can cancel it")
        if item.state == "queued":
            try:
                self._write(
                    sid,
                    {
                        paths.queue_item(sid, mid): None,
                        paths.work(mid): None,
                        f"{paths.message(sid, mid)}/state": "cancelled",
                    },
                )
                return "skipped"
            except NotAllowed:
                pass  # it started running in the meantime: cancel the turn instead
        self._write(
            sid, {f"{paths.turn(sid, mid)}/cancelRequested": {"by": me.uid, "at": SERVER_TIMESTAMP}}
        )
        return "stopping"

    def typing(self, sid: str, typing: bool = True) -> None:
        """Presence with a typing window; callers throttle (not one write per key)."""
        until = self.now_ms() + TYPING_WINDOW_MS if typing else None
        self.db.set(
            paths.presence(sid, self.me.uid), {"lastSeen": SERVER_TIMESTAMP, "typingUntil": until}
        )

    def heartbeat(self, sid: str) -> None:
        self.db.set(paths.presence(sid, self.me.uid), {"lastSeen": SERVER_TIMESTAMP})

    # -- the owner's actions -----------------------------------------------------

    def set_mode(self, sid: str, mode: str) -> None:
        if mode not in ("plan", "code"):
            raise BadMessage(f"unknown mode {mode!r}: use plan or code")
        self._write(sid, {f"{paths.meta(sid)}/mode": mode}, action="change the mode")

    def set_role(self, sid: str, uid: str, role: str) -> None:
        if role not in ("editor", "viewer"):
            raise BadMessage(f"unknown role {role!r}: use editor or viewer")
        self._owner_check(sid, "change roles")
        self._write(sid, {f"{paths.member(sid, uid)}/role": role}, action="change roles")

    def kick(self, sid: str, uid: str) -> None:
        meta = self._owner_check(sid, "remove members")
        if uid == meta.owner:
            raise NotAllowed("you can't remove yourself: /close the session instead")
        if not self._is_member(sid, uid):
            raise BadMessage(f"{uid} is not a member of this session")
        self._write(
            sid,
            {
                paths.member(sid, uid): None,
                paths.presence(sid, uid): None,
                paths.kicked(sid, uid): {"by": self.me.uid, "at": SERVER_TIMESTAMP},
                f"{paths.meta(sid)}/memberCount": server_increment(-1),
                # names whose kick this decrement is, so the rules can tie the two
                f"{paths.meta(sid)}/lastKicked": uid,
            },
            action="remove members",
        )

    def rotate_invite(self, sid: str, ttl_s: int = DEFAULT_INVITE_TTL_S) -> str:
        meta = self._owner_check(sid, "rotate the invite")
        code = codes.new_code()
        expires = self.now_ms() + ttl_s * 1000
        updates: dict[str, Any] = {
            paths.invite(code): {
                "sid": sid,
                "by": self.me.uid,
                "createdAt": SERVER_TIMESTAMP,
                "expiresAt": expires,
            },
            f"{paths.meta(sid)}/inviteCode": code,
            f"{paths.meta(sid)}/inviteExpiresAt": expires,
        }
        if meta.invite_code:
            updates[paths.invite(meta.invite_code)] = None
        self._write(sid, updates, action="rotate the invite")
        return codes.display(code)

    def revoke_invite(self, sid: str) -> None:
        meta = self._owner_check(sid, "revoke the invite")
        updates: dict[str, Any] = {
            f"{paths.meta(sid)}/inviteCode": None,
            f"{paths.meta(sid)}/inviteExpiresAt": None,
        }
        if meta.invite_code:
            updates[paths.invite(meta.invite_code)] = None
        self._write(sid, updates, action="revoke the invite")

    def close(self, sid: str) -> None:
        meta = self._owner_check(sid, "close the session")
        updates: dict[str, Any] = {
            f"{paths.meta(sid)}/status": "closed",
            f"{paths.meta(sid)}/inviteCode": None,
            f"{paths.meta(sid)}/inviteExpiresAt": None,
        }
        if meta.invite_code:
            updates[paths.invite(meta.invite_code)] = None
        self._write(sid, updates, action="close the session")

    # -- helpers -------------------------------------------------------------------

    def _owner_check(self, sid: str, action: str) -> Meta:
        meta = self._meta_of_member(sid)
        if meta.owner != self.me.uid:
            raise NotAllowed(f"only the session owner can {action}")
        return meta

    def _write(self, sid: str, updates: dict[str, Any], *, action: str = "do that") -> None:
        try:
            self.db.update("", updates)
        except PermissionDenied:
            raise self._why_denied(sid, action) from None

    def _why_denied(self, sid: str, action: str) -> Exception:
        try:
            state = self.state(sid)
        except NotMember as exc:
            return exc
        if not state.meta.is_open(self.now_ms()):
            return SessionClosed("this session is closed: it is read-only now")
        me = state.members.get(self.me.uid)
        if me is not None and me.role == "viewer" and action == "send":
            return NotAllowed("you are a viewer in this session: viewers can't send messages")
        return NotAllowed(f"you are not allowed to {action} in this session")


def utf16_length(text: str) -> int:
    """Length as the rules count it (JavaScript strings: UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _name(me: Identity) -> str:
    name = (me.name or "").strip() or me.uid[:8]
    return name[:MAX_NAME]
