"""Who may read what: members and runners read a session, nobody lists anything."""

from __future__ import annotations

import pytest

from tests.rules import model
from tests.rules.world import Team, denied, ok

# (reader, path; "{s}" is the session, "{code}" its invite, "{queued}" a message id)
ALLOWED = [
    ("alice", "sessions/{s}"),
    ("bob", "sessions/{s}"),
    ("carol", "sessions/{s}"),  # viewers read too
    ("runner", "sessions/{s}"),
    ("bob", "sessions/{s}/meta"),
    ("carol", "sessions/{s}/messages"),
    ("runner", "sessions/{s}/lock"),
    ("eve", "invites/{code}"),  # any signed-in user, by exact code
    ("runner", "work"),
    ("runner", "work/{queued}"),
    ("eve", "runners"),
    ("bob", "runners"),
    # A client that can't join reads its own kicked/<uid> to tell whether it was kicked.
    ("eve", "sessions/{s}/kicked/eve"),
]

DENIED = [
    ("eve", "sessions/{s}"),
    ("eve", "sessions/{s}/meta"),
    ("eve", "sessions/{s}/messages"),
    ("eve", "sessions/{s}/members/eve"),
    ("eve", "sessions/{s}/members"),
    ("nobody", "sessions/{s}"),
    ("nobody", "sessions/{s}/meta/inviteCode"),
    ("alice", "sessions"),
    ("runner", "sessions"),
    ("alice", "invites"),
    ("eve", "invites"),
    ("runner", "invites"),
    ("nobody", "invites/{code}"),
    ("alice", ""),
    ("runner", ""),
    ("alice", "work"),
    ("bob", "work/{queued}"),
    ("eve", "work"),
    ("nobody", "runners"),
    ("eve", "sessions/{s}/kicked/dave"),  # kicked/<uid> is readable by that uid only
    ("nobody", "sessions/{s}/kicked/eve"),
]


def who(team: Team, name: str):
    return team.world.nobody if name == "nobody" else getattr(team, name)


def fill(team: Team, template: str) -> str:
    return template.format(s=team.s.sid, code=team.s.code, queued=team.queued)


@pytest.mark.parametrize(("reader", "path"), ALLOWED, ids=[f"{r}:{p}" for r, p in ALLOWED])
def test_allowed_read(team: Team, reader: str, path: str) -> None:
    got = ok(who(team, reader).get(fill(team, path))).json()
    assert got == team.world.value(fill(team, path))


@pytest.mark.parametrize(("reader", "path"), DENIED, ids=[f"{r}:{p}" for r, p in DENIED])
def test_denied_read(team: Team, reader: str, path: str) -> None:
    denied(who(team, reader).get(fill(team, path)))


def test_members_of_one_session_read_nothing_of_another(team: Team) -> None:
    other = team.world.share(team.eve)
    denied(team.bob.get(other.path()))
    denied(team.alice.get(other.path("meta")))
    ok(team.eve.get(other.path()))


def test_session_read_ends_when_membership_ends(team: Team) -> None:
    ok(team.dave.get(team.s.path()))
    ok(team.dave.update(model.leave("dave", team.s.sid)))
    denied(team.dave.get(team.s.path()))


@pytest.mark.parametrize(
    ("reader", "path", "params"),
    [
        ("alice", "sessions", {"shallow": "true"}),
        ("runner", "sessions", {"shallow": "true"}),
        ("eve", "invites", {"shallow": "true"}),
        ("eve", "invites", {"orderBy": '"$key"', "limitToFirst": "1"}),
        ("eve", "sessions", {"orderBy": '"$key"', "limitToFirst": "1"}),
    ],
)
def test_no_listing_by_query_or_shallow(
    team: Team, reader: str, path: str, params: dict[str, str]
) -> None:
    denied(who(team, reader).get(path, **params))


# The product's queries: each needs its .indexOn (without it the server answers 400).
def test_history_query_by_at(team: Team) -> None:
    got = ok(team.carol.get(team.s.path("transcript"), orderBy='"at"', limitToLast="10")).json()
    assert set(got) == {team.running, team.queued}


def test_queue_query_by_created_at(team: Team) -> None:
    got = ok(team.bob.get(team.s.path("queue"), orderBy='"createdAt"', limitToFirst="1")).json()
    assert list(got) == [team.running]


def test_work_query_by_at(team: Team) -> None:
    got = ok(team.runner.get("work", orderBy='"at"', limitToFirst="10")).json()
    assert set(got) == {team.running, team.queued}


def test_work_query_refused_to_members(team: Team) -> None:
    denied(team.alice.get("work", orderBy='"at"', limitToFirst="10"))
