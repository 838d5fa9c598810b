"""Send: a queue item, its history message and its work entry, written together by the sender.

Attacks are the honest send body with one change: refused, then the honest
body is accepted in the same state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.rules import model
from tests.rules.model import DROP, TS, edit, replace, without
from tests.rules.world import Team, denied, ok


class Send:
    def __init__(self, t: Team, uid: str = "bob", text: str = "please fix the bug") -> None:
        self.mid = model.push_id()
        self.sid = t.s.sid
        self.uid = uid
        self.slot = t.world.free_slot(t.s, getattr(t, uid))
        self.body = model.send(uid, uid.capitalize(), t.s.sid, self.mid, text, slot=self.slot)
        self.q = f"sessions/{t.s.sid}/queue/{self.mid}"
        self.m = f"sessions/{t.s.sid}/transcript/{self.mid}"
        self.w = f"work/{self.mid}"
        self.sl = f"sessions/{t.s.sid}/slots/{uid}/{self.slot}"
        self.meta = f"sessions/{t.s.sid}/meta"


Attack = Callable[[Send], dict[str, Any]]

ATTACKS: list[tuple[str, Attack]] = [
    # forged identity
    ("queue-uid-of-another", lambda x: edit(x.body, x.q, uid="dave")),
    ("message-uid-of-another", lambda x: edit(x.body, x.m, uid="dave")),
    ("work-uid-of-another", lambda x: edit(x.body, x.w, uid="dave")),
    (
        "all-uids-of-another",
        lambda x: edit(edit(edit(x.body, x.q, uid="dave"), x.m, uid="dave"), x.w, uid="dave"),
    ),
    ("queue-name-of-another", lambda x: edit(x.body, x.q, name="Alice")),
    ("message-name-of-another", lambda x: edit(x.body, x.m, name="Alice")),
    # forged agent reply / role
    ("message-role-assistant", lambda x: edit(x.body, x.m, role="assistant")),
    ("message-role-unknown", lambda x: edit(x.body, x.m, role="system")),
    ("message-reply-to", lambda x: edit(x.body, x.m, replyTo=x.mid)),
    ("message-pre-cancelled", lambda x: edit(x.body, x.m, state="cancelled")),
    # timestamps: only the server's
    ("queue-created-client-clock", lambda x: edit(x.body, x.q, createdAt=model.now_ms() - 60_000)),
    ("queue-created-in-the-past", lambda x: edit(x.body, x.q, createdAt=1)),
    ("message-at-client-clock", lambda x: edit(x.body, x.m, at=model.now_ms() - 60_000)),
    ("work-at-client-clock", lambda x: edit(x.body, x.w, at=0)),
    ("activity-client-clock", lambda x: replace(x.body, f"sessions/{x.sid}/meta/lastActivity", 1)),
    # state
    ("queue-state-running", lambda x: edit(x.body, x.q, state="running")),
    ("queue-state-unknown", lambda x: edit(x.body, x.q, state="done")),
    ("queue-state-missing", lambda x: edit(x.body, x.q, state=DROP)),
    # text
    ("text-empty", lambda x: edit(edit(x.body, x.q, text=""), x.m, text="")),
    ("text-16001", lambda x: edit(edit(x.body, x.q, text="x" * 16001), x.m, text="x" * 16001)),
    ("text-number", lambda x: edit(edit(x.body, x.q, text=42), x.m, text=42)),
    ("text-object", lambda x: edit(edit(x.body, x.q, text={"a": "b"}), x.m, text={"a": "b"})),
    ("text-differs", lambda x: edit(x.body, x.m, text="something else")),
    ("name-empty", lambda x: edit(edit(x.body, x.q, name=""), x.m, name="")),
    ("name-65", lambda x: edit(edit(x.body, x.q, name="n" * 65), x.m, name="n" * 65)),
    # extra or missing fields
    ("queue-extra-field", lambda x: edit(x.body, x.q, priority=1)),
    ("queue-claim-field", lambda x: edit(x.body, x.q, claim={"runner": "runner:r1"})),
    ("message-extra-field", lambda x: edit(x.body, x.m, html="<b>hi</b>")),
    ("work-extra-field", lambda x: edit(x.body, x.w, urgent=True)),
    ("queue-missing-created", lambda x: edit(x.body, x.q, createdAt=DROP)),
    ("message-missing-at", lambda x: edit(x.body, x.m, at=DROP)),
    ("work-missing-sid", lambda x: edit(x.body, x.w, sid=DROP)),
    # the three records belong together
    ("without-message", lambda x: without(x.body, x.m)),
    ("without-work", lambda x: without(x.body, x.w)),
    ("without-queue", lambda x: without(x.body, x.q)),
    ("message-only", lambda x: {x.m: x.body[x.m]}),
    ("work-only", lambda x: {x.w: x.body[x.w]}),
    ("work-for-another-session", lambda x: edit(x.body, x.w, sid=model.push_id())),
    ("message-under-another-id", lambda x: replace(without(x.body, x.m), x.m + "x", x.body[x.m])),
    ("assistant-key", lambda x: replace(without(x.body, x.m), x.m + "~a", x.body[x.m])),
    # fair use: each waiting message holds one of the sender's free slots
    ("no-slot-field", lambda x: edit(x.body, x.q, slot=DROP)),
    ("no-slot-record", lambda x: without(x.body, x.sl)),
    (
        "slot-taken",
        lambda x: replace(edit(x.body, x.q, slot="s0"), f"sessions/{x.sid}/slots/bob/s0", x.mid),
    ),
    (
        "slot-beyond-limit",
        lambda x: replace(
            edit(without(x.body, x.sl), x.q, slot="s5"), f"sessions/{x.sid}/slots/bob/s5", x.mid
        ),
    ),
    (
        "slot-not-a-slot",
        lambda x: replace(
            edit(without(x.body, x.sl), x.q, slot="x"), f"sessions/{x.sid}/slots/bob/x", x.mid
        ),
    ),
    ("slot-number", lambda x: edit(x.body, x.q, slot=2)),
    ("slot-record-names-another-message", lambda x: replace(x.body, x.sl, model.push_id())),
    (
        "slot-of-another-member",
        lambda x: replace(without(x.body, x.sl), f"sessions/{x.sid}/slots/dave/{x.slot}", x.mid),
    ),
    # activity only moves with the message this write creates
    ("last-message-missing", lambda x: without(x.body, f"{x.meta}/lastMessage")),
    (
        "last-message-another-id",
        lambda x: replace(x.body, f"{x.meta}/lastMessage", model.push_id()),
    ),
]


@pytest.mark.parametrize("attack", [a for _, a in ATTACKS], ids=[n for n, _ in ATTACKS])
def test_send_attack_refused_then_honest_send_allowed(team: Team, attack: Attack) -> None:
    x = Send(team)
    denied(team.bob.update(attack(x)))
    ok(team.bob.update(x.body))
    assert team.world.value(x.q)["state"] == "queued"
    assert team.world.value(x.w) == {
        "sid": team.s.sid,
        "uid": "bob",
        "at": team.world.value(x.q)["createdAt"],
    }


def test_waiting_messages_per_member_are_limited(team: Team) -> None:
    """bob has two slots taken (running, queued); the session allows 5 at once."""
    for _ in range(3):
        ok(team.bob.update(Send(team).body))
    last = Send(team)  # s5: past the owner's limit of 5
    denied(team.bob.update(last.body))
    # two messages in one write can't share a slot, nor can one slot be taken twice
    a, b = model.push_id(), model.push_id()
    both = {
        **model.send("dave", "Dave", team.s.sid, a, "one"),
        **model.send("dave", "Dave", team.s.sid, b, "two"),
    }
    denied(team.dave.update(both))
    # the owner raises the limit: bob may queue more
    ok(team.alice.put(team.s.path("meta/maxQueued"), 6))
    ok(team.bob.update(last.body))
    # cancelling one frees its slot for the next
    ok(team.bob.update(model.cancel_queued(team.s.sid, team.queued, "bob", "s1")))
    again = Send(team)
    assert again.slot == "s1"
    ok(team.bob.update(again.body))


@pytest.mark.parametrize("who", ["bob", "carol", "eve", "runner"])
def test_only_the_owner_sets_the_queue_limit(team: Team, who: str) -> None:
    denied(getattr(team, who).put(team.s.path("meta/maxQueued"), 10))
    denied(team.alice.put(team.s.path("meta/maxQueued"), 11))
    denied(team.alice.put(team.s.path("meta/maxQueued"), 0))
    ok(team.alice.put(team.s.path("meta/maxQueued"), 1))


def test_slots_cannot_be_taken_or_freed_by_hand(team: Team) -> None:
    slot = team.s.path("slots/bob/s1")
    denied(team.bob.delete(slot))  # its message still waits
    denied(team.alice.delete(slot))
    denied(team.dave.put(team.s.path("slots/dave/s0"), team.queued))
    denied(team.bob.put(team.s.path("slots/bob/s4"), model.push_id()))
    denied(team.eve.delete(slot))


def test_text_limits_are_inclusive(team: Team) -> None:
    for text in ("x", "x" * 16000, "é" * 16000):
        x = Send(team, text=text)
        ok(team.bob.update(x.body))


def test_owner_sends(team: Team) -> None:
    ok(team.alice.update(Send(team, "alice").body))


@pytest.mark.parametrize("who", ["carol", "eve", "runner"])
def test_viewers_outsiders_and_runners_cannot_send(team: Team, who: str) -> None:
    """Each sends a body that is honest apart from who they are."""
    sender = getattr(team, who)
    x = model.send(sender.uid, sender.name, team.s.sid, model.push_id(), "hi")
    denied(sender.update(x))


def test_nobody_cannot_send(team: Team) -> None:
    denied(team.world.nobody.update(Send(team).body))


def test_demoted_editor_cannot_send(team: Team) -> None:
    ok(team.bob.update(Send(team).body))
    team.world.set_role(team.s, team.bob, "viewer")
    denied(team.bob.update(Send(team).body))


def test_former_member_cannot_send(team: Team) -> None:
    ok(team.dave.update(model.leave("dave", team.s.sid)))
    denied(team.dave.update(Send(team, "dave").body))


def test_message_id_must_be_a_push_id(team: Team) -> None:
    bad = model.send("bob", "Bob", team.s.sid, "my-message", "hi")
    denied(team.bob.update(bad))


def test_message_ids_cannot_be_reused(team: Team) -> None:
    """A finished or cancelled id can't be queued again (nor its history rewritten)."""
    mid = team.queued
    ok(team.bob.update(model.cancel_queued(team.s.sid, mid, "bob", "s1")))
    denied(team.bob.update(model.send("bob", "Bob", team.s.sid, mid, "second question")))
    x = Send(team)
    denied(
        team.bob.update(
            without(
                model.send("bob", "Bob", team.s.sid, mid, "second question"),
                f"sessions/{team.s.sid}/transcript/{mid}",
            )
        )
    )
    ok(team.bob.update(x.body))


def test_cannot_overwrite_anothers_queued_item(team: Team) -> None:
    body = model.send("dave", "Dave", team.s.sid, team.queued, "mine now")
    denied(team.dave.update(body))
    denied(team.dave.put(team.s.path(f"queue/{team.queued}/text"), "mine now"))
    denied(team.bob.put(team.s.path(f"queue/{team.queued}/text"), "edited"))
    denied(team.bob.put(team.s.path(f"transcript/{team.queued}/text"), "edited"))
    assert team.world.value(team.s.path(f"queue/{team.queued}/text")) == "second question"


def test_history_cannot_be_deleted_by_members(team: Team) -> None:
    denied(team.alice.delete(team.s.path(f"transcript/{team.running}")))
    denied(team.bob.delete(team.s.path(f"transcript/{team.running}")))
    denied(team.alice.delete(team.s.path("transcript")))


def test_work_entry_cannot_be_forged_for_an_existing_item(team: Team) -> None:
    """A work entry alone, or a second one for someone's queued item, is refused."""
    denied(
        team.world.nobody.put(f"work/{team.queued}", {"sid": team.s.sid, "uid": "bob", "at": TS})
    )
    denied(team.dave.put(f"work/{model.push_id()}", {"sid": team.s.sid, "uid": "dave", "at": TS}))
    denied(team.bob.put(f"work/{team.queued}", {"sid": team.s.sid, "uid": "bob", "at": TS}))
    denied(team.bob.delete(f"work/{team.running}"))
