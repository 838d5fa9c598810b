"""Session operations: share, join, leave, who, send, cancel, history, presence, owner actions.

Every write is one request and has the exact shape docs/DATA-MODEL.md lists,
so the rules can judge it; multi-path writes are atomic, so nothing is ever
half-written. Failures the user can fix become ``SessionError`` lines.

Every write is also safe to retry: when its answer is lost (a reset after the
server applied it), the HTTP client may replay it and the rules refuse the
replay, or the client gives up with a network error; either way the write
is checked by reading back what it should have changed before anything is
reported, so a write that worked is never called a failure (and a user told
"failed" never sends twice).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..firebase.client import SERVER_TIMESTAMP, Rtdb, server_increment
from ..firebase.errors import FirebaseError, NetworkError, PermissionDenied
from ..firebase.identity import Auth, Identity, token_claims
from . import allowlist, codes, names, paths, windows
from .approval_ops import ApprovalOps
from .attachments import MAX_FILES, Attached
from .errors import (
    BadInvite,
    BadMessage,
    Kicked,
    NameTaken,
    NotAllowed,
    NotMember,
    SessionClosed,
    SessionError,
    SessionFull,
    TooManyWaiting,
)
from .records import (
    Member,
    Message,
    Meta,
    Presence,
    QueueItem,
    SessionState,
    Turn,
    fill_reply_text,
    history_order,
    parse_queue,
    queue_positions,
    stalled,
)

MAX_TEXT = 16_000
DEFAULT_MAX_MEMBERS = 10
DEFAULT_MAX_QUEUED = 5  # messages one member may have waiting at once
MAX_SLOTS = 10  # the rules' upper bound for meta/maxQueued
ROLES_FOR_JOINERS = ("editor", "viewer")
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
class SessionSummary:
    """One of my sessions, for ``emdash-fb sessions``: what it is and where I stand in it."""

    session: str
    title: str
    owner: str  # the owner's name
    role: str  # owner | editor | viewer | removed | gone
    members: int
    last_activity: int
    status: str  # open | closed | removed | gone

    def to_json(self) -> dict[str, Any]:
        return {
            "session": self.session,
            "title": self.title,
            "owner": self.owner,
            "role": self.role,
            "members": self.members,
            "last_activity": self.last_activity,
            "status": self.status,
        }


@dataclass(frozen=True)
class Renamed:
    """What a rename did in one session: ``renamed``, ``taken`` (kept the old name) or
    ``skipped`` (closed, or no longer a member)."""

    session: str
    outcome: str


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
        self.clock_offset_ms = 0  # server clock - ours, as a live view has measured it
        self.approvals = ApprovalOps(self)

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
        join_role: str = "editor",
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> Shared:
        """Create a session owned by me, in one atomic write.

        With ``invite`` (the default) it is shared at once: the invite, which
        gives first-time joiners ``join_role``, is written in the same write.
        Without, it starts private (``Shared.invite`` is empty) and
        ``rotate_invite`` shares it later. Only owners on the project's
        allowlist may create sessions (the rules check it).
        """
        _check_role(join_role)
        me = self.me
        name = self.my_name()
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
            "maxQueued": max(1, min(MAX_SLOTS, max_queued)),
            "memberCount": 1,
            "lastActivity": SERVER_TIMESTAMP,
            "idleTimeoutMs": idle_timeout_s * 1000,
        }
        email = _verified_email(me)
        if email:  # lets a runner check an email or domain allowance
            meta.update(ownerEmail=email, ownerDomain=allowlist.domain_of(email))
        updates: dict[str, Any] = {
            paths.meta(sid): meta,
            paths.member(sid, me.uid): {
                "name": name,
                "role": "owner",
                "joinedAt": SERVER_TIMESTAMP,
            },
            paths.name_claim(sid, names.name_key(name)): me.uid,
            paths.my_session(me.uid, sid): {"at": SERVER_TIMESTAMP},
        }
        if invite:
            meta.update(inviteCode=code, inviteExpiresAt=expires)
            updates[paths.invite(code)] = _invite(sid, me.uid, expires, join_role)
        try:
            self._update_verified(
                updates, lambda: self.db.get(f"{paths.member(sid, me.uid)}/role") == "owner"
            )
        except PermissionDenied:
            raise self._why_share_failed(email) from None
        self._names[sid] = name
        return Shared(sid, codes.display(code) if invite else "")

    def _why_share_failed(self, email: str) -> Exception:
        uid = self.me.uid
        try:
            allowed = self.db.get(paths.allowed("uid", uid)) is not None
        except PermissionDenied:
            allowed = False
        if allowed:
            return NotAllowed("the database refused to create the session: check the rules file")
        who = f"uid {uid}" + (f" or email {email}" if email else "")
        return NotAllowed(
            f"you may not start sessions on this project: its admin must allow you first "
            f"(emdash-fb admin allow {uid}); you are {who}"
        )

    def my_name(self) -> str:
        """My display name as sessions store it (normalized), or BadName saying why not."""
        me = self.me
        return names.normalize((me.name or "").strip() or me.uid[:8])

    def join(self, typed_code: str, recent: int = windows.RECENT) -> Joined:
        """Join by invite code; rejoining keeps your role (idempotent). ``Joined.messages``
        holds the last ``recent`` messages (none with 0: a live view streams them)."""
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
            state = self.state(sid, recent)
            return Joined(sid, list(state.members.values()), state.messages, True)
        if invite.get("revokedAt") is not None:
            raise self._why_join_failed(sid, me.uid, code, "")
        expires = invite.get("expiresAt")
        if isinstance(expires, int | float) and expires <= self.now_ms():
            raise BadInvite(f"invite {shown} has expired: ask the owner for a new one")
        name = self.my_name()
        key = names.name_key(name)
        sticky = self._own_role(sid, me.uid)
        role = sticky or (
            invite.get("role") if invite.get("role") in ROLES_FOR_JOINERS else "editor"
        )
        updates: dict[str, Any] = {
            paths.member(sid, me.uid): {
                "name": name,
                "role": role,
                "joinedAt": SERVER_TIMESTAMP,
                "via": code,
            },
            paths.name_claim(sid, key): me.uid,
            paths.my_session(me.uid, sid): {"at": SERVER_TIMESTAMP},
            f"{paths.meta(sid)}/memberCount": server_increment(1),
            f"{paths.meta(sid)}/lastActivity": SERVER_TIMESTAMP,
        }
        if sticky is None:
            updates[paths.role(sid, me.uid)] = role
        try:
            self._update_verified(updates, lambda: self._is_member(sid, me.uid))
        except PermissionDenied:
            raise self._why_join_failed(sid, me.uid, code, key) from None
        self._names[sid] = name
        try:
            state = self.state(sid, recent)
        except NetworkError:  # joined all the same: the live view loads the rest
            return Joined(sid, [], [], False)
        return Joined(sid, list(state.members.values()), state.messages, False)

    def _own_role(self, sid: str, uid: str) -> str | None:
        """My sticky role in ``sid`` (kept from an earlier membership), if any."""
        try:
            role = self.db.get(paths.role(sid, uid))
        except PermissionDenied:
            return None
        return role if role in ROLES_FOR_JOINERS else None

    def _why_join_failed(self, sid: str, uid: str, code: str, key: str) -> Exception:
        shown = codes.display(code)
        try:
            if self.db.get(paths.kicked(sid, uid)) is not None:
                return Kicked("the owner removed you from this session; you can't rejoin it")
        except PermissionDenied:
            pass
        invite = self.db.get(paths.invite(code))
        if not isinstance(invite, dict) or invite.get("revokedAt") is not None:
            return BadInvite(f"invite {shown} is no longer valid: ask the owner for a new one")
        if key:
            holder = self._name_holder(sid, key)
            if holder is not None and holder != uid:
                return NameTaken(
                    f"the name {self.my_name()!r} (or one that looks like it) is taken in this "
                    "session: join with --name OTHER"
                )
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
                paths.my_session(me.uid, sid): None,
                f"{paths.meta(sid)}/memberCount": server_increment(-1),
            },
            action="leave",
            verify=lambda: not self._is_member(sid, me.uid),
        )

    # -- my sessions and my name ----------------------------------------------------

    def my_session_ids(self) -> list[str]:
        """The sessions I joined or shared (and haven't left), newest first."""
        raw = self.db.get(paths.my_sessions(self.me.uid))
        entries = raw if isinstance(raw, dict) else {}
        return sorted(
            entries,
            key=lambda sid: entries[sid].get("at", 0) if isinstance(entries[sid], dict) else 0,
            reverse=True,
        )

    def my_sessions(self) -> list[SessionSummary]:
        """What ``emdash-fb sessions`` lists: small reads per session (meta, two members)."""
        me = self.me.uid
        now = self.now_ms()
        out = []
        for sid in self.my_session_ids():
            try:
                meta = Meta.parse(self.db.get(paths.meta(sid)))
                mine = Member.parse(me, self.db.get(paths.member(sid, me)))
            except PermissionDenied:
                gone = self._not_member(sid)
                status = "removed" if isinstance(gone, Kicked) else "gone"
                out.append(SessionSummary(sid, "", "", status, 0, 0, status))
                continue
            if not meta.owner:
                out.append(SessionSummary(sid, "", "", "gone", 0, 0, "gone"))
                continue
            owner = (
                mine
                if meta.owner == me
                else Member.parse(meta.owner, self.db.get(paths.member(sid, meta.owner)))
            )
            out.append(
                SessionSummary(
                    sid,
                    meta.title,
                    owner.name,
                    mine.role,
                    meta.member_count,
                    meta.last_activity,
                    "open" if meta.is_open(now) else "closed",
                )
            )
        return out

    def forget(self, sid: str) -> None:
        """Stop following ``sid`` without writing to it (a session I was removed from, or a
        closed one, accepts no writes and needs none): it goes off my list of sessions and
        this client drops what it kept about it."""
        self._names.pop(sid, None)
        with contextlib.suppress(FirebaseError):
            self.db.set(paths.my_session(self.me.uid, sid), None)

    def rename(self, sid: str, name: str) -> None:
        """Go by ``name`` in ``sid`` (claimed like at a join; the old name stays mine there)."""
        name = names.normalize(name)
        me = self.me.uid
        member = f"{paths.member(sid, me)}/name"
        try:
            self._update_verified(
                {member: name, paths.name_claim(sid, names.name_key(name)): me},
                lambda: self.db.get(member) == name,
            )
        except PermissionDenied:
            holder = self._name_holder(sid, names.name_key(name))
            if holder is not None and holder != me:
                raise NameTaken(
                    f"the name {name!r} (or one that looks like it) is taken in this session"
                ) from None
            raise self._why_denied(sid, "rename yourself") from None
        self._names[sid] = name

    def rename_everywhere(self, name: str) -> list[Renamed]:
        """After a profile rename: the new name in every open session I'm in."""
        name = names.normalize(name)
        done = []
        for sid in self.my_session_ids():
            try:
                self.rename(sid, name)
                done.append(Renamed(sid, "renamed"))
            except NameTaken:
                done.append(Renamed(sid, "taken"))
            except SessionError:
                done.append(Renamed(sid, "skipped"))
        return done

    def _name_holder(self, sid: str, key: str) -> str | None:
        try:
            holder = self.db.get(paths.name_claim(sid, key))
        except PermissionDenied:
            return None
        return holder if isinstance(holder, str) else None

    # -- reading ---------------------------------------------------------------

    def state(self, sid: str, recent: int = windows.RECENT) -> SessionState:
        """The session as a member sees it (members only): its live part whole, and the
        last ``recent`` messages with their turns (0: no history at all). What it reads
        does not grow with the session's history."""
        try:
            tree = self.db.get(paths.session(sid), **_live_query())
        except PermissionDenied:
            raise self._not_member(sid) from None
        if not tree:
            raise self._not_member(sid)
        tree = dict(tree)
        if recent > 0:
            transcript, turns = self._recent(sid, recent, every_turn=True)
            tree["transcript"], tree["turns"] = transcript, turns
        else:
            # no history, but the turn that is running (cancel, approvals need it)
            lock = tree.get("lock")
            mid = lock.get("mid") if isinstance(lock, dict) else None
            running = self.db.get(paths.turn(sid, mid)) if isinstance(mid, str) else None
            tree["turns"] = {mid: running} if isinstance(running, dict) else {}
        return SessionState.parse(sid, tree)

    def _recent(
        self, sid: str, count: int, before: int | None = None, *, every_turn: bool = False
    ) -> tuple[dict, dict]:
        """(transcript, turns): the last ``count`` messages (by ``at``, at most ``before``)
        and the turns their replies are made of (``every_turn``: and every turn since,
        running ones included)."""
        transcript = self.db.get(
            paths.messages(sid), order_by="at", end_at=before, limit_to_last=count
        )
        transcript = transcript if isinstance(transcript, dict) else {}
        replies = [
            v.get("replyTo")
            for v in transcript.values()
            if isinstance(v, dict) and v.get("role") == "assistant"
        ]
        if not replies and not (every_turn and transcript):
            return transcript, {}
        start = windows.oldest(transcript, "at") or 0
        turns = self.db.get(f"{paths.session(sid)}/turns", order_by="startedAt", start_at=start)
        return transcript, turns if isinstance(turns, dict) else {}

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
        state = self.state(sid, 0)
        now = self.now_ms()
        out = []
        for m in sorted(state.members.values(), key=lambda m: (m.joined_at, m.uid)):
            p = state.presence.get(m.uid, Presence())
            out.append(MemberStatus(m, p.is_away(now), p.is_typing(now)))
        return out

    def history(self, sid: str, limit: int | None = None) -> list[Message]:
        """The last ``limit`` messages, oldest first (all of them with ``None``), read
        page by page with queries: each page costs its own messages, never the whole
        history."""
        out: list[Message] = []
        for page in self.history_pages(sid, page=min(limit or windows.PAGE, windows.PAGE)):
            out[:0] = page
            if limit is not None and len(out) >= limit:
                return out[-limit:]
        return out

    def history_pages(self, sid: str, page: int = windows.PAGE) -> Iterator[list[Message]]:
        """The history in pages of about ``page`` messages, newest page first (each page
        oldest first, with its replies' text)."""
        before: int | None = None
        seen: set[str] = set()
        while True:
            try:
                transcript, turns = self._recent(sid, page + 1, before)
            except PermissionDenied:
                raise self._not_member(sid) from None
            fresh = {k: v for k, v in transcript.items() if k not in seen and isinstance(v, dict)}
            if not fresh:
                return
            seen.update(fresh)
            msgs = history_order(
                {mid: fill_reply_text(Message.parse(mid, v), turns) for mid, v in fresh.items()}
            )
            yield msgs
            if len(transcript) <= page:
                return  # that was the first page: nothing older
            # the next page ends where this one began (inclusive: ties at that `at` are
            # read again and skipped as seen)
            before = msgs[0].at

    # -- talking ---------------------------------------------------------------

    def send(self, sid: str, text: str, files: Sequence[Attached] = ()) -> Sent:
        """Queue a message for the agent: queue item, history entry, work index, one of
        my waiting slots and the attached files, in one write."""
        if not text.strip():
            raise BadMessage("nothing to send: the message is empty")
        if len(files) > MAX_FILES:
            raise BadMessage(f"at most {MAX_FILES} files per message; nothing was sent")
        length = utf16_length(text)
        if length > MAX_TEXT:
            raise BadMessage(
                f"message too long: {length} characters (the limit is {MAX_TEXT}); nothing was sent"
            )
        me = self.me
        mid = self.db.new_key()
        name = self._names.get(sid) or self.my_name()
        for _attempt in range(3):
            slot = self._free_slot(sid, me.uid)
            try:
                self._update_verified(
                    self._send_write(sid, mid, me.uid, name, text, slot, files),
                    lambda: self._member_wrote(sid, mid),
                )
                return Sent(mid, self._position_if_known(sid, mid))
            except PermissionDenied:
                member = self._member_name(sid, me.uid)
                if member is not None and member != name:
                    # The rules hold a sender to the name they joined with; if ours
                    # changed since, send under the member record's name.
                    self._names[sid] = name = member
                    continue
                if self._free_slot(sid, me.uid) != slot:
                    continue  # another send of mine took that slot first: try the next
                limit = self.meta(sid).max_queued
                if int(slot[1:]) >= limit:  # every slot below the limit is taken
                    raise TooManyWaiting(
                        f"you have {limit} messages waiting: wait for the agent or /cancel one"
                    ) from None
                raise self._why_denied(sid, "send") from None
        raise self._why_denied(sid, "send")

    def _member_wrote(self, sid: str, mid: str) -> bool:
        """Whether my message ``mid`` is stored (so a lost answer was a success)."""
        return self.db.get(f"{paths.message(sid, mid)}/uid") == self.me.uid

    def _position_if_known(self, sid: str, mid: str) -> int:
        """The queue position, or 0 if it can't be read now (the message is sent all the same)."""
        try:
            return self.position(sid, mid)
        except NetworkError:
            return 0

    def _free_slot(self, sid: str, uid: str) -> str:
        """The first of my waiting slots not holding a message (s0, s1, ...)."""
        try:
            taken = self.db.get(paths.slots(sid, uid))
        except PermissionDenied:
            raise self._not_member(sid) from None
        taken = taken if isinstance(taken, dict) else {}
        free = next((f"s{i}" for i in range(MAX_SLOTS) if f"s{i}" not in taken), None)
        if free is None:
            raise TooManyWaiting(
                f"you have {len(taken)} messages waiting: wait for the agent or /cancel one"
            )
        return free

    def _send_write(
        self,
        sid: str,
        mid: str,
        uid: str,
        name: str,
        text: str,
        slot: str,
        files: Sequence[Attached] = (),
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "user",
            "uid": uid,
            "name": name,
            "text": text,
            "at": SERVER_TIMESTAMP,
        }
        write: dict[str, Any] = {}
        if files:
            message["attachments"] = {f"a{i}": f.meta() for i, f in enumerate(files)}
            for i, f in enumerate(files):
                write[f"{paths.attachment_data(sid, mid)}/a{i}"] = f.record()
        return write | {
            paths.queue_item(sid, mid): {
                "uid": uid,
                "name": name,
                "text": text,
                "createdAt": SERVER_TIMESTAMP,
                "state": "queued",
                "slot": slot,
            },
            paths.message(sid, mid): message,
            paths.slot(sid, uid, slot): mid,
            paths.work(mid): {"sid": sid, "uid": uid, "at": SERVER_TIMESTAMP},
            f"{paths.meta(sid)}/lastMessage": mid,
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
        """Cancel my queued message or my running turn (or, as owner, anyone's).

        Returns ``"skipped"`` (it never ran), ``"cancelled"`` (its turn had no live
        runner: ended at once for everyone) or ``"stopping"`` (the runner was asked
        and stops within a second; a cancel is honoured by any runner that touches
        the message later, so a retry never carries it out).
        """
        state = self.state(sid)
        me = self.me
        item = next((q for q in state.queue if q.mid == mid), None)
        if item is None:
            raise BadMessage(f"message {mid} is not waiting or running: nothing to cancel")
        if item.uid != me.uid and state.meta.owner != me.uid:
            raise NotAllowed("only the message's author or the session owner can cancel it")
        message = f"{paths.message(sid, mid)}/state"
        slot = {paths.slot(sid, item.uid, item.slot): None} if item.slot else {}
        if item.state == "queued":
            try:
                self._write(
                    sid,
                    {
                        paths.queue_item(sid, mid): None,
                        paths.work(mid): None,
                        message: "cancelled",
                        **slot,
                    },
                    action="cancel it",
                    verify=lambda: self.db.get(message) == "cancelled",
                )
                return "skipped"
            except NotAllowed:
                pass  # it started running in the meantime: cancel the turn instead
        turn = state.turns.get(mid)
        if turn is None:  # older than the messages a state holds: read it
            raw = self.db.get(paths.turn(sid, mid))
            turn = Turn.parse(mid, raw) if isinstance(raw, dict) else None
        if turn is not None and stalled(turn, state.lock, self.server_now_ms()):
            try:
                self.cancel_stalled(sid, mid, item, turn)
                return "cancelled"
            except NotAllowed:
                pass  # by the server's clock the lease is still live: ask the runner
        if turn is not None and turn.cancel_requested:
            return "stopping"
        request = f"{paths.turn(sid, mid)}/cancelRequested"
        self._write(
            sid,
            {request: {"by": me.uid, "at": SERVER_TIMESTAMP}},
            action="cancel it",
            verify=lambda: self.db.get(request) is not None,
        )
        return "stopping"

    def cancel_stalled(self, sid: str, mid: str, item: QueueItem, turn: Turn) -> None:
        """End a running turn that no runner holds any more, as cancelled, for everyone."""
        turn_path = paths.turn(sid, mid)
        updates: dict[str, Any] = {
            f"{turn_path}/state": "cancelled",
            f"{turn_path}/endedAt": SERVER_TIMESTAMP,
            paths.queue_item(sid, mid): None,
            paths.work(mid): None,
            f"{paths.message(sid, mid)}/state": "cancelled",
            paths.lock(sid): None,
        }
        if item.slot:
            updates[paths.slot(sid, item.uid, item.slot)] = None
        if not turn.cancel_requested:
            updates[f"{turn_path}/cancelRequested"] = {"by": self.me.uid, "at": SERVER_TIMESTAMP}
        self._write(
            sid,
            updates,
            action="cancel it",
            verify=lambda: self.db.get(f"{turn_path}/state") == "cancelled",
        )

    def server_now_ms(self) -> int:
        """Now by the server's clock, as far as this client can tell: our clock plus the
        offset a live view measured from our own server-timestamped writes (else 0)."""
        return self.now_ms() + self.clock_offset_ms

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
        self._write(
            sid,
            {f"{paths.meta(sid)}/mode": mode},
            action="change the mode",
            verify=lambda: self.db.get(f"{paths.meta(sid)}/mode") == mode,
        )

    def set_role(self, sid: str, uid: str, role: str) -> None:
        """Change a member's role; it sticks (leaving and rejoining keeps it)."""
        if role not in ROLES_FOR_JOINERS:
            raise BadMessage(f"unknown role {role!r}: use editor or viewer")
        self._owner_check(sid, "change roles")
        self._write(
            sid,
            {f"{paths.member(sid, uid)}/role": role, paths.role(sid, uid): role},
            action="change roles",
            verify=lambda: self.db.get(paths.role(sid, uid)) == role,
        )

    def kick(self, sid: str, uid: str) -> str | None:
        """Remove a member for good. The invite they knew is replaced in the same write
        (the rules require it); returns the new code to share (None: there was none)."""
        meta = self._owner_check(sid, "remove members")
        if uid == meta.owner:
            raise NotAllowed("you can't remove yourself: /close the session instead")
        if not self._is_member(sid, uid):
            raise BadMessage(f"{uid} is not a member of this session")
        updates: dict[str, Any] = {
            paths.member(sid, uid): None,
            paths.presence(sid, uid): None,
            paths.kicked(sid, uid): {"by": self.me.uid, "at": SERVER_TIMESTAMP},
            f"{paths.meta(sid)}/memberCount": server_increment(-1),
            # names whose kick this decrement is, so the rules can tie the two
            f"{paths.meta(sid)}/lastKicked": uid,
        }
        new_code = None
        if meta.invite_code:
            new_code, rotation = self._rotation(sid, meta, DEFAULT_INVITE_TTL_S, None)
            updates.update(rotation)
        self._write(
            sid,
            updates,
            action="remove members",
            verify=lambda: self.db.get(paths.kicked(sid, uid)) is not None,
        )
        return codes.display(new_code) if new_code else None

    def rotate_invite(
        self, sid: str, ttl_s: int = DEFAULT_INVITE_TTL_S, role: str | None = None
    ) -> str:
        """A new invite code (the old one can never be used again); ``role`` defaults to the
        old invite's."""
        if role is not None:
            _check_role(role)
        meta = self._owner_check(sid, "rotate the invite")
        code, updates = self._rotation(sid, meta, ttl_s, role)
        self._write(
            sid,
            updates,
            action="rotate the invite",
            verify=lambda: self.db.get(f"{paths.meta(sid)}/inviteCode") == code,
        )
        return codes.display(code)

    def _rotation(
        self, sid: str, meta: Meta, ttl_s: int, role: str | None
    ) -> tuple[str, dict[str, Any]]:
        code = codes.new_code()
        expires = self.now_ms() + ttl_s * 1000
        if role is None:
            role = self.invite_role(meta) or "editor"
        updates: dict[str, Any] = {
            paths.invite(code): _invite(sid, self.me.uid, expires, role),
            f"{paths.meta(sid)}/inviteCode": code,
            f"{paths.meta(sid)}/inviteExpiresAt": expires,
        }
        if meta.invite_code:
            updates[f"{paths.invite(meta.invite_code)}/revokedAt"] = SERVER_TIMESTAMP
        return code, updates

    def invite_role(self, meta: Meta) -> str | None:
        """The role the session's current invite gives first-time joiners (None: no invite)."""
        if not meta.invite_code:
            return None
        role = self.db.get(f"{paths.invite(meta.invite_code)}/role")
        return role if role in ROLES_FOR_JOINERS else None

    def set_join_role(self, sid: str, role: str) -> None:
        """The role first-time joiners get with the current invite (editor or viewer)."""
        _check_role(role)
        meta = self._owner_check(sid, "change the role joiners get")
        if not meta.invite_code:
            raise BadMessage("this session has no invite: /share first")
        where = f"{paths.invite(meta.invite_code)}/role"
        self._write(
            sid,
            {where: role},
            action="change the join role",
            verify=lambda: self.db.get(where) == role,
        )

    def set_max_queued(self, sid: str, limit: int) -> None:
        """How many messages each member may have waiting at once (1..10)."""
        if not 1 <= limit <= MAX_SLOTS:
            raise BadMessage(f"the limit must be 1..{MAX_SLOTS} waiting messages per member")
        self._owner_check(sid, "change the queue limit")
        where = f"{paths.meta(sid)}/maxQueued"
        self._write(
            sid,
            {where: limit},
            action="change the queue limit",
            verify=lambda: self.db.get(where) == limit,
        )

    def revoke_invite(self, sid: str) -> None:
        meta = self._owner_check(sid, "revoke the invite")
        updates: dict[str, Any] = {
            f"{paths.meta(sid)}/inviteCode": None,
            f"{paths.meta(sid)}/inviteExpiresAt": None,
        }
        if meta.invite_code:
            updates[f"{paths.invite(meta.invite_code)}/revokedAt"] = SERVER_TIMESTAMP
        self._write(
            sid,
            updates,
            action="revoke the invite",
            verify=lambda: self.db.get(f"{paths.meta(sid)}/inviteCode") is None,
        )

    def close(self, sid: str) -> None:
        meta = self._owner_check(sid, "close the session")
        updates: dict[str, Any] = {
            f"{paths.meta(sid)}/status": "closed",
            f"{paths.meta(sid)}/inviteCode": None,
            f"{paths.meta(sid)}/inviteExpiresAt": None,
        }
        if meta.invite_code:
            updates[f"{paths.invite(meta.invite_code)}/revokedAt"] = SERVER_TIMESTAMP
        self._write(
            sid,
            updates,
            action="close the session",
            verify=lambda: self.db.get(f"{paths.meta(sid)}/status") == "closed",
        )

    # -- helpers -------------------------------------------------------------------

    def _owner_check(self, sid: str, action: str) -> Meta:
        meta = self._meta_of_member(sid)
        if meta.owner != self.me.uid:
            raise NotAllowed(f"only the session owner can {action}")
        return meta

    def _write(
        self,
        sid: str,
        updates: dict[str, Any],
        *,
        action: str = "do that",
        verify: Callable[[], bool] | None = None,
    ) -> None:
        """One multi-path write; a refusal becomes the reason, in one line."""
        try:
            self._update_verified(updates, verify)
        except PermissionDenied:
            raise self._why_denied(sid, action) from None

    def _update_verified(self, updates: dict[str, Any], verify: Callable[[], bool] | None) -> None:
        """``db.update("", updates)``; if it is refused or its answer is lost, ``verify``
        (a read of what it should have changed) decides whether it happened after all."""
        try:
            self.db.update("", updates)
        except (PermissionDenied, NetworkError):
            if verify is not None and self._happened(verify):
                return
            raise

    @staticmethod
    def _happened(verify: Callable[[], bool]) -> bool:
        try:
            return bool(verify())
        except FirebaseError:
            return False

    def _why_denied(self, sid: str, action: str) -> Exception:
        try:
            state = self.state(sid, 0)
        except NotMember as exc:
            return exc
        if not state.meta.is_open(self.now_ms()):
            return SessionClosed("this session is closed: it is read-only now")
        me = state.members.get(self.me.uid)
        if me is not None and me.role == "viewer" and action == "send":
            return NotAllowed("you are a viewer in this session: viewers can't send messages")
        if action == "send":
            waiting = sum(1 for q in state.queue if q.uid == self.me.uid)
            if waiting >= state.meta.max_queued:
                return TooManyWaiting(
                    f"you have {waiting} messages waiting: wait for the agent or /cancel one"
                )
        return NotAllowed(f"you are not allowed to {action} in this session")


def _live_query() -> dict[str, Any]:
    """The live part of a session (``windows.py``): keys up to ``windows.LIVE_END``."""
    return {"order_by": "$key", "end_at": windows.LIVE_END}


def utf16_length(text: str) -> int:
    """Length as the rules count it (JavaScript strings: UTF-16 code units)."""
    return names.utf16_length(text)


def _check_role(role: str) -> None:
    if role not in ROLES_FOR_JOINERS:
        raise BadMessage(f"unknown role {role!r}: use editor or viewer")


def _invite(sid: str, uid: str, expires: int, role: str) -> dict[str, Any]:
    return {
        "sid": sid,
        "by": uid,
        "createdAt": SERVER_TIMESTAMP,
        "expiresAt": expires,
        "role": role,
    }


def _verified_email(me: Identity) -> str:
    """My address in lower case if my ID token says it is verified, else ``""``."""
    claims = token_claims(me.id_token)
    email = claims.get("email")
    if claims.get("email_verified") is True and isinstance(email, str):
        return email.lower()
    return ""
