"""Presence: each member writes only their own heartbeat and typing marker."""

from __future__ import annotations

from typing import Any

import pytest

from tests.rules import model
from tests.rules.model import TS
from tests.rules.world import Team, denied, ok


@pytest.mark.parametrize("who", ["alice", "bob", "carol"])  # viewers too
def test_member_writes_own_presence(team: Team, who: str) -> None:
    a = getattr(team, who)
    ok(a.put(team.s.path(f"presence/{who}"), model.presence(model.now_ms() + 5000)))
    ok(a.put(team.s.path(f"presence/{who}"), model.presence()))  # typing stopped
    ok(a.patch(team.s.path(f"presence/{who}"), {"lastSeen": TS, "typingUntil": None}))
    ok(a.delete(team.s.path(f"presence/{who}")))


PRESENCE_ATTACKS = [
    ("bob", "alice", {"lastSeen": TS}),  # someone else's
    ("eve", "eve", {"lastSeen": TS}),  # not a member
    ("runner", "runner:r1", {"lastSeen": TS}),
    ("bob", "bob", {"lastSeen": model.now_ms() + 60_000}),  # client clock
    ("bob", "bob", {"lastSeen": 1}),
    ("bob", "bob", {"typingUntil": 5}),  # no lastSeen
    ("bob", "bob", {"lastSeen": TS, "typingUntil": "soon"}),
    ("bob", "bob", {"lastSeen": TS, "status": "away"}),  # extra field
    ("bob", "bob", "here"),
]


@pytest.mark.parametrize(("who", "uid", "body"), PRESENCE_ATTACKS)
def test_presence_refused_then_own_allowed(team: Team, who: str, uid: str, body: Any) -> None:
    denied(getattr(team, who).put(team.s.path(f"presence/{uid}"), body))
    ok(team.bob.put(team.s.path("presence/bob"), model.presence(model.now_ms() + 5000)))


def test_member_cannot_clear_anothers_presence(team: Team) -> None:
    ok(team.alice.put(team.s.path("presence/alice"), model.presence()))
    denied(team.bob.delete(team.s.path("presence/alice")))
    denied(team.bob.patch(team.s.path("presence/alice"), {"typingUntil": None}))


def test_nobody_writes_presence(team: Team) -> None:
    denied(team.world.nobody.put(team.s.path("presence/bob"), model.presence()))


def test_presence_list_cannot_be_replaced(team: Team) -> None:
    denied(team.alice.put(team.s.path("presence"), {"alice": {"lastSeen": TS}}))
