"""What a member downloads of a session: the live part whole, the history in windows.

What it owns: which part of ``sessions/<sid>`` is small and followed whole
(everything whose key sorts up to :data:`LIVE_END`: agent, kicked, lock,
members, meta, names, presence, queue, roles, slots) and which grows with
history (``transcript`` and ``turns``, which sort after it), and the queries
that read or follow the growing part a window at a time, so that joining,
reconnecting and every turn cost the same in a session that has run all day
as in a new one:

- the live part: ``orderBy="$key"&endAt="slots"`` on ``sessions/<sid>``;
- the transcript: the last :data:`RECENT` messages by ``at``
  (``limitToLast``) on joining; after a reconnect, ``startAt`` the newest
  ``at`` seen (or the oldest message still waiting in the queue, whose state
  may have changed), less :data:`MARGIN_MS`;
- turns (a reply's text is its turn's chunks): ``startAt`` the ``at`` of the
  oldest message shown (a turn starts after its message), and after a
  reconnect ``startAt`` the newest ``startedAt`` seen or the oldest turn still
  running, less :data:`MARGIN_MS`.

Children of the transcript and of turns are never deleted, so a window's
snapshot only adds to what a member has (see ``Listener(windowed=True)``).
These are documented REST queries (``orderBy`` with ``startAt``/``endAt``/
``limitToLast``, with the ``.indexOn`` the rules file declares), the same on
real Firebase as on the bundled emulator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .records import as_dict

#: The last key of the live part of a session (see the module docstring).
LIVE_END = "slots"
#: Keys of the growing part; they sort after LIVE_END.
HISTORY_KEYS = ("transcript", "turns")
#: How many messages a member's view starts with (what the REPL shows on joining).
RECENT = 20
#: Server clock slack when resuming a window: a write's timestamp is taken when the
#: database applies it, so a little overlap covers writes in flight (a few messages
#: again, never one missed).
MARGIN_MS = 2_000
#: Messages per page when reading older history.
PAGE = 200


def live_query() -> dict[str, str]:
    return {"orderBy": json.dumps("$key"), "endAt": json.dumps(LIVE_END)}


def _number(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def newest(children: Mapping[str, Any], field: str) -> int | None:
    stamps = [n for v in children.values() if (n := _number(as_dict(v).get(field))) is not None]
    return max(stamps) if stamps else None


def oldest(children: Mapping[str, Any], field: str) -> int | None:
    stamps = [n for v in children.values() if (n := _number(as_dict(v).get(field))) is not None]
    return min(stamps) if stamps else None


def transcript_query(mirror: Any, live: Any, recent: int = RECENT) -> dict[str, str]:
    """The transcript stream's query for its next connection (``mirror``: what it has)."""
    seen = as_dict(mirror)
    if not seen:
        return {"orderBy": json.dumps("at"), "limitToLast": str(recent)}
    start = newest(seen, "at") or 0
    waiting = oldest(as_dict(as_dict(live).get("queue")), "createdAt")
    if waiting is not None:
        start = min(start, waiting)
    return {"orderBy": json.dumps("at"), "startAt": str(max(0, start - MARGIN_MS))}


def turns_query(mirror: Any, transcript: Any) -> dict[str, str]:
    """The turns stream's query for its next connection (``mirror``: what it has;
    ``transcript``: the messages the view holds)."""
    seen = as_dict(mirror)
    if not seen:
        start = oldest(as_dict(transcript), "at") or 0
        return {"orderBy": json.dumps("startedAt"), "startAt": str(start)}
    start = newest(seen, "startedAt") or 0
    running = {k: v for k, v in seen.items() if as_dict(v).get("state") == "running"}
    first_running = oldest(running, "startedAt")
    if first_running is not None:
        start = min(start, first_running)
    return {"orderBy": json.dumps("startedAt"), "startAt": str(max(0, start - MARGIN_MS))}


def since(children: dict[str, Any], field: str, floor: int | None) -> dict[str, Any]:
    """The children whose ``field`` is at least ``floor``: a resumed window's overlap
    reaches back a little (MARGIN_MS); what lies before the view's first window was never
    part of it and must not appear as new."""
    if floor is None:
        return children
    return {
        k: v
        for k, v in children.items()
        if (n := _number(as_dict(v).get(field))) is None or n >= floor
    }
