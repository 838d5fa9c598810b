"""The product's writes, shaped exactly as docs/DATA-MODEL.md lists them.

Each builder returns the body of one request: a multi-path update (PATCH at
the root, keys are paths) or a single value. Tests send them as the user who
would send them, and build attacks by changing one thing in an honest body.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from emdash_fb.session.names import name_key

TS = {".sv": "timestamp"}
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PUSH_ALPHABET = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
MINUTE_MS = 60_000
DAY_MS = 24 * 60 * MINUTE_MS


def inc(n: int) -> dict[str, Any]:
    return {".sv": {"increment": n}}


def now_ms() -> int:
    return int(time.time() * 1000)


def push_id() -> str:
    """A push id: 8 characters of time, 12 random (the rules check the form only)."""
    t, stamp = now_ms(), []
    for _ in range(8):
        stamp.append(PUSH_ALPHABET[t % 64])
        t //= 64
    return "".join(reversed(stamp)) + "".join(secrets.choice(PUSH_ALPHABET) for _ in range(12))


def invite_code() -> str:
    """10 characters of upper-case Crockford base32 (50 bits)."""
    return "".join(secrets.choice(CROCKFORD) for _ in range(10))


def session_path(sid: str, rest: str = "") -> str:
    return f"sessions/{sid}/{rest}" if rest else f"sessions/{sid}"


# -- sessions and membership ---------------------------------------------------


def key(name: str) -> str:
    """A name's look-alike key (the rules compute the same; see emdash_fb/session/names.py)."""
    return name_key(name)


def is_key(key: str) -> bool:
    """Whether ``key`` can be a database key at all (else the server refuses with a 400)."""
    return (
        bool(key)
        and not any(c in key for c in ".#$[]/")
        and all(ord(c) > 0x1F and c != "\x7f" for c in key)
    )


def invite(sid: str, uid: str, *, role: str = "editor", expires_at: int | None = None) -> dict:
    expires = now_ms() + DAY_MS if expires_at is None else expires_at
    return {"sid": sid, "by": uid, "createdAt": TS, "expiresAt": expires, "role": role}


def share(
    uid: str,
    name: str,
    sid: str,
    code: str,
    *,
    expires_at: int | None = None,
    max_members: int = 5,
    max_queued: int = 5,
    idle_ms: int = 30 * MINUTE_MS,
    title: str = "demo",
    mode: str = "code",
    role: str = "editor",
) -> dict[str, Any]:
    inv = invite(sid, uid, role=role, expires_at=expires_at)
    return {
        f"sessions/{sid}/meta": {
            "owner": uid,
            "title": title,
            "inviteCode": code,
            "inviteExpiresAt": inv["expiresAt"],
            "createdAt": TS,
            "status": "open",
            "mode": mode,
            "maxMembers": max_members,
            "maxQueued": max_queued,
            "memberCount": 1,
            "lastActivity": TS,
            "idleTimeoutMs": idle_ms,
        },
        f"sessions/{sid}/members/{uid}": {"name": name, "role": "owner", "joinedAt": TS},
        f"sessions/{sid}/names/{key(name)}": uid,
        f"invites/{code}": inv,
    }


def join(
    uid: str, name: str, sid: str, code: str, *, role: str = "editor", first: bool = True
) -> dict[str, Any]:
    """A join: ``role`` is the invite's (first time) or the sticky one (``first=False``)."""
    # A joiner can't read meta before joining, so the count moves by a server increment.
    body: dict[str, Any] = {
        f"sessions/{sid}/members/{uid}": {
            "name": name,
            "role": role,
            "joinedAt": TS,
            "via": code,
        },
        f"sessions/{sid}/names/{key(name)}": uid,
        f"sessions/{sid}/meta/memberCount": inc(1),
        f"sessions/{sid}/meta/lastActivity": TS,
    }
    if first:
        body[f"sessions/{sid}/roles/{uid}"] = role
    return body


def leave(uid: str, sid: str) -> dict[str, Any]:
    return {
        f"sessions/{sid}/members/{uid}": None,
        f"sessions/{sid}/presence/{uid}": None,
        f"sessions/{sid}/meta/memberCount": inc(-1),
    }


def set_role(sid: str, uid: str, role: str) -> dict[str, Any]:
    return {f"sessions/{sid}/members/{uid}/role": role, f"sessions/{sid}/roles/{uid}": role}


def kick(
    owner: str, sid: str, uid: str, old: str | None, new: str | None, *, role: str = "editor"
) -> dict[str, Any]:
    """Kick ``uid``: the invite they knew is replaced by ``new`` (or revoked: ``new=None``)."""
    body: dict[str, Any] = {
        f"sessions/{sid}/members/{uid}": None,
        f"sessions/{sid}/presence/{uid}": None,
        f"sessions/{sid}/kicked/{uid}": {"by": owner, "at": TS},
        f"sessions/{sid}/meta/memberCount": inc(-1),
        f"sessions/{sid}/meta/lastKicked": uid,
    }
    if new is None:
        body.update(revoke(sid, old) if old else {})
    else:
        body.update(rotate(owner, sid, old, new, role=role))
    return body


def rotate(
    owner: str,
    sid: str,
    old: str | None,
    new: str,
    *,
    expires_at: int | None = None,
    role: str = "editor",
) -> dict[str, Any]:
    inv = invite(sid, owner, role=role, expires_at=expires_at)
    body: dict[str, Any] = {
        f"invites/{new}": inv,
        f"sessions/{sid}/meta/inviteCode": new,
        f"sessions/{sid}/meta/inviteExpiresAt": inv["expiresAt"],
    }
    if old is not None:
        body[f"invites/{old}/revokedAt"] = TS
    return body


def revoke(sid: str, old: str) -> dict[str, Any]:
    return {
        f"invites/{old}/revokedAt": TS,
        f"sessions/{sid}/meta/inviteCode": None,
        f"sessions/{sid}/meta/inviteExpiresAt": None,
    }


def close(sid: str, code: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        f"sessions/{sid}/meta/status": "closed",
        f"sessions/{sid}/meta/inviteCode": None,
        f"sessions/{sid}/meta/inviteExpiresAt": None,
    }
    if code is not None:
        body[f"invites/{code}/revokedAt"] = TS
    return body


def presence(typing_until: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"lastSeen": TS}
    if typing_until is not None:
        body["typingUntil"] = typing_until
    return body


# -- messages ------------------------------------------------------------------


def send(uid: str, name: str, sid: str, mid: str, text: str, *, slot: str = "s0") -> dict[str, Any]:
    return {
        f"sessions/{sid}/queue/{mid}": {
            "uid": uid,
            "name": name,
            "text": text,
            "createdAt": TS,
            "state": "queued",
            "slot": slot,
        },
        f"sessions/{sid}/transcript/{mid}": {
            "role": "user",
            "uid": uid,
            "name": name,
            "text": text,
            "at": TS,
        },
        f"sessions/{sid}/slots/{uid}/{slot}": mid,
        f"work/{mid}": {"sid": sid, "uid": uid, "at": TS},
        f"sessions/{sid}/meta/lastMessage": mid,
        f"sessions/{sid}/meta/lastActivity": TS,
    }


def cancel_queued(sid: str, mid: str, uid: str, slot: str = "s0") -> dict[str, Any]:
    """Cancel ``uid``'s queued message ``mid`` (which took ``slot``)."""
    return {
        f"sessions/{sid}/queue/{mid}": None,
        f"sessions/{sid}/slots/{uid}/{slot}": None,
        f"work/{mid}": None,
        f"sessions/{sid}/transcript/{mid}/state": "cancelled",
    }


def cancel_running(uid: str) -> dict[str, Any]:
    """The value of turns/<mid>/cancelRequested."""
    return {"by": uid, "at": TS}


def cancel_stalled(sid: str, mid: str, by: str, author: str, slot: str = "s0") -> dict[str, Any]:
    """``by`` ends the running turn of ``author``'s message ``mid`` whose runner's lease ran out."""
    return {
        f"sessions/{sid}/turns/{mid}/state": "cancelled",
        f"sessions/{sid}/turns/{mid}/endedAt": TS,
        f"sessions/{sid}/turns/{mid}/cancelRequested": {"by": by, "at": TS},
        f"sessions/{sid}/queue/{mid}": None,
        f"sessions/{sid}/slots/{author}/{slot}": None,
        f"sessions/{sid}/transcript/{mid}/state": "cancelled",
        f"sessions/{sid}/lock": None,
        f"work/{mid}": None,
    }


# -- runner --------------------------------------------------------------------


def lock(mid: str, runner: str, *, fence: int = 1, lease_ms: int = 30_000) -> dict[str, Any]:
    return {"mid": mid, "runner": runner, "fence": fence, "leaseUntil": now_ms() + lease_ms}


def start_turn(sid: str, mid: str, runner: str, *, fence: int = 1) -> dict[str, Any]:
    return {
        f"sessions/{sid}/queue/{mid}/state": "running",
        f"sessions/{sid}/turns/{mid}": {
            "state": "running",
            "runner": runner,
            "fence": fence,
            "startedAt": TS,
            "attempt": 1,
        },
    }


def finish_turn(
    sid: str,
    mid: str,
    runner: str,
    text: str,
    *,
    author: str = "bob",
    slot: str = "s0",
    agent: str = "demo-agent",
) -> dict[str, Any]:
    """Finish the turn of ``author``'s message ``mid`` (which took ``slot``)."""
    return {
        f"sessions/{sid}/turns/{mid}/state": "done",
        f"sessions/{sid}/turns/{mid}/endedAt": TS,
        f"sessions/{sid}/turns/{mid}/chunks": None,
        f"sessions/{sid}/transcript/{mid}~a": {
            "role": "assistant",
            "uid": runner,
            "name": agent,
            "text": text,
            "at": TS,
            "replyTo": mid,
        },
        f"sessions/{sid}/queue/{mid}": None,
        f"sessions/{sid}/slots/{author}/{slot}": None,
        f"work/{mid}": None,
        f"sessions/{sid}/lock": None,
        f"sessions/{sid}/meta/lastActivity": TS,
    }


def runner_record(agent: str = "demo-agent") -> dict[str, Any]:
    return {"heartbeat": TS, "agent": agent, "capacity": 2, "startedAt": TS}


# -- editing an honest body into an attack -------------------------------------

DROP = object()


def edit(body: dict[str, Any], key: str, **fields: Any) -> dict[str, Any]:
    """A copy of a multi-path body with fields of the record at ``key`` changed (DROP removes)."""
    record = dict(body[key])
    for name, value in fields.items():
        if value is DROP:
            record.pop(name, None)
        else:
            record[name] = value
    return {**body, key: record}


def replace(body: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of a multi-path body with the value at ``key`` replaced, or added."""
    return {**body, key: value}


def without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A copy of a multi-path body that leaves out the paths ``keys``."""
    return {k: v for k, v in body.items() if k not in keys}


# -- approvals, policy, agent, attachments --------------------------------------------


def approval_request(
    author: str,
    *,
    tool: str = "Bash",
    summary: str = "rm -rf build",
    wait_ms: int = 60_000,
) -> dict[str, Any]:
    """What the runner writes at approvals/<mid>/<aid> when the agent asks for a tool."""
    return {
        "tool": tool,
        "summary": summary,
        "detail": "",
        "author": author,
        "requestedAt": TS,
        "expiresAt": now_ms() + wait_ms,
    }


def approval_answer(uid: str, decision: str = "allow", reason: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"by": uid, "decision": decision, "at": TS}
    if reason:
        body["reason"] = reason
    return body


def approval_outcome(allow: bool, by: str, reason: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"allow": allow, "by": by, "at": TS}
    if reason:
        body["reason"] = reason
    return body


def policy(approvers: str = "owner", allow: str | None = None, timeout_s: int = 300) -> dict:
    body: dict[str, Any] = {"approvers": approvers, "timeoutS": timeout_s}
    if allow is not None:
        body["allow"] = allow
    return body


def agent_record(runner: str, name: str = "claude", **extra: Any) -> dict[str, Any]:
    return {"name": name, "runner": runner, "at": TS, **extra}


def attachment(
    name: str = "shot.png", kind: str = "image/png", data: bytes = b"\x89PNG\r\n\x1a\nxx"
) -> tuple[dict, dict]:
    """(metadata, data record) of one attachment."""
    import base64

    meta = {"name": name, "type": kind, "size": len(data)}
    return meta, {**meta, "data": base64.b64encode(data).decode("ascii")}


def send_with_attachments(
    uid: str,
    name: str,
    sid: str,
    mid: str,
    text: str,
    files: list[tuple[dict, dict]],
    *,
    slot: str = "s0",
) -> dict[str, Any]:
    body = send(uid, name, sid, mid, text, slot=slot)
    message = dict(body[f"sessions/{sid}/transcript/{mid}"])
    message["attachments"] = {f"a{i}": meta for i, (meta, _) in enumerate(files)}
    body[f"sessions/{sid}/transcript/{mid}"] = message
    for i, (_, record) in enumerate(files):
        body[f"attachments/{sid}/{mid}/a{i}"] = record
    return body
