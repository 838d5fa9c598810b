"""The soak's judge (benchmarks/soak.py) counts each kind of problem it is shown, and only those.

The soak itself takes minutes and needs every process; its figures come from
``judge()``, a pure function of what was recorded, so here it gets small
made-up records with one known problem of each kind.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import soak  # noqa: E402


def send(n: int, text: str, exit_code: int | None, message: str | None) -> soak.SendRecord:
    return soak.SendRecord(
        n, "s0/ada0", 0, "S", text, 0.0, start_s=1.0, end_s=1.5, exit=exit_code, message=message
    )


def ev(t: float, event: str, **fields: Any) -> dict[str, Any]:
    return {"event": event, "_t": t, "seen_at": 0, **fields}


FINAL = {
    "S": {
        "transcript": {
            "m1": {"role": "user", "text": "hello", "uid": "u"},
            "m1~a": {"role": "assistant", "replyTo": "m1", "uid": "runner:r"},
            "m2": {"role": "user", "text": "two", "uid": "u"},  # never answered
            "m3": {"role": "user", "text": "dup", "uid": "u"},  # the same text twice,
            "m4": {"role": "user", "text": "dup", "uid": "u"},  # both unanswered
            "m5": {"role": "user", "text": "five", "uid": "u"},
            "m5~a": {"role": "assistant", "replyTo": "m5", "state": "failed", "uid": "runner:r"},
        },
        "turns": {
            "m1": {"state": "done", "attempt": 2, "chunks": {"c000000": "hel", "c000001": "lo!"}},
            "m5": {"state": "failed", "attempt": 4, "chunks": {"c000000": "fi"}, "error": "boom"},
        },
    }
}


def judge(watchers: dict[str, list[dict[str, Any]]], **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "final": FINAL,
        "work": {},
        "sends": [],
        "watchers": watchers,
        "session_of_watcher": dict.fromkeys(watchers, "S"),
        "runner_logs": {},
        "faults_by_watcher": {},
        "extra_faults": [],
        "logs_dir": None,
        "end_s": 100.0,
    }
    args.update(kw)
    return soak.judge(**args)


def clean_watcher() -> list[dict[str, Any]]:
    """A watcher that saw everything right (m1 retried once: its first attempt differed)."""
    return [
        ev(0.0, "connection", status="connecting"),
        ev(0.1, "synced", messages=[]),
        ev(0.2, "connection", status="live"),
        ev(1.0, "message", id="m1", role="user", text="hello"),
        ev(1.1, "turn_started", message="m1", attempt=1),
        ev(1.2, "reply_delta", message="m1", attempt=1, text="hel"),
        ev(1.3, "turn_ended", message="m1", attempt=1, state="interrupted"),
        ev(1.4, "turn_started", message="m1", attempt=2),
        ev(1.5, "reply_delta", message="m1", attempt=2, text="he"),
        ev(1.6, "reply_delta", message="m1", attempt=2, text="llo!"),
        ev(1.7, "message", id="m1~a", role="assistant", reply_to="m1", text="hello!"),
        ev(2.0, "message", id="m2", role="user", text="two"),
        ev(2.1, "message", id="m3", role="user", text="dup"),
        ev(2.2, "message", id="m4", role="user", text="dup"),
        ev(2.3, "message", id="m5", role="user", text="five"),
        ev(2.4, "turn_started", message="m5", attempt=4),
        ev(2.5, "reply_delta", message="m5", attempt=4, text="fi"),
        ev(2.6, "message", id="m5~a", role="assistant", reply_to="m5", text="fi\n\n[failed: boom]"),
    ]


def test_what_is_right_counts_nothing_but_what_the_database_holds() -> None:
    r = judge({"w": clean_watcher()})
    assert (r["mismatched"], r["duplicated_shown"], r["missed"], r["false_errors"]) == (0, 0, 0, 0)
    assert r["checked"] == {"reply_deltas": 4, "message_events": 7}
    # the database's own problems: m2, m3 and m4 have no reply; "dup" is stored twice
    assert (r["lost_no_reply"], r["duplicated_stored"]) == (3, 1)
    assert r["failed"] == 1 and r["failed_reasons"] == {"boom": 1}


def test_each_kind_of_problem_is_counted() -> None:
    w = clean_watcher()
    w.insert(9, ev(1.55, "reply_delta", message="m1", attempt=2, text="?"))  # not a prefix
    w.append(ev(3.0, "message", id="m2", role="user", text="two"))  # shown twice
    w.append(ev(3.1, "message", id="m1~a", role="assistant", reply_to="m1", text="hello"))
    log = "2026 turn S/m1 by ada0: done in 1.0s, 6 chars, 2 chunks, attempt 2\n"
    r = judge(
        {"w": w, "late": clean_watcher()[:3]},  # "late" never showed a single message
        sends=[
            send(0, "hello", 0, "m1"),
            send(1, "two", 1, None),  # stored: a false error
            send(2, "gone", 0, "m9"),  # "sent" but not stored: lost
            send(3, "never", 1, None),  # not stored: a true error
            send(4, "five", None, None),  # timed out, stored: a false error too
        ],
        runner_logs={"r1": log, "r2": log},
    )
    assert r["lost"] == 1 + 3 and r["lost_sent_not_stored"] == 1
    assert (r["false_errors"], r["send_errors"], r["send_timeouts"]) == (2, 1, 1)
    # after "?" every delta of that attempt is off, and so is the second reply event
    assert r["mismatched"] == 2 + 1 and r["mismatched_pairs"] == 2
    assert r["duplicated"] == 1 + 1 + 2  # stored twice, finished twice, m2 and m1~a shown twice
    assert r["missed"] == 7  # the late watcher, every stored message
    assert {e["why"] for e in r["evidence"]["mismatched"]} == {
        "what was shown is not a prefix of the final reply",
        "a message event differs from the stored text",
    }


def test_a_delta_of_another_attempt_is_a_mismatch() -> None:
    w = clean_watcher()
    w.insert(9, ev(1.45, "reply_delta", message="m1", attempt=1, text="hel"))
    r = judge({"w": w})
    assert r["mismatched"] >= 1
    assert r["evidence"]["mismatched"][0]["why"] == "a delta of attempt 1 after turn_started 2"


def test_outages_run_from_the_fault_that_caused_them() -> None:
    w = [
        ev(0.0, "connection", status="connecting"),
        ev(0.5, "connection", status="live"),
        ev(10.02, "connection", status="reconnecting"),  # a stream reset at 10.0
        ev(10.3, "connection", status="live"),
        ev(22.6, "connection", status="reconnecting"),  # a 3 s stall from 20.0, noticed at 2.6 s
        ev(23.2, "connection", status="live"),
        ev(40.0, "connection", status="reconnecting"),  # nothing explains this one
        ev(40.5, "connection", status="live"),
        ev(82.01, "connection", status="reconnecting"),  # a reset during a stall from 80.0
        ev(83.3, "connection", status="live"),
        ev(90.0, "connection", status="reconnecting"),  # never live again
    ]
    faults = [
        soak.Fault(10.0, "stream reset", 0.0, "chaos stream reset: conn#3"),
        soak.Fault(20.0, "stall", 3.0, "chaos stall 3.000s"),
        soak.Fault(30.0, "stall", 1.0, "chaos stall 1.000s"),  # too short to notice
        soak.Fault(45.0, "lost response (a send's)", 0.0, "lose_response: PATCH /.json"),
        soak.Fault(50.0, "stall", 4.0, "chaos stall 4.000s"),  # never noticed: frozen, "live"
        soak.Fault(80.0, "stall", 3.0, "chaos stall 3.000s"),
        soak.Fault(82.0, "reset", 0.0, "chaos reset: conn#9"),
    ]
    o = soak.outages({"w": w}, {"w": faults}, [], 100.0)
    got = [(e["cause"], e["outage_s"], e["after_fault_ended_s"]) for e in o["episodes"]]
    assert got == [
        ("stream reset", 0.3, 0.3),
        ("stall", 3.2, 0.2),
        ("unexplained", 0.5, None),
        ("stall not noticed", 4.0, 0.0),
        ("stall", 3.3, 0.3),
        ("unexplained", None, None),
    ]
    assert (o["reconnects"], o["stalls_not_noticed"], o["never_live_again"]) == (5, 1, 1)
    assert o["max_s"] == float("inf")
    assert [f["at_s"] for f in o["never_caused_reconnect"]] == [30.0]  # the send's isn't listed


def test_a_reconnect_during_the_database_restart_counts_from_its_start() -> None:
    w = [
        ev(0.0, "connection", status="connecting"),
        ev(0.5, "connection", status="live"),
        ev(60.3, "connection", status="reconnecting"),
        ev(61.9, "connection", status="live"),
    ]
    restart = soak.Fault(60.0, "database restart", 1.2, "database restart")
    o = soak.outages({"w": w}, {"w": [soak.Fault(60.29, "stream reset", 0.0, "x")]}, [restart], 99)
    [e] = o["episodes"]
    assert (e["cause"], e["outage_s"], e["after_fault_ended_s"]) == ("database restart", 1.9, 0.7)


def test_logs_are_scanned_for_tracebacks_and_credentials(tmp_path: Path) -> None:
    (tmp_path / "runner.log").write_text(
        "ok\nTraceback (most recent call last):\n  File x\nGET /a.json?auth=SECRET&x=1\n"
    )
    found: list[tuple[str, dict[str, Any]]] = []
    assert soak.scan_logs(tmp_path, lambda kind, item: found.append((kind, item))) == (1, 1)
    line = next(item["line"] for kind, item in found if kind == "secret_urls")
    assert "SECRET" not in line and "auth=<redacted>" in line


def test_agent_offline_counts_only_while_a_runner_was_up() -> None:
    w = [
        ev(-1.0, "agent", state="offline"),  # before any runner was ready: true
        ev(5.0, "agent", state="offline"),  # one was up since 0: false
        ev(6.0, "agent", state="working", message="m1"),
        ev(30.0, "agent", state="offline"),  # the only one stopped at 20: true
    ]
    r = judge({"w": w}, runners_alive=[(0.0, 20.0)])
    assert r["agent_offline_while_up"] == 1
    assert r["evidence"]["agent_offline_while_a_runner_was_up"][0]["at_s"] == 5.0
