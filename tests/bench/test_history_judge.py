"""The history benchmark's pure pieces (benchmarks/history_bench.py): goals, table, counting.

The benchmark itself takes minutes and real processes; what it concludes comes
from pure functions of what it measured (``goals``, ``table_rows``,
``summarize_chats``), of what a terminal printed (``messages_shown``,
``earlier_said``) and of the history it writes (``answered_message``). Here
they get small made-up inputs with known answers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import history_bench as hb  # noqa: E402


def chat_run(received: int, shown: int, seconds: float, rss: float, **extra: Any) -> dict:
    return {
        "join": {
            "received_bytes": received,
            "shown_bytes": shown,
            "ratio": round(received / shown, 2),
            "seconds_to_last_message": seconds,
            "rss_mb": rss,
            "messages": 200,
            "shown_messages": 20,
        },
        "max_streams": extra.pop("streams", 1),
        **extra,
    }


def history(h: int, **sections: Any) -> dict[str, Any]:
    return {"h": h, "build": {"session_bytes": 3000 * h}, **sections}


def report(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"settings": {"outage_s": 10.0}, "histories": list(rows)}


def test_every_goal_is_judged_at_every_h_and_ratios_between_the_named_sizes() -> None:
    small = history(
        100,
        join={
            "received_bytes": 40_000,
            "shown_bytes": 30_000,
            "ratio": 1.33,
            "seconds_to_last_message": 1.0,
            "rss_mb": 100.0,
        },
        reconnect={
            "received_bytes": 40_000,
            "changed_bytes": 14_000,
            "allowed_bytes": 2 * 14_000 + 16 * 1024,
        },
        cpu={"cpu_ms_per_chunk": 2.0},
        runner={"median_received_bytes": 300_000},
        max_streams=3,
        latency={"p50_ms": 20.0, "p95_ms": 50.0, "samples": 30},
    )
    mid = history(1000, runner={"median_received_bytes": 400_000}, max_streams=2)
    big = history(
        10000,
        join={
            "received_bytes": 10_000_000,
            "shown_bytes": 30_000,
            "ratio": 333.33,
            "seconds_to_last_message": 2.0,
            "rss_mb": 140.0,
        },
        reconnect={
            "received_bytes": 50_000,
            "changed_bytes": 14_000,
            "allowed_bytes": 2 * 14_000 + 16 * 1024,
        },
        cpu={"cpu_ms_per_chunk": 3.5},
        runner={"median_received_bytes": 440_000},
        max_streams=4,
        latency={"p50_ms": 20.0, "p95_ms": float("nan"), "samples": 0},
    )
    goals = hb.goals(report(small, mid, big))
    verdict = {g["name"]: g["pass"] for g in goals}
    assert all(isinstance(v, bool) for v in verdict.values())
    got = {name.split(" (")[0]: ok for name, ok in verdict.items()}
    assert got == {
        "join: bytes downloaded / bytes shown, H=100": True,
        "join: bytes downloaded / bytes shown, H=10,000": False,
        "join: time to the last message on screen, H=10,000 vs H=100": False,  # 2.0x
        "reconnect after a 10 s outage: bytes downloaded, H=100": True,
        "reconnect after a 10 s outage: bytes downloaded, H=10,000": False,  # > 44.4 KB
        "REPL CPU per reply chunk event, ms, H=100": True,
        "REPL CPU per reply chunk event, ms, H=10,000": False,
        "REPL memory: VmRSS after sync, H=10,000 vs H=100": True,  # 1.4x
        "runner: bytes read per turn, H=10,000 vs H=1,000": True,  # 1.1x, not vs H=100
        "event streams per member while the chat is live, H=100": True,
        "event streams per member while the chat is live, H=1,000": True,
        "event streams per member while the chat is live, H=10,000": False,
        "message -> first reply chunk at another member, p95 ms, H=100": True,
        "message -> first reply chunk at another member, p95 ms, H=10,000": False,  # no samples
    }
    ratio = next(g for g in goals if g["name"].startswith("runner:"))
    assert ratio["value"] == 1.1 and "indicative" not in ratio["name"]


def test_without_the_largest_size_a_ratio_goal_says_it_is_only_indicative() -> None:
    rows = [
        history(100, runner={"median_received_bytes": 300_000}),
        history(1000, runner={"median_received_bytes": 3_000_000}),
    ]
    goals = hb.goals(report(*rows))
    (g,) = goals
    assert g["name"].startswith("runner: bytes read per turn, H=1,000 vs H=100")
    assert "indicative only" in g["name"] and g["value"] == 10.0 and g["pass"] is False
    assert hb.goals(report(rows[0])) == []  # one size: nothing to compare


def test_the_table_has_a_column_per_size_and_dashes_where_nothing_was_measured() -> None:
    rows = [
        history(
            100,
            **chat_run(600_000, 28_500, 0.9, 101.8),
            cpu={"cpu_ms_per_chunk": 5.05, "idle_cpu_ms_per_s": 5.0},
        ),
        history(1000, **chat_run(5_940_000, 28_500, 0.94, 117.8)),
    ]
    header, table = hb.table_rows(report(*rows))
    assert header == ("measure", "H=100", "H=1,000")
    cells = {r[0]: r[1:] for r in table}
    assert cells["join: downloaded / shown (goal <= 2x)"] == ("21.05x", "208.42x")
    assert cells["join: bytes downloaded (REST + stream bodies)"] == ("600.0 KB", "5.94 MB")
    assert cells["REPL CPU ms per reply chunk (goal <= 3)"] == ("5.05", "-")
    assert cells["event streams per member (most seen, goal <= 3)"] == ("1", "1")
    assert not any(label.startswith(("runner", "reconnect")) for label in cells)
    assert all(len(r) == len(header) for r in table)


def test_medians_over_chat_runs() -> None:
    runs = [
        chat_run(
            100,
            50,
            1.0,
            100.0,
            streams=1,
            cpu={
                "cpu_ms_per_chunk": 4.0,
                "idle_cpu_ms_per_s": 5.0,
                "received_bytes_per_chunk": 150.0,
            },
        ),
        chat_run(
            300,
            50,
            3.0,
            104.0,
            streams=3,
            cpu={
                "cpu_ms_per_chunk": 6.0,
                "idle_cpu_ms_per_s": 5.0,
                "received_bytes_per_chunk": 150.0,
            },
        ),
    ]
    out = hb.summarize_chats(runs)
    assert out["join"]["received_bytes"] == 200 and out["join"]["rss_mb"] == 102.0
    assert out["cpu"]["cpu_ms_per_chunk"] == 5.0
    assert out["max_streams"] == 3  # the most seen, not a median
    assert "reconnect" not in out


def test_what_the_screen_showed_is_counted_from_raw_output() -> None:
    raw = (
        "\x1b[2m… 1,980 earlier messages (/history to see more)\x1b[0m\r\n"
        "\x1b[1mbob\x1b[0m: question-00990 the agent\r\n"
        "agent → bob\r\n\x1b[32mreply-00990\x1b[0m read the build\r\n"
        "question-00991 again, reply-00991 and reply-00991 once more\r\n"
        "question-009912 is not a marker\r\n"
    ).encode()
    text = hb.plain(raw)
    assert "\x1b" not in text
    assert hb.earlier_said(text) == 1980
    assert hb.messages_shown(text) == 4
    assert hb.earlier_said("no such line") is None


def test_the_history_is_written_in_the_runners_shape() -> None:
    reply = hb.text_of(3, 2300, hb.reply_marker(7))
    question = hb.text_of(7, 120, hb.question_marker(7))
    assert len(reply) == 2300 and reply.startswith("reply-00007 ")
    assert len(question) == 120 and question.startswith("question-00007 ")
    paths = hb.answered_message("S", "M", 1000, ("u1", "alice"), question, reply, 256, fence=4)
    assert set(paths) == {
        "sessions/S/transcript/M",
        "sessions/S/transcript/M~a",
        "sessions/S/turns/M",
    }
    user, answer, turn = (
        paths["sessions/S/transcript/M"],
        paths["sessions/S/transcript/M~a"],
        paths["sessions/S/turns/M"],
    )
    assert user == {"role": "user", "uid": "u1", "name": "alice", "text": question, "at": 1000}
    assert answer["replyTo"] == "M" and "text" not in answer  # the text is the turn's chunks
    assert answer["at"] > user["at"] and turn["state"] == "done" and turn["fence"] == 4
    chunks = turn["chunks"]
    assert list(chunks) == [f"c{n:06d}" for n in range(9)]  # 2300 B in 256 B chunks
    assert "".join(chunks[k] for k in sorted(chunks)) == reply
