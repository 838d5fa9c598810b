"""Claims and leases: one turn at a time per session, decided by ETag transactions.

A session's ``lock`` names the message being answered, the runner answering
it, a fencing counter and a lease expiry. Taking the lock is a conditional
PUT on the ETag just read, so of two runners only one wins. The holder renews
the lease while it works; the rules accept a runner's turn writes only while
the lock names it, so a runner that lost its lease is stopped by the database
itself at its next write. Functions here are synchronous (run in threads).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ..firebase.admin import RunnerDatabase
from ..session import paths
from ..session.records import QueueItem, parse_queue


class NothingQueued(Exception):
    """The session's queue is empty (its work entries are stale)."""


@dataclass(frozen=True)
class Claim:
    sid: str
    mid: str
    fence: int
    item: QueueItem


def _now_ms() -> int:
    return int(time.time() * 1000)


def lock_is_live(lock: Any, now_ms: int) -> bool:
    return (
        isinstance(lock, dict)
        and isinstance(lock.get("leaseUntil"), int | float)
        and lock["leaseUntil"] > now_ms
    )


def next_item(db: RunnerDatabase, sid: str) -> QueueItem | None:
    ordered = parse_queue(db.get(paths.queue(sid)))
    return ordered[0] if ordered else None


def try_claim(db: RunnerDatabase, sid: str, lease_s: float) -> Claim | None:
    """Claim the session's next message, or ``None`` if it's busy or we lost the race.

    Raises ``NothingQueued`` when the session has nothing waiting at all.
    """
    lock, etag = db.get_with_etag(paths.lock(sid))
    if lock_is_live(lock, _now_ms()) and lock.get("runner") != db.uid:
        return None
    item = next_item(db, sid)
    if item is None:
        raise NothingQueued(sid)
    return claim_with(db, sid, lock, etag, item, lease_s)


def claim_with(
    db: RunnerDatabase, sid: str, lock: Any, etag: str, item: QueueItem, lease_s: float
) -> Claim | None:
    """The conditional write of a claim, given what was read (the lock and its ETag)."""
    fence = int(lock.get("fence", 0)) + 1 if isinstance(lock, dict) else 1
    lease_until = _now_ms() + int(lease_s * 1000)
    new = {"mid": item.mid, "runner": db.uid, "fence": fence, "leaseUntil": lease_until}
    ok, current, _tag = db.set_if_match(paths.lock(sid), new, etag)
    if not ok and current != new:  # (equal: our write landed, its replay conflicted)
        return None
    if db.get(paths.queue_item(sid, item.mid)) is None:
        # ABA: between our reads and this write another runner answered the
        # message and released the lock, so the free lock's ETag matched
        # again. Let go at once rather than hold the session for a lease.
        db.update(paths.session(sid), {"lock": None})
        return None
    return Claim(sid, item.mid, fence, item)


def renew(db: RunnerDatabase, claim: Claim, lease_s: float) -> int | None:
    """Extend the lease; the new expiry, or ``None`` if the lock is no longer ours."""
    lock, etag = db.get_with_etag(paths.lock(claim.sid))
    if (
        not isinstance(lock, dict)
        or lock.get("runner") != db.uid
        or lock.get("fence") != claim.fence
    ):
        return None
    until = _now_ms() + int(lease_s * 1000)
    new = {**lock, "leaseUntil": until}
    ok, current, _tag = db.set_if_match(paths.lock(claim.sid), new, etag)
    # equal: our write landed and the client's replay of it conflicted with itself
    return until if ok or current == new else None
