"""Cancel: a queued message (by its author or the owner, while queued) and a running turn."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.rules import model
from tests.rules.model import TS, replace, without
from tests.rules.world import Team, denied, ok

# -- cancel queued ---------------------------------------------------------------


def cancel_body(t: Team) -> dict[str, Any]:
    return model.cancel_queued(t.s.sid, t.queued, "bob", "s1")


@pytest.mark.parametrize("who", ["bob", "alice"])  # the author, the owner
def test_cancel_queued_allowed(team: Team, who: str) -> None:
    ok(getattr(team, who).update(cancel_body(team)))
    assert team.world.value(team.s.path(f"queue/{team.queued}")) is None
    assert team.world.value(f"work/{team.queued}") is None
    assert team.world.value(team.s.path(f"transcript/{team.queued}/state")) == "cancelled"


Attack = Callable[[Team], tuple[Any, dict[str, Any]]]


def _q(t: Team) -> str:
    return t.s.path(f"queue/{t.queued}")


def _m(t: Team) -> str:
    return t.s.path(f"transcript/{t.queued}/state")


ATTACKS: list[tuple[str, Attack]] = [
    ("other-editor", lambda t: (t.dave, cancel_body(t))),
    ("viewer", lambda t: (t.carol, cancel_body(t))),
    ("outsider", lambda t: (t.eve, cancel_body(t))),
    ("nobody", lambda t: (t.world.nobody, cancel_body(t))),
    ("runner-marks-cancelled", lambda t: (t.runner, cancel_body(t))),
    ("queue-kept", lambda t: (t.bob, without(cancel_body(t), _q(t)))),
    ("work-kept", lambda t: (t.bob, without(cancel_body(t), f"work/{t.queued}"))),
    ("message-not-marked", lambda t: (t.bob, without(cancel_body(t), _m(t)))),
    ("marked-other-state", lambda t: (t.bob, replace(cancel_body(t), _m(t), "deleted"))),
    (
        "message-deleted",
        lambda t: (
            t.bob,
            replace(without(cancel_body(t), _m(t)), t.s.path(f"transcript/{t.queued}"), None),
        ),
    ),
    (
        "queue-state-set-instead-of-delete",
        lambda t: (t.bob, replace(without(cancel_body(t), _q(t)), _q(t) + "/state", "cancelled")),
    ),
]


@pytest.mark.parametrize("attack", [a for _, a in ATTACKS], ids=[n for n, _ in ATTACKS])
def test_cancel_queued_attack_refused_then_author_cancel_allowed(
    team: Team, attack: Attack
) -> None:
    who, body = attack(team)
    denied(who.update(body))
    ok(team.bob.update(cancel_body(team)))


def test_cannot_cancel_a_running_message_as_queued(team: Team) -> None:
    """Once the runner has started it, the queued-cancel is refused; the running cancel applies."""
    body = model.cancel_queued(team.s.sid, team.running, "bob", "s0")
    denied(team.bob.update(body))
    denied(team.alice.update(body))
    assert team.world.value(team.s.path(f"queue/{team.running}/state")) == "running"


def test_author_who_left_cannot_cancel(team: Team) -> None:
    dave_mid = team.world.send(team.s, team.dave, "dave asks")
    ok(team.dave.update(model.leave("dave", team.s.sid)))
    denied(team.dave.update(model.cancel_queued(team.s.sid, dave_mid, "dave")))
    ok(team.alice.update(model.cancel_queued(team.s.sid, dave_mid, "dave")))


def test_cancelled_mark_cannot_be_undone_or_set_again(team: Team) -> None:
    ok(team.bob.update(cancel_body(team)))
    denied(team.bob.delete(_m(team)))
    denied(team.alice.put(_m(team), "cancelled"))


# -- cancel running ------------------------------------------------------------


def cr_path(t: Team, mid: str | None = None) -> str:
    return t.s.path(f"turns/{mid or t.running}/cancelRequested")


@pytest.mark.parametrize("who", ["bob", "alice"])  # the author, the owner
def test_cancel_running_allowed(team: Team, who: str) -> None:
    actor = getattr(team, who)
    ok(actor.put(cr_path(team), model.cancel_running(actor.uid)))
    assert team.world.value(cr_path(team))["by"] == who


RUNNING_ATTACKS = [
    # (who, body)
    ("dave", {"by": "dave", "at": TS}),  # another editor
    ("carol", {"by": "carol", "at": TS}),  # a viewer
    ("eve", {"by": "eve", "at": TS}),  # an outsider
    ("bob", {"by": "alice", "at": TS}),  # in someone else's name
    ("bob", {"by": "bob", "at": 1}),  # client clock
    ("bob", {"by": "bob"}),  # missing time
    ("bob", {"by": "bob", "at": TS, "reason": "x"}),  # extra field
    ("bob", "please"),  # not an object
]


@pytest.mark.parametrize(("who", "body"), RUNNING_ATTACKS)
def test_cancel_running_refused_then_author_allowed(team: Team, who: str, body: Any) -> None:
    denied(getattr(team, who).put(cr_path(team), body))
    ok(team.bob.put(cr_path(team), model.cancel_running("bob")))


def test_cancel_running_only_while_running(team: Team) -> None:
    # no turn yet for the queued message
    denied(team.bob.put(cr_path(team, team.queued), model.cancel_running("bob")))
    # a finished turn
    ok(team.runner.update(model.finish_turn(team.s.sid, team.running, team.runner.uid, "done")))
    denied(team.bob.put(cr_path(team), model.cancel_running("bob")))


def test_cancel_running_once(team: Team) -> None:
    ok(team.bob.put(cr_path(team), model.cancel_running("bob")))
    denied(team.alice.put(cr_path(team), model.cancel_running("alice")))
    denied(team.bob.delete(cr_path(team)))


def test_cancel_request_does_not_open_the_turn_to_users(team: Team) -> None:
    denied(team.bob.put(team.s.path(f"turns/{team.running}/state"), "cancelled"))
    denied(team.alice.put(team.s.path(f"turns/{team.running}/state"), "cancelled"))


# -- cancel a stalled turn (no runner holds the lease) ----------------------------------


def lapse_lease(t: Team) -> None:
    """The runner's lease runs out (it died): the lock still names it and the message."""
    ok(t.runner.put(t.s.path("lock"), model.lock(t.running, t.runner.uid, lease_ms=-1000)))


def stalled_body(t: Team, by: str = "bob") -> dict[str, Any]:
    return model.cancel_stalled(t.s.sid, t.running, by, "bob", "s0")


@pytest.mark.parametrize("who", ["bob", "alice"])  # the author, the owner
def test_a_stalled_turn_is_cancelled_at_once(team: Team, who: str) -> None:
    lapse_lease(team)
    ok(getattr(team, who).update(stalled_body(team, who)))
    assert team.world.value(team.s.path(f"turns/{team.running}/state")) == "cancelled"
    assert team.world.value(team.s.path(f"queue/{team.running}")) is None
    assert team.world.value(team.s.path("lock")) is None
    assert team.world.value(f"work/{team.running}") is None
    assert team.world.value(team.s.path(f"transcript/{team.running}/state")) == "cancelled"
    # the runner that only lost touch can't write into the turn any more
    denied(team.runner.patch(team.s.path(f"turns/{team.running}/chunks"), {"c000009": "late"}))
    denied(team.runner.update(model.finish_turn(team.s.sid, team.running, team.runner.uid, "x")))


def _t(t: Team, rest: str) -> str:
    return t.s.path(f"turns/{t.running}/{rest}")


STALLED_ATTACKS: list[tuple[str, Attack]] = [
    ("other-editor", lambda t: (t.dave, stalled_body(t, "dave"))),
    ("viewer", lambda t: (t.carol, stalled_body(t, "carol"))),
    ("outsider", lambda t: (t.eve, stalled_body(t, "eve"))),
    ("runner-as-member", lambda t: (t.runner, stalled_body(t, t.runner.uid))),
    ("done-not-cancelled", lambda t: (t.bob, replace(stalled_body(t), _t(t, "state"), "done"))),
    (
        "queue-kept",
        lambda t: (t.bob, without(stalled_body(t), t.s.path(f"queue/{t.running}"))),
    ),
    (
        "slot-kept",
        lambda t: (t.bob, without(stalled_body(t), t.s.path("slots/bob/s0"))),
    ),
    ("work-kept", lambda t: (t.bob, without(stalled_body(t), f"work/{t.running}"))),
    (
        "message-not-marked",
        lambda t: (t.bob, without(stalled_body(t), t.s.path(f"transcript/{t.running}/state"))),
    ),
    ("ended-client-clock", lambda t: (t.bob, replace(stalled_body(t), _t(t, "endedAt"), 1))),
    (
        "chunks-rewritten",
        lambda t: (t.bob, replace(stalled_body(t), _t(t, "chunks/c000000"), "my words")),
    ),
    ("error-written", lambda t: (t.bob, replace(stalled_body(t), _t(t, "error"), "lies"))),
    (
        "reply-forged",
        lambda t: (
            t.bob,
            replace(
                stalled_body(t),
                t.s.path(f"transcript/{t.running}~a"),
                {
                    "role": "assistant",
                    "uid": "bob",
                    "name": "agent",
                    "at": TS,
                    "replyTo": t.running,
                },
            ),
        ),
    ),
]


@pytest.mark.parametrize(
    "attack", [a for _, a in STALLED_ATTACKS], ids=[n for n, _ in STALLED_ATTACKS]
)
def test_stalled_cancel_attack_refused_then_author_allowed(team: Team, attack: Attack) -> None:
    lapse_lease(team)
    who, body = attack(team)
    denied(who.update(body))
    ok(team.bob.update(stalled_body(team)))


def test_a_live_turn_cannot_be_ended_by_members(team: Team) -> None:
    """While a runner holds the lease, cancel is a request the runner honours."""
    denied(team.bob.update(stalled_body(team)))
    denied(team.alice.update(stalled_body(team, "alice")))
    assert team.world.value(team.s.path(f"turns/{team.running}/state")) == "running"
    ok(team.bob.put(cr_path(team), model.cancel_running("bob")))
