"""Where things live in the database (see docs/DATA-MODEL.md)."""

from __future__ import annotations

REPLY_SUFFIX = "~a"


def invite(code: str) -> str:
    return f"invites/{code}"


def session(sid: str) -> str:
    return f"sessions/{sid}"


def meta(sid: str) -> str:
    return f"sessions/{sid}/meta"


def member(sid: str, uid: str) -> str:
    return f"sessions/{sid}/members/{uid}"


def name_claim(sid: str, key: str) -> str:
    return f"sessions/{sid}/names/{key}"


def role(sid: str, uid: str) -> str:
    """The uid's sticky role in the session (kept after leaving)."""
    return f"sessions/{sid}/roles/{uid}"


def slots(sid: str, uid: str) -> str:
    return f"sessions/{sid}/slots/{uid}"


def slot(sid: str, uid: str, slot_key: str) -> str:
    return f"sessions/{sid}/slots/{uid}/{slot_key}"


def allowed(kind: str, key: str) -> str:
    """The allowlist entry for an owner: kind is uid, email or domain."""
    return f"allow/{kind}/{key}"


def kicked(sid: str, uid: str) -> str:
    return f"sessions/{sid}/kicked/{uid}"


def presence(sid: str, uid: str) -> str:
    return f"sessions/{sid}/presence/{uid}"


def queue(sid: str) -> str:
    return f"sessions/{sid}/queue"


def queue_item(sid: str, mid: str) -> str:
    return f"sessions/{sid}/queue/{mid}"


def messages(sid: str) -> str:
    return f"sessions/{sid}/transcript"


def message(sid: str, mid: str) -> str:
    return f"sessions/{sid}/transcript/{mid}"


def reply_key(mid: str) -> str:
    """The key of the assistant's reply to ``mid``: sorts right after it."""
    return mid + REPLY_SUFFIX


def turn(sid: str, mid: str) -> str:
    return f"sessions/{sid}/turns/{mid}"


def lock(sid: str) -> str:
    return f"sessions/{sid}/lock"


def work(mid: str) -> str:
    return f"work/{mid}"


def my_sessions(uid: str) -> str:
    """A user's own index of the sessions they are in."""
    return f"users/{uid}/sessions"


def my_session(uid: str, sid: str) -> str:
    return f"users/{uid}/sessions/{sid}"


def runner(rid: str) -> str:
    return f"runners/{rid}"


def approvals(sid: str, mid: str) -> str:
    """The agent's requests during the turn of ``mid``."""
    return f"sessions/{sid}/turns/{mid}/approvals"


def approval(sid: str, mid: str, aid: str) -> str:
    return f"sessions/{sid}/turns/{mid}/approvals/{aid}"


def policy(sid: str) -> str:
    return f"sessions/{sid}/meta/policy"


def agent(sid: str) -> str:
    """Which agent answers the session (written by its runner)."""
    return f"sessions/{sid}/agent"


def attachment_data(sid: str, mid: str) -> str:
    """The files sent with a message (outside the session tree)."""
    return f"attachments/{sid}/{mid}"
