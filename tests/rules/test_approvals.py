"""Shared approvals, the owner's policy and the agent record, attacked over REST.

bob (an editor) asked the running message; alice owns the session; dave is
another editor, carol a viewer, eve an outsider; the runner holds the lock.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.rules import model
from tests.rules.world import Actor, Team, denied, ok

AID = "toolu_01"


def req_path(t: Team, mid: str | None = None, aid: str = AID) -> str:
    return t.s.path(f"turns/{mid or t.running}/approvals/{aid}")


def ask(t: Team, **kw: Any) -> str:
    path = req_path(t)
    ok(t.runner.put(path, model.approval_request("bob", **kw)))
    return path


def set_policy(t: Team, approvers: str) -> None:
    ok(t.alice.put(t.s.path("meta/policy"), model.policy(approvers)))


# -- the request -------------------------------------------------------------------


def test_runner_holding_the_lock_asks(team: Team) -> None:
    path = ask(team)
    stored = team.world.value(path)
    assert stored["tool"] == "Bash" and stored["author"] == "bob"
    assert stored["expiresAt"] > stored["requestedAt"]


REQUEST_ATTACKS: list[tuple[str, Any]] = [
    ("member-asks", lambda t: (t.alice, req_path(t), model.approval_request("bob"))),
    ("author-asks", lambda t: (t.bob, req_path(t), model.approval_request("bob"))),
    ("other-runner", lambda t: (t.world.runner("runner:r2"), req_path(t), model.approval_request("bob"))),
    ("not-the-locked-message", lambda t: (t.runner, req_path(t, t.queued), model.approval_request("bob"))),
    ("forged-author", lambda t: (t.runner, req_path(t), model.approval_request("alice"))),
    ("waits-too-long", lambda t: (t.runner, req_path(t), model.approval_request("bob", wait_ms=3_700_000))),
    ("already-expired", lambda t: (t.runner, req_path(t), model.approval_request("bob", wait_ms=-1000))),
    ("no-tool", lambda t: (t.runner, req_path(t), {**model.approval_request("bob"), "tool": ""})),
    ("long-summary", lambda t: (t.runner, req_path(t), model.approval_request("bob", summary="x" * 501))),
    ("extra-field", lambda t: (t.runner, req_path(t), {**model.approval_request("bob"), "x": 1})),
    ("past-request-time", lambda t: (t.runner, req_path(t), {**model.approval_request("bob"), "requestedAt": 1})),
]  # fmt: skip


@pytest.mark.parametrize(
    "attack", [a for _, a in REQUEST_ATTACKS], ids=[n for n, _ in REQUEST_ATTACKS]
)
def test_request_attacks_refused(team: Team, attack: Any) -> None:
    who, path, body = attack(team)
    denied(who.put(path, body))


def test_expiry_cannot_be_moved(team: Team) -> None:
    path = ask(team)
    denied(team.runner.put(f"{path}/expiresAt", model.now_ms() + 600_000))


# -- answers -----------------------------------------------------------------------


def answer(t: Team, who: Actor, decision: str = "allow", **kw: Any) -> Any:
    return who.put(f"{req_path(t)}/answer", model.approval_answer(who.uid or "", decision, **kw))


def test_owner_answers_once(team: Team) -> None:
    ask(team)
    ok(answer(team, team.alice, "deny", reason="not on main"))
    denied(answer(team, team.alice, "allow"))  # once: the first answer stands
    assert team.world.value(f"{req_path(team)}/answer/decision") == "deny"


@pytest.mark.parametrize(
    ("approvers", "who", "allowed"),
    [
        ("owner", "bob", False),  # the author, an editor
        ("owner", "dave", False),
        ("editors", "dave", True),
        ("editors", "bob", True),
        ("editors", "carol", False),  # a viewer
        ("author", "bob", True),
        ("author", "dave", False),  # an editor, but not the author
        ("author", "alice", True),  # the owner always may
        ("editors", "alice", True),
    ],
)
def test_who_may_answer_follows_the_policy(
    team: Team, approvers: str, who: str, allowed: bool
) -> None:
    set_policy(team, approvers)
    ask(team)
    resp = answer(team, getattr(team, who))
    ok(resp) if allowed else denied(resp)


def test_outsiders_runners_and_forgers_cannot_answer(team: Team) -> None:
    set_policy(team, "editors")
    ask(team)
    denied(answer(team, team.eve))
    denied(team.world.nobody.put(f"{req_path(team)}/answer", model.approval_answer("alice")))
    denied(
        team.runner.put(f"{req_path(team)}/answer", model.approval_answer(team.runner.uid or ""))
    )
    denied(
        team.dave.put(f"{req_path(team)}/answer", model.approval_answer("alice"))
    )  # as someone else
    denied(
        team.alice.put(
            f"{req_path(team)}/answer", {**model.approval_answer("alice"), "decision": "yes"}
        )
    )
    denied(
        team.alice.put(f"{req_path(team)}/answer", model.approval_answer("alice", reason="x" * 501))
    )
    denied(team.alice.put(f"{req_path(team)}/answer", {**model.approval_answer("alice"), "at": 1}))
    ok(answer(team, team.dave))


def test_a_kicked_editor_cannot_answer(team: Team) -> None:
    set_policy(team, "editors")
    ask(team)
    ok(team.alice.update(model.kick("alice", team.s.sid, "dave", team.s.code, None)))
    denied(answer(team, team.dave))


def test_no_answer_after_expiry(team: Team) -> None:
    ask(team, wait_ms=400)
    time.sleep(0.6)
    denied(answer(team, team.alice))


def test_no_answer_for_a_request_nobody_made(team: Team) -> None:
    denied(answer(team, team.alice))


def test_no_answer_once_the_outcome_is_written(team: Team) -> None:
    ask(team)
    ok(team.runner.put(f"{req_path(team)}/outcome", model.approval_outcome(False, "cancel")))
    denied(answer(team, team.alice))


def test_no_answer_once_the_turn_ended(team: Team) -> None:
    ask(team)
    ok(
        team.runner.update(
            model.finish_turn(team.s.sid, team.running, team.runner.uid or "", "bob")
        )
    )
    denied(answer(team, team.alice))


# -- outcomes ----------------------------------------------------------------------


def outcome(t: Team, allow: bool, by: str, who: Actor | None = None) -> Any:
    return (who or t.runner).put(f"{req_path(t)}/outcome", model.approval_outcome(allow, by))


def test_outcome_follows_the_answer(team: Team) -> None:
    ask(team)
    ok(answer(team, team.alice, "deny"))
    denied(outcome(team, True, "alice"))  # the opposite of what was answered
    denied(outcome(team, False, "bob"))  # someone else's name on it
    denied(outcome(team, False, "timeout"))  # answered: not a timeout
    ok(outcome(team, False, "alice"))
    denied(outcome(team, False, "alice"))  # once


def test_unanswered_outcomes(team: Team) -> None:
    ask(team, wait_ms=500)
    denied(outcome(team, True, "cancel"))  # nobody allowed it
    denied(outcome(team, False, "timeout"))  # not yet expired
    denied(outcome(team, False, "alice"))  # alice never answered
    denied(outcome(team, False, "cancel", who=team.alice))  # only the runner writes it
    time.sleep(0.7)
    ok(outcome(team, False, "timeout"))


# -- the policy --------------------------------------------------------------------


POLICY_ATTACKS: list[tuple[str, Any]] = [
    ("editor-sets", lambda t: (t.bob, model.policy("editors"))),
    ("viewer-sets", lambda t: (t.carol, model.policy("editors"))),
    ("outsider-sets", lambda t: (t.eve, model.policy("editors"))),
    ("runner-sets", lambda t: (t.runner, model.policy("editors"))),
    ("unknown-approvers", lambda t: (t.alice, model.policy("everyone"))),
    ("no-approvers", lambda t: (t.alice, {"timeoutS": 60})),
    ("tool-list-injection", lambda t: (t.alice, model.policy(allow="Read,Bash;rm"))),
    ("tool-list-newline", lambda t: (t.alice, model.policy(allow="Read\nBash"))),
    ("tool-list-empty-item", lambda t: (t.alice, model.policy(allow="Read,,Bash"))),
    ("timeout-too-short", lambda t: (t.alice, model.policy(timeout_s=1))),
    ("timeout-too-long", lambda t: (t.alice, model.policy(timeout_s=7200))),
    ("timeout-fraction", lambda t: (t.alice, {**model.policy(), "timeoutS": 30.5})),
    ("extra-field", lambda t: (t.alice, {**model.policy(), "yolo": True})),
]  # fmt: skip


@pytest.mark.parametrize(
    "attack", [a for _, a in POLICY_ATTACKS], ids=[n for n, _ in POLICY_ATTACKS]
)
def test_policy_attacks_refused(team: Team, attack: Any) -> None:
    who, body = attack(team)
    denied(who.put(team.s.path("meta/policy"), body))


def test_owner_sets_and_clears_the_policy(team: Team) -> None:
    ok(
        team.alice.put(
            team.s.path("meta/policy"), model.policy("author", "Read,Bash,mcp__gh__pr", 60)
        )
    )
    ok(
        team.alice.put(team.s.path("meta/policy"), model.policy("owner", ""))
    )  # nothing pre-approved
    ok(team.alice.delete(team.s.path("meta/policy")))  # back to the defaults


# -- the agent record --------------------------------------------------------------


def test_agent_record(team: Team) -> None:
    path = team.s.path("agent")
    ok(
        team.runner.put(
            path,
            model.agent_record(team.runner.uid or "", model="opus", sessionId="abc", folder="repo"),
        )
    )
    denied(team.alice.put(path, model.agent_record("alice")))
    denied(team.world.runner("runner:r2").put(path, model.agent_record("runner:r2")))
    denied(team.runner.put(path, model.agent_record("runner:r2")))  # in another runner's name
    denied(team.runner.put(path, model.agent_record(team.runner.uid or "", x=1)))
    denied(team.runner.put(path, model.agent_record(team.runner.uid or "", name="")))
