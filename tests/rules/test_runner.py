"""The runner's writes: claims, turns, replies and clean-up, and that nobody else can make them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.rules import model
from tests.rules.model import TS, edit, replace, without
from tests.rules.world import Team, World, denied, ok


def actor(t: Team, name: str):
    return t.world.nobody if name == "nobody" else getattr(t, name)


USERS = ["alice", "bob", "carol", "eve", "nobody"]

# -- claims ----------------------------------------------------------------------


def test_claim_is_an_etag_transaction(team: Team) -> None:
    """A second runner's stale claim fails with 412, not by the rules."""
    other = team.world.runner("runner:r2")
    got = other.request("GET", team.s.path("lock"), headers={"X-Firebase-ETag": "true"})
    stale = ok(got).headers["ETag"]
    ok(team.runner.put(team.s.path("lock/leaseUntil"), model.now_ms() + 60_000))
    r = other.put(
        team.s.path("lock"), model.lock(team.queued, other.uid), headers={"if-match": stale}
    )
    assert r.status_code == 412


@pytest.mark.parametrize("who", USERS)
def test_users_cannot_claim(team: Team, who: str) -> None:
    a = actor(team, who)
    denied(a.put(team.s.path("lock"), model.lock(team.queued, a.uid or "x")))
    denied(a.put(team.s.path("lock"), model.lock(team.queued, team.runner.uid)))
    denied(a.delete(team.s.path("lock")))
    denied(a.put(team.s.path("lock/leaseUntil"), model.now_ms() + 60_000))


@pytest.mark.parametrize(
    ("label", "change"),
    [
        ("runner-of-another", {"runner": "runner:r2"}),
        ("extra-field", {"owner": "bob"}),
        ("lease-not-number", {"leaseUntil": "soon"}),
    ],
)
def test_claim_shape(team: Team, label: str, change: dict[str, Any]) -> None:
    lock = model.lock(team.queued, team.runner.uid, fence=2)
    denied(team.runner.put(team.s.path("lock"), {**lock, **change}))
    ok(team.runner.put(team.s.path("lock"), lock))


# -- turns -----------------------------------------------------------------------


def test_start_turn_by_runner(team: Team) -> None:
    ok(team.runner.put(team.s.path("lock"), model.lock(team.queued, team.runner.uid, fence=2)))
    ok(team.runner.update(model.start_turn(team.s.sid, team.queued, team.runner.uid, fence=2)))
    assert team.world.value(team.s.path(f"queue/{team.queued}/state")) == "running"


@pytest.mark.parametrize("who", USERS)
def test_users_cannot_start_turns(team: Team, who: str) -> None:
    a = actor(team, who)
    denied(a.update(model.start_turn(team.s.sid, team.queued, team.runner.uid)))
    denied(a.put(team.s.path(f"queue/{team.queued}/state"), "running"))
    denied(
        a.put(
            team.s.path(f"turns/{team.queued}"),
            model.start_turn(team.s.sid, team.queued, "x")[team.s.path(f"turns/{team.queued}")],
        )
    )


TURN_SHAPE_ATTACKS = [
    ("state-unknown", {"state": "paused"}),
    ("runner-of-another", {"runner": "runner:r2"}),
    ("started-client-clock", {"startedAt": 1}),
    ("fence-string", {"fence": "1"}),
    ("extra-field", {"cost": 3}),
    ("missing-attempt", {"attempt": None}),
]


@pytest.mark.parametrize(
    ("label", "change"), TURN_SHAPE_ATTACKS, ids=[a for a, _ in TURN_SHAPE_ATTACKS]
)
def test_turn_shape(team: Team, label: str, change: dict[str, Any]) -> None:
    ok(team.runner.put(team.s.path("lock"), model.lock(team.queued, team.runner.uid, fence=2)))
    body = model.start_turn(team.s.sid, team.queued, team.runner.uid, fence=2)
    key = team.s.path(f"turns/{team.queued}")
    bad = edit(body, key, **{k: (model.DROP if v is None else v) for k, v in change.items()})
    denied(team.runner.update(bad))
    ok(team.runner.update(body))


def test_queue_state_values(team: Team) -> None:
    ok(team.runner.put(team.s.path("lock"), model.lock(team.queued, team.runner.uid, fence=2)))
    denied(team.runner.put(team.s.path(f"queue/{team.queued}/state"), "done"))
    ok(team.runner.put(team.s.path(f"queue/{team.queued}/state"), "running"))
    ok(team.runner.put(team.s.path(f"queue/{team.queued}/state"), "queued"))  # a retry


def test_runner_cannot_invent_queue_items(team: Team) -> None:
    """A queue item always carries its sender's uid: the runner can't forge one."""
    mid = model.push_id()
    body = model.send("bob", "Bob", team.s.sid, mid, "forged")
    denied(team.runner.update(body))
    denied(team.runner.put(team.s.path(f"queue/{mid}/state"), "queued"))
    denied(team.runner.update(without(body, team.s.path(f"transcript/{mid}"))))


def test_runner_cannot_write_user_messages(team: Team) -> None:
    mid = model.push_id()
    msg = {"role": "user", "uid": "bob", "name": "Bob", "text": "forged", "at": TS}
    denied(team.runner.put(team.s.path(f"transcript/{mid}"), msg))
    denied(team.runner.put(team.s.path(f"transcript/{team.queued}/text"), "edited"))


# -- streaming -------------------------------------------------------------------


def test_runner_streams_chunks_and_tools(team: Team) -> None:
    turn = team.s.path(f"turns/{team.running}")
    ok(team.runner.patch(f"{turn}/chunks", {"c000000": "Hel", "c000001": "lo"}))
    ok(team.runner.patch(f"{turn}/tools", {"t1": {"name": "grep", "state": "started"}}))
    assert team.world.value(f"{turn}/chunks") == {"c000000": "Hel", "c000001": "lo"}


@pytest.mark.parametrize("who", USERS)
def test_users_cannot_stream(team: Team, who: str) -> None:
    turn = team.s.path(f"turns/{team.running}")
    a = actor(team, who)
    denied(a.patch(f"{turn}/chunks", {"c000000": "injected"}))
    denied(a.patch(f"{turn}/tools", {"t1": {"name": "rm"}}))
    denied(a.put(f"{turn}/error", "boom"))


@pytest.mark.parametrize(
    ("chunks", "label"),
    [
        ({"x": "a"}, "non-numeric-seq"),
        ({"000000": "a"}, "integer-like-seq"),
        ({"c1": "a"}, "short-seq"),
        ({"c000000": 5}, "non-text"),
    ],
)
def test_chunk_shape(team: Team, chunks: dict[str, Any], label: str) -> None:
    turn = team.s.path(f"turns/{team.running}")
    denied(team.runner.patch(f"{turn}/chunks", chunks))


# -- finish --------------------------------------------------------------------


def finish_body(t: Team, text: str = "Here is the fix.") -> dict[str, Any]:
    return model.finish_turn(t.s.sid, t.running, t.runner.uid, text)


def reply_key(t: Team, mid: str | None = None) -> str:
    return t.s.path(f"transcript/{mid or t.running}~a")


def test_finish_turn(team: Team) -> None:
    ok(team.runner.update(finish_body(team)))
    assert team.world.value(reply_key(team))["role"] == "assistant"
    assert team.world.value(team.s.path("lock")) is None
    assert team.world.value(f"work/{team.running}") is None


def test_reply_may_be_long(team: Team) -> None:
    ok(team.runner.update(finish_body(team, "x" * 40_000)))


FORGED_REPLIES = ["alice", "bob", "carol", "eve", "nobody"]


@pytest.mark.parametrize("who", FORGED_REPLIES)
def test_forged_agent_reply_refused(team: Team, who: str) -> None:
    a = actor(team, who)
    reply = finish_body(team)[reply_key(team)]
    denied(a.put(reply_key(team), reply))
    denied(a.put(reply_key(team), {**reply, "uid": a.uid or "x"}))
    denied(a.update(finish_body(team)))


REPLY_ATTACKS = [
    ("role-user", {"role": "user"}),
    ("uid-of-a-member", {"uid": "bob"}),
    ("reply-to-another", {"replyTo": "-AAAAAAAAAAAAAAAAAAA"}),
    ("no-reply-to", {"replyTo": None}),
    ("at-client-clock", {"at": 1}),
    ("extra-field", {"tokens": 12}),
    ("state-running", {"state": "running"}),
    ("state-done", {"state": "done"}),
]


@pytest.mark.parametrize(("label", "change"), REPLY_ATTACKS, ids=[a for a, _ in REPLY_ATTACKS])
def test_reply_shape(team: Team, label: str, change: dict[str, Any]) -> None:
    body = finish_body(team)
    bad = edit(
        body, reply_key(team), **{k: (model.DROP if v is None else v) for k, v in change.items()}
    )
    denied(team.runner.update(bad))
    ok(team.runner.update(body))


def test_reply_only_at_a_reply_key(team: Team) -> None:
    reply = finish_body(team)[reply_key(team)]
    denied(team.runner.put(team.s.path(f"transcript/{model.push_id()}"), reply))
    denied(team.runner.put(team.s.path(f"transcript/{team.running}~b"), reply))


@pytest.mark.parametrize("who", ["alice", "bob", "eve"])
def test_users_cannot_delete_started_items(team: Team, who: str) -> None:
    """Deleting a running queue item or its work entry is the runner's."""
    a = actor(team, who)
    denied(a.delete(team.s.path(f"queue/{team.running}")))
    denied(a.delete(f"work/{team.running}"))
    denied(a.update({team.s.path(f"queue/{team.running}"): None, f"work/{team.running}": None}))


def test_runner_may_drop_work_of_a_closed_session(team: Team) -> None:
    ok(team.alice.update(model.close(team.s.sid, team.s.code)))
    denied(team.runner.update(finish_body(team)))
    ok(team.runner.delete(f"work/{team.running}"))


# -- runner records --------------------------------------------------------------


def test_runner_heartbeat(world: World) -> None:
    r = world.runner("runner:r9")
    ok(r.put("runners/runner:r9", model.runner_record()))
    ok(r.patch("runners/runner:r9", {"heartbeat": TS, "active": 1}))
    ok(r.put("runners/runner:r9", {"heartbeat": TS, "agent": "echo", "capacity": 1}))
    ok(r.delete("runners/runner:r9"))


@pytest.mark.parametrize(
    ("label", "path_uid", "change"),
    [
        ("another-runners-record", "runner:r2", {}),
        ("extra-field", "runner:r1", {"secret": "x"}),
        ("missing-agent", "runner:r1", {"agent": None}),
        ("capacity-string", "runner:r1", {"capacity": "2"}),
    ],
)
def test_runner_record_refused(
    world: World, label: str, path_uid: str, change: dict[str, Any]
) -> None:
    r = world.runner("runner:r1")
    record = {k: v for k, v in {**model.runner_record(), **change}.items() if v is not None}
    denied(r.put(f"runners/{path_uid}", record))
    ok(r.put("runners/runner:r1", model.runner_record()))


@pytest.mark.parametrize("who", ["alice", "eve", "nobody"])
def test_users_cannot_write_runner_records(team: Team, who: str) -> None:
    a = actor(team, who)
    denied(a.put(f"runners/{team.runner.uid}", model.runner_record()))
    denied(a.put(f"runners/{a.uid or 'x'}", model.runner_record()))
    denied(a.delete(f"runners/{team.runner.uid}"))


def test_a_user_claiming_runner_uid_is_not_a_runner(world: World) -> None:
    """The uid is not the credential: only the runner claim is."""
    fake = world.user("runner:r1")
    denied(fake.put("runners/runner:r1", model.runner_record()))
    denied(fake.get("work"))


# -- leases: the lock decides which runner may write a turn ---------------------


def test_live_lease_cannot_be_taken(team: Team) -> None:
    """Even without an ETag, a second runner can't overwrite or drop a live lock."""
    r2 = team.world.runner("runner:r2")
    denied(r2.put(team.s.path("lock"), model.lock(team.queued, r2.uid, fence=2)))
    denied(r2.delete(team.s.path("lock")))
    denied(r2.put(team.s.path("lock/leaseUntil"), 0))
    assert team.world.value(team.s.path("lock/runner")) == team.runner.uid


def test_expired_lease_can_be_taken_over(team: Team) -> None:
    r2 = team.world.runner("runner:r2")
    ok(team.runner.put(team.s.path("lock/leaseUntil"), model.now_ms() - 1))
    ok(r2.put(team.s.path("lock"), model.lock(team.running, r2.uid, fence=2)))
    # r2 marks the dead runner's turn interrupted, then starts it again
    turn = team.s.path(f"turns/{team.running}")
    ok(r2.patch(turn, {"state": "interrupted", "error": "the runner stopped", "endedAt": TS}))
    body = model.start_turn(team.s.sid, team.running, r2.uid, fence=2)
    ok(r2.update(edit(body, turn, attempt=2)))


def test_runner_that_lost_its_lease_is_stopped(team: Team) -> None:
    r2 = team.world.runner("runner:r2")
    ok(team.runner.put(team.s.path("lock/leaseUntil"), model.now_ms() - 1))
    ok(r2.put(team.s.path("lock"), model.lock(team.running, r2.uid, fence=2)))
    turn = team.s.path(f"turns/{team.running}")
    denied(team.runner.patch(f"{turn}/chunks", {"c000000": "late"}))
    denied(team.runner.update(finish_body(team)))
    denied(team.runner.put(team.s.path("lock/leaseUntil"), model.now_ms() + 60_000))
    ok(r2.update(model.finish_turn(team.s.sid, team.running, r2.uid, "answer")))


def test_turn_writes_need_the_lock_for_that_message(team: Team) -> None:
    """The runner holds the lock for ``running``; ``queued`` is not its to start or answer."""
    denied(team.runner.update(model.start_turn(team.s.sid, team.queued, team.runner.uid)))
    denied(team.runner.put(team.s.path(f"queue/{team.queued}/state"), "running"))
    denied(team.runner.delete(team.s.path(f"queue/{team.queued}")))
    reply = finish_body(team)[reply_key(team)]
    denied(team.runner.put(reply_key(team, team.queued), {**reply, "replyTo": team.queued}))
    ok(team.runner.put(reply_key(team), reply))


def test_runner_without_any_lock_writes_no_turn(team: Team) -> None:
    ok(team.runner.delete(team.s.path("lock")))
    denied(team.runner.patch(team.s.path(f"turns/{team.running}/chunks"), {"c000000": "x"}))
    denied(team.runner.update(finish_body(team)))


def test_hand_back_puts_the_message_back_in_line(team: Team) -> None:
    ok(
        team.runner.update(
            {
                team.s.path(f"turns/{team.running}/state"): "interrupted",
                team.s.path(f"turns/{team.running}/error"): "the runner shut down",
                team.s.path(f"turns/{team.running}/endedAt"): TS,
                team.s.path(f"queue/{team.running}/state"): "queued",
                team.s.path("lock"): None,
            }
        )
    )
    assert team.world.value(team.s.path(f"queue/{team.running}/state")) == "queued"


@pytest.mark.parametrize("state", ["failed", "cancelled"])
def test_reply_of_an_ended_turn_carries_its_state(team: Team, state: str) -> None:
    body = model.finish_turn(team.s.sid, team.running, team.runner.uid, "partial [failed]")
    body = replace(body, team.s.path(f"turns/{team.running}/state"), state)
    body = replace(body, team.s.path(f"turns/{team.running}/error"), "agent error")
    ok(team.runner.update(edit(body, reply_key(team), state=state)))


def test_user_message_cannot_be_marked_failed(team: Team) -> None:
    body = model.cancel_queued(team.s.sid, team.queued, "bob", "s1")
    denied(team.bob.update(replace(body, team.s.path(f"transcript/{team.queued}/state"), "failed")))
