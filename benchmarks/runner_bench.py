"""Benchmark the agent runner: first-token latency, writes per token, bytes per reply, turns/s.

Everything runs against the bundled emulators (RTDB with the real rules file,
plus Auth) in their own process, reached only over 127.0.0.1. The runner is
the real product process, ``emdash-fb runner`` (``python -m emdash_fb.cli.main
runner``), started as a subprocess with its defaults unless stated: 4
sessions in parallel, 30 s lease, the first chunk of a reply flushed after
100 ms, later ones once they hold 128 bytes (at most 250 ms) or 1,024 bytes
(see ``emdash_fb/runner/chunks.py``), and a claim poll every 15 s (``max(0.5, lease / 2)``), so new work is
noticed through its listener on ``/work`` (firebase-admin's SSE stream),
not the poll. Members are real identities with a live ``SessionView`` each,
in a spawned member process (see ``session_bench.py``); the sender is the
session's owner in this process.

1. **first token** - ``SessionClient.send`` until another member's view
   reports the first ``ReplyDelta`` of the reply (p50 / p95), echo agent at
   ``rate=1000`` (the first word immediately, then one word per ms, so the
   first chunk is a mid-stream flush, not the closing one), one message at a
   time, 100-word questions. ``TurnStarted`` and the final ``MessagePosted``
   are timed too.
2. **writes per 1,000 tokens** - one ~1,000-token reply from the echo agent at
   ``rate=100`` (100 tokens/s; a token is one word = one ``TextDelta``). The
   emulator counts every request (its handler wrapped inside this benchmark's
   emulator process, not in the product) by caller, method and place; the
   runner's writes (PUT/PATCH/POST/DELETE under its runner identity) from the
   send until the reply was posted are divided by the tokens and by the
   turn's length (``endedAt - startedAt``). The runner's 10 s heartbeat is
   counted separately.
3. **bytes per reply** - during the same turn, the SSE body bytes the member's
   stream received from ``TurnStarted`` until the reply's ``MessagePosted``,
   relative to ``len(reply)`` (UTF-8). Two agents: the echo agent (whose reply
   repeats the ~1,000-word question) and a ``command`` agent printing 1,000
   words at 100 words/s in answer to a one-line question. For comparison (not
   a goal), the echo agent again with ``--min-chunk-bytes 0``: a flush every
   100 ms whatever its size. Each also reports the median gap between the
   reply updates the member sees.
4. **turns/s** - 20 sessions (one owner each), 5 messages sent to each at once
   from 20 threads, with 1 and 2 runner processes (echo ``rate=0``);
   time from the first send until ``/work`` is empty. Then every message must
   have exactly one reply and one turn (``done``, attempt 1), and the runners'
   logs must name each turn once.

Every measurement is repeated (3 runs by default) and medians are quoted. The
table is printed; a full run writes ``benchmarks/results/runner.json``.

    .venv/bin/python benchmarks/runner_bench.py            # full, ~2.5 min
    .venv/bin/python benchmarks/runner_bench.py --quick    # smoke, ~30 s
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (  # noqa: E402
    bench_parser,
    finish_report,
    log,
    median,
    percentile,
    plan,
    print_goals,
    print_rows,
    run_main,
    run_sections,
    start_report,
)
from session_bench import (  # noqa: E402
    EmulatorProcess,
    MemberProcess,
    now_ns,
    process_cpu_seconds,
    session_with_watcher,
    sign_in,
    user_env,
)

REPO = Path(__file__).resolve().parent.parent
SESSION_BENCH = Path(__file__).resolve().parent / "session_bench.py"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "runner.json"
READY_TIMEOUT = 30.0

GOAL_FIRST_P95_MS = 250.0
GOAL_WRITES_PER_S = 10.0
GOAL_BYTES_RATIO = 2.0

WRITE_METHODS = ("PUT", "PATCH", "POST", "DELETE")
_TOKEN = re.compile(r"\s*\S+\s*")  # the echo agent's TextDelta: a word and the space after it
_TURN_LINE = re.compile(
    r"turn (\S+)/(\S+) by .*?: (\w+) in [\d.]+s, (\d+) chars, (\d+) chunks, attempt (\d+)"
)
VOCAB_TEXT = (
    "the runner streams each reply in small chunks so that every member sees the "
    "words arrive while the agent is still writing them down for all"
)
VOCAB = tuple(VOCAB_TEXT.split())

PROSE_AGENT = """\
import sys, time
sys.stdin.read()
words, rate = int(sys.argv[1]), float(sys.argv[2])
vocab = sys.argv[3].split()
start = time.monotonic()
for i in range(words):
    delay = start + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    sys.stdout.write(vocab[i % len(vocab)] + " ")
    sys.stdout.flush()
"""


def words(n: int, offset: int = 0) -> str:
    return " ".join(VOCAB[(offset + i) % len(VOCAB)] for i in range(n))


@dataclass
class Settings:
    runs: int = 3
    first_samples: int = 40
    first_rate: float = 1000.0
    first_words: int = 100
    stream_rate: float = 100.0
    stream_tokens: int = 1000
    sessions: int = 20
    per_session: int = 5
    runner_counts: tuple[int, ...] = (1, 2)

    @classmethod
    def quick(cls) -> Settings:
        return cls(runs=1, first_samples=15, stream_tokens=300, per_session=3)


# -- the runner process -----------------------------------------------------------------


class RunnerProcess:
    """``emdash-fb runner`` as a subprocess, its log in a file."""

    def __init__(self, env: dict[str, str], workdir: Path, rid: str, *args: str) -> None:
        self.rid = rid
        self.log_path = workdir / f"runner-{rid}.log"
        with self.log_path.open("ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "emdash_fb.cli.main", "runner", "--id", rid, *args],
                cwd=workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us; we stop it ourselves
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while " ready (agent " not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"runner {self.rid} did not start: {self.log()[-1500:]}")
            time.sleep(0.05)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def turns(self) -> list[tuple[str, str, str, int]]:
        """(sid, mid, state, attempt) for every turn the runner logged."""
        return [
            (m.group(1), m.group(2), m.group(3), int(m.group(6)))
            for m in _TURN_LINE.finditer(self.log())
        ]

    def cpu_seconds(self) -> float:
        try:
            return process_cpu_seconds(self.pid)
        except OSError:
            return 0.0

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)  # the runner stops cleanly on SIGTERM
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        if time.monotonic() - t > 2:
            log(f"  (runner {self.rid} took {time.monotonic() - t:.1f} s to stop)")


def runner_env(emu: EmulatorProcess, workdir: Path) -> dict[str, str]:
    env = user_env(emu, workdir / "runner-config")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def runner_writes(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The runner's writes between two counter snapshots, by ``method place``."""
    out: dict[str, int] = {}
    for key, n in after.items():
        who, method, place = key.split(" ")
        d = n - before.get(key, 0)
        if who == "runner" and method in WRITE_METHODS and d:
            out[f"{method} {place}"] = d
    return out


def runner_requests(before: dict[str, int], after: dict[str, int]) -> int:
    return sum(
        n - before.get(k, 0)
        for k, n in after.items()
        if k.startswith("runner ") and "STREAM" not in k
    )


def reply_text_of(message: dict[str, Any], turn: dict[str, Any]) -> str:
    """The reply's text: in the message, or (when the message points at them) the turn's chunks."""
    if isinstance(message.get("text"), str):
        return message["text"]
    chunks = turn.get("chunks") or {}
    return "".join(chunks[k] for k in sorted(chunks, key=lambda k: (len(k), k)))


# -- 1. first token ---------------------------------------------------------------------------


def measure_first_token(
    emu: EmulatorProcess, host: MemberProcess, env: dict[str, str], run: int, s: Settings
) -> dict[str, Any]:
    owner, sid = session_with_watcher(host, env, (f"ft{run}owner", "alice"), (f"ft{run}bob", "bob"))
    first, started, posted, ratios = [], [], [], []
    incomplete = 0
    for i in range(2 + s.first_samples):  # two warm-up turns first
        question = f"q{i} " + words(s.first_words - 1, i)
        t0 = now_ns()
        mid = owner.sessions.send(sid, question).message
        got = host.call("collect", 40, kind="reply", note=mid, timeout=30)
        records = got["records"][0]
        t_start = next((r[2] for r in records if r[0] == "start" and r[1] == mid), None)
        t_delta = next((r for r in records if r[0] == "delta" and r[1] == mid), None)
        reply = next((r for r in records if r[0] == "reply" and r[5] == mid), None)
        if i < 2:
            continue
        if t_start is None or t_delta is None or reply is None:
            incomplete += 1
            continue
        started.append((t_start - t0) / 1e6)
        first.append((t_delta[2] - t0) / 1e6)
        posted.append((reply[2] - t0) / 1e6)
        b_start = next(r[3] for r in records if r[0] == "start" and r[1] == mid)
        ratios.append((reply[3] - b_start) / max(1, reply[4]))
        time.sleep(0.05)
    host.call("close", 20)
    first.sort()
    return {
        "samples": len(first),
        "incomplete": incomplete,
        "p50_ms": round(percentile(first, 50), 1),
        "p95_ms": round(percentile(first, 95), 1),
        "max_ms": round(first[-1], 1) if first else float("nan"),
        "turn_started_p50_ms": round(percentile(sorted(started), 50), 1),
        "reply_posted_p50_ms": round(percentile(sorted(posted), 50), 1),
        "bytes_per_reply_byte_first": round(ratios[0], 2) if ratios else None,
        "bytes_per_reply_byte_last": round(ratios[-1], 2) if ratios else None,
        "history_messages_at_end": 2 * (2 + s.first_samples),
    }


# -- 2 + 3. writes per token, bytes per reply ----------------------------------------------------


def measure_stream(
    emu: EmulatorProcess,
    host: MemberProcess,
    env: dict[str, str],
    run: int,
    agent: str,
    s: Settings,
) -> dict[str, Any]:
    owner, sid = session_with_watcher(
        host, env, (f"st{agent}{run}owner", "alice"), (f"st{agent}{run}bob", "bob")
    )
    question = words(s.stream_tokens - 20) if agent == "echo" else "please write at length"
    time.sleep(0.3)
    marks0 = host.call("clear", 10)
    before = emu.counts()
    mid = owner.sessions.send(sid, question).message
    got = host.call("collect", 120, kind="reply", note=mid, timeout=110)
    after = emu.counts()
    host.call("close", 20)
    records = got["records"][0]
    turn = emu.admin_get(f"sessions/{sid}/turns/{mid}")
    reply_text = reply_text_of(emu.admin_get(f"sessions/{sid}/transcript/{mid}~a"), turn)
    seconds = (turn["endedAt"] - turn["startedAt"]) / 1000
    tokens = len(_TOKEN.findall(reply_text)) if agent == "echo" else s.stream_tokens
    writes = runner_writes(before, after)
    heartbeat = sum(n for k, n in writes.items() if k.endswith(" runners"))
    turn_writes = sum(writes.values()) - heartbeat
    start = next(r for r in records if r[0] == "start" and r[1] == mid)
    deltas = [r for r in records if r[0] == "delta" and r[1] == mid]
    reply = next(r for r in records if r[0] == "reply" and r[5] == mid)
    reply_bytes = len(reply_text.encode())
    during = reply[3] - start[3]
    streamed = deltas[-1][3] - start[3] if deltas else 0
    gaps = sorted((b[2] - a[2]) / 1e6 for a, b in zip(deltas, deltas[1:], strict=False))
    return {
        "agent": agent,
        "tokens": tokens,
        "reply_bytes": reply_bytes,
        "question_bytes": len(question.encode()),
        "turn_seconds": round(seconds, 2),
        "runner_writes": writes,
        "turn_writes": turn_writes,
        "heartbeat_writes": heartbeat,
        "runner_requests": runner_requests(before, after),
        "writes_per_1000_tokens": round(1000 * turn_writes / max(1, tokens), 1),
        "writes_per_s": round(turn_writes / max(1e-9, seconds), 2),
        "chunk_writes": sum(n for k, n in writes.items() if k.endswith(" chunks")),
        "reply_deltas_seen": len(deltas),
        "member_bytes_during_reply": during,
        "member_bytes_chunks": streamed,
        "member_bytes_final_write": reply[3] - (deltas[-1][3] if deltas else start[3]),
        "member_bytes_from_send": reply[3] - marks0["bytes"],
        "bytes_per_reply_byte": round(during / max(1, reply_bytes), 2),
        "update_gap_p50_ms": round(percentile(gaps, 50), 1),
    }


# -- 4. turns/s ----------------------------------------------------------------------------------


def measure_turns(
    emu: EmulatorProcess,
    env: dict[str, str],
    owners: list[Any],
    workdir: Path,
    n_runners: int,
    run: int,
    s: Settings,
) -> dict[str, Any]:
    sids = [o.sessions.share().session for o in owners]
    renv = runner_env(emu, workdir)
    runners = [
        RunnerProcess(renv, workdir, f"tp{n_runners}r{run}x{k}", "--agent-opt", "rate=0")
        for k in range(n_runners)
    ]
    try:
        for r in runners:
            r.wait_ready()
        time.sleep(0.5)  # the work listener's first snapshot
        before = emu.counts()
        cpu0 = {r.pid: r.cpu_seconds() for r in runners}
        emu_cpu0 = emu.cpu_seconds()
        sent: dict[str, list[str]] = {sid: [] for sid in sids}
        errors: list[BaseException] = []

        def send_all(owner: Any, sid: str) -> None:
            try:
                for i in range(s.per_session):
                    sent[sid].append(owner.sessions.send(sid, f"turn {i} in {sid}").message)
            except BaseException as exc:
                errors.append(exc)

        t0 = time.monotonic()
        threads = [
            threading.Thread(target=send_all, args=(o, sid), daemon=True)
            for o, sid in zip(owners, sids, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        sent_s = time.monotonic() - t0
        if errors:
            raise RuntimeError(f"sending failed: {errors[0]!r}")
        total = sum(len(v) for v in sent.values())
        deadline = time.monotonic() + 120
        while emu.admin_get("work", "shallow=true"):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        elapsed = time.monotonic() - t0
        after = emu.counts()
        runner_cpu = sum(r.cpu_seconds() - cpu0[r.pid] for r in runners)
        emu_cpu = emu.cpu_seconds() - emu_cpu0
    finally:
        for r in runners:
            r.stop()
    # Check every message: one reply, one finished turn, named once in the logs.
    logged: dict[str, list[tuple[str, int]]] = {}
    for r in runners:
        for _sid, mid, state, attempt in r.turns():
            logged.setdefault(mid, []).append((state, attempt))
    with ThreadPoolExecutor(8) as pool:
        trees = list(pool.map(lambda sid: emu.admin_get(f"sessions/{sid}"), sids))
    lost, duplicated, extra, spurious = 0, 0, 0, 0
    anomalies: list[dict[str, Any]] = []
    for sid, tree in zip(sids, trees, strict=True):
        messages = tree.get("transcript") or {}
        turns = tree.get("turns") or {}
        replies = [k for k, v in messages.items() if v.get("role") == "assistant"]
        extra += max(0, len(replies) - len(sent[sid]))
        for mid in sent[sid]:
            reply = messages.get(f"{mid}~a")
            turn = turns.get(mid) or {}
            states = [state for state, _attempt in logged.get(mid, [])]
            bad_reply = reply is None or reply.get("replyTo") != mid or turn.get("state") != "done"
            # Answered twice: a retry, or two runners each finishing it.
            twice = turn.get("attempt", 1) != 1 or states.count("done") > 1
            # A runner that claimed a message someone else had answered already.
            stale = sum(state != "done" for state in states)
            lost += bad_reply
            duplicated += twice
            spurious += stale
            if (bad_reply or twice or stale) and len(anomalies) < 10:
                anomalies.append(
                    {
                        "sid": sid,
                        "mid": mid,
                        "logged": logged.get(mid, []),
                        "turn": {k: v for k, v in turn.items() if k != "chunks"},
                        "reply": bool(reply),
                    }
                )
    per_runner = [len(r.turns()) for r in runners]
    requests = runner_requests(before, after)
    return {
        "runners": n_runners,
        "sessions": len(sids),
        "turns": total,
        "seconds": round(elapsed, 2),
        "send_seconds": round(sent_s, 2),
        "turns_per_s": round(total / elapsed, 1),
        "lost": lost,
        "duplicated": duplicated,
        "extra_replies": extra,
        "spurious_claims": spurious,
        "anomalies": anomalies,
        "turns_per_runner": per_runner,
        "runner_requests_per_turn": round(requests / max(1, total), 1),
        "runner_cpu_s": round(runner_cpu, 2),
        "emulator_cpu_s": round(emu_cpu, 2),
    }


# -- reporting ----------------------------------------------------------------------------------


def print_table(report: dict[str, Any]) -> None:
    rows: list[tuple[str, ...]] = []
    ft = report.get("first_token")
    if ft:
        runs = " ".join(f"{r['p95_ms']:.0f}" for r in ft["runs"])
        r0 = ft["runs"][0]
        rows.append(
            (
                "send -> first ReplyDelta p50/p95 ms (echo rate=1000)",
                f"{ft['median_p50_ms']:.0f} / {ft['median_p95_ms']:.0f}",
                f"p95: {runs}",
                f"TurnStarted p50 {ft['median_turn_started_p50_ms']:.0f} ms, "
                f"{r0['samples']} samples/run",
            )
        )
    if ft:
        first = median([r["bytes_per_reply_byte_first"] for r in ft["runs"]])
        last = median([r["bytes_per_reply_byte_last"] for r in ft["runs"]])
        rows.append(
            (
                "member bytes per reply byte, short replies as history grows",
                f"{first:.2f} -> {last:.2f}",
                "",
                f"first-token turns: 1st counted turn (4 messages before it) -> last "
                f"({r0['history_messages_at_end'] - 2} before it)",
            )
        )
    for st in report.get("stream", []):
        r0 = st["runs"][0]
        if st["agent"].startswith("echo"):
            runs = " ".join(f"{r['writes_per_s']:.1f}" for r in st["runs"])
            rows.append(
                (
                    f"runner writes/s per streaming turn ({st['agent']}, rate=100)",
                    f"{st['median_writes_per_s']:.1f}",
                    runs,
                    f"{st['median_writes_per_1000_tokens']:.0f} writes per 1,000 tokens, "
                    f"{r0['tokens']} tokens in {r0['turn_seconds']:.1f} s",
                )
            )
        runs = " ".join(f"{r['bytes_per_reply_byte']:.2f}" for r in st["runs"])
        rows.append(
            (
                f"member bytes per reply byte ({st['agent']} agent)",
                f"{st['median_bytes_per_reply_byte']:.2f}",
                runs,
                f"reply {r0['reply_bytes']} B: chunks {r0['member_bytes_chunks']} B + "
                f"final write {r0['member_bytes_final_write']} B; an update every "
                f"{st['median_update_gap_ms']:.0f} ms",
            )
        )
    for tp in report.get("turns", []):
        runs = " ".join(f"{r['turns_per_s']:.1f}" for r in tp["runs"])
        bad = sum(r["lost"] + r["duplicated"] + r["extra_replies"] for r in tp["runs"])
        rows.append(
            (
                f"turns/s, {tp['sessions']} sessions, {tp['runners']} runner(s)",
                f"{tp['median_turns_per_s']:.1f}",
                runs,
                f"{tp['runs'][0]['turns']} turns/run, lost+duplicated {bad}, stale claims "
                f"{sum(r['spurious_claims'] for r in tp['runs'])}, "
                f"{tp['runs'][0]['runner_requests_per_turn']} runner requests/turn",
            )
        )
    print_rows(rows, ("measure", "median", "runs", "note"))
    print_goals(report["goals"])
    if report.get("checks"):
        print("checks (not issue goals):")
        print_goals(report["checks"])


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    report["checks"] = checks(report)
    out = []
    ft = report.get("first_token")
    if ft:
        out.append(
            {
                "name": "message written -> first reply chunk at another member, p95 ms",
                "goal": f"<= {GOAL_FIRST_P95_MS:.0f}",
                "value": ft["median_p95_ms"],
                "pass": ft["median_p95_ms"] <= GOAL_FIRST_P95_MS,
            }
        )
    for st in report.get("stream", []):
        if not st.get("goal", True):
            continue
        if st["agent"] == "echo":
            out.append(
                {
                    "name": "runner writes/s per streaming turn at 100 tokens/s "
                    f"({st['median_writes_per_1000_tokens']:.0f} per 1,000 tokens)",
                    "goal": f"<= {GOAL_WRITES_PER_S:.0f}",
                    "value": st["median_writes_per_s"],
                    "pass": st["median_writes_per_s"] <= GOAL_WRITES_PER_S,
                }
            )
        out.append(
            {
                "name": f"bytes a member downloads per reply byte ({st['agent']} agent)",
                "goal": f"<= {GOAL_BYTES_RATIO:.0f}x",
                "value": st["median_bytes_per_reply_byte"],
                "pass": st["median_bytes_per_reply_byte"] <= GOAL_BYTES_RATIO,
            }
        )
    for tp in report.get("turns", []):
        bad = sum(r["lost"] + r["duplicated"] + r["extra_replies"] for r in tp["runs"])
        out.append(
            {
                "name": f"lost or duplicated turns, {tp['runners']} runner(s) "
                f"({tp['median_turns_per_s']:.1f} turns/s)",
                "goal": "0",
                "value": bad,
                "pass": bad == 0,
            }
        )
    return out


def checks(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Not issue goals: correctness smells the measurements can see."""
    out = []
    for tp in report.get("turns", []):
        n = sum(r["spurious_claims"] for r in tp["runs"])
        out.append(
            {
                "name": f"turns logged as lost for a message another runner answered, "
                f"{tp['runners']} runner(s) (a stale claim: the free lock's ETag is the same "
                "before and after a whole turn)",
                "goal": "0",
                "value": n,
                "pass": n == 0,
            }
        )
    return out


def layout_text(nproc: int | None) -> str:
    return (
        "emulator: a subprocess running EmulatorServer with the real rules file and the Auth "
        "emulator, its RTDB handler wrapped to count requests; runner(s): `emdash-fb runner` "
        "subprocesses (python -m emdash_fb.cli.main runner, default settings); member: one "
        "spawned process holding the watching member's SessionView; sender(s): this process "
        f"(SessionClient.send); all share {nproc} CPUs"
    )


# -- driver ------------------------------------------------------------------------------------


def run_first_token(workdir: Path, s: Settings) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        emu = stack.enter_context(
            EmulatorProcess(workdir, count_requests=True, script=SESSION_BENCH)
        )
        env = user_env(emu, workdir / "config")
        runner = RunnerProcess(
            runner_env(emu, workdir), workdir, "first", "--agent-opt", f"rate={s.first_rate:g}"
        )
        stack.callback(runner.stop)
        host = MemberProcess()
        stack.callback(host.stop)
        runner.wait_ready()
        log(f"first token: emulator pid {emu.pid}, runner pid {runner.pid}, member pid {host.pid}")
        runs = []
        for run in range(s.runs):
            r = measure_first_token(emu, host, env, run, s)
            log(
                f"  run {run + 1}/{s.runs}: p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, "
                f"max {r['max_ms']:.0f} ms (TurnStarted p50 {r['turn_started_p50_ms']:.0f} ms, "
                f"reply p50 {r['reply_posted_p50_ms']:.0f} ms), {r['samples']} samples"
            )
            runs.append(r)
    return {
        "agent": f"echo rate={s.first_rate:g}",
        "question_words": s.first_words,
        "runs": runs,
        "median_p50_ms": median([r["p50_ms"] for r in runs]),
        "median_p95_ms": median([r["p95_ms"] for r in runs]),
        "median_turn_started_p50_ms": median([r["turn_started_p50_ms"] for r in runs]),
        "median_reply_posted_p50_ms": median([r["reply_posted_p50_ms"] for r in runs]),
    }


def run_stream(workdir: Path, s: Settings) -> list[dict[str, Any]]:
    out = []
    script = workdir / "prose_agent.py"
    script.write_text(PROSE_AGENT)
    echo = ("--agent-opt", f"rate={s.stream_rate:g}")
    variants: dict[str, tuple[str, tuple[str, ...]]] = {
        "echo": ("echo", echo),
        "echo --min-chunk-bytes 0": ("echo", (*echo, "--min-chunk-bytes", "0")),
        "command": (
            "command",
            (
                "--agent",
                "command",
                "--agent-opt",
                f"cmd={sys.executable} {script} {s.stream_tokens} {s.stream_rate:g} '{VOCAB_TEXT}'",
            ),
        ),
    }
    with contextlib.ExitStack() as stack:
        emu = stack.enter_context(
            EmulatorProcess(workdir, count_requests=True, script=SESSION_BENCH)
        )
        env = user_env(emu, workdir / "config")
        host = MemberProcess()
        stack.callback(host.stop)
        for k, (label, (agent, args)) in enumerate(variants.items()):
            runner = RunnerProcess(runner_env(emu, workdir), workdir, f"stream{k}-{agent}", *args)
            try:
                runner.wait_ready()
                log(f"streaming ({label}): runner pid {runner.pid}, member pid {host.pid}")
                runs = []
                for run in range(s.runs):
                    r = measure_stream(emu, host, env, 10 * k + run, agent, s)
                    log(
                        f"  run {run + 1}/{s.runs}: {r['tokens']} tokens in {r['turn_seconds']} s, "
                        f"{r['turn_writes']} runner writes ({r['writes_per_s']}/s, "
                        f"{r['writes_per_1000_tokens']} per 1,000 tokens; {r['runner_writes']}), "
                        f"member got {r['member_bytes_during_reply']} B for a "
                        f"{r['reply_bytes']} B reply ({r['bytes_per_reply_byte']}x), "
                        f"an update every {r['update_gap_p50_ms']:.0f} ms"
                    )
                    runs.append(r)
            finally:
                runner.stop()
            out.append(
                {
                    "agent": label,
                    "goal": label in ("echo", "command"),
                    "rate": s.stream_rate,
                    "runs": runs,
                    "median_writes_per_s": median([r["writes_per_s"] for r in runs]),
                    "median_writes_per_1000_tokens": median(
                        [r["writes_per_1000_tokens"] for r in runs]
                    ),
                    "median_bytes_per_reply_byte": median(
                        [r["bytes_per_reply_byte"] for r in runs]
                    ),
                    "median_update_gap_ms": median([r["update_gap_p50_ms"] for r in runs]),
                }
            )
    return out


def run_turns(workdir: Path, s: Settings) -> list[dict[str, Any]]:
    out = []
    with EmulatorProcess(workdir, count_requests=True, script=SESSION_BENCH) as emu:
        env = user_env(emu, workdir / "config")
        with ThreadPoolExecutor(8) as pool:
            owners = list(
                pool.map(lambda i: sign_in(env, f"tp-owner{i}", f"owner{i}"), range(s.sessions))
            )
        for n in s.runner_counts:
            runs = []
            for run in range(s.runs):
                r = measure_turns(emu, env, owners, workdir, n, run, s)
                log(
                    f"turns/s, {n} runner(s), run {run + 1}/{s.runs}: {r['turns_per_s']} turns/s "
                    f"({r['turns']} turns in {r['seconds']} s, sent in {r['send_seconds']} s; "
                    f"per runner {r['turns_per_runner']}), lost {r['lost']}, duplicated "
                    f"{r['duplicated']}, extra {r['extra_replies']}, stale claims "
                    f"{r['spurious_claims']}; CPU s: runners "
                    f"{r['runner_cpu_s']}, emulator {r['emulator_cpu_s']}"
                )
                runs.append(r)
            out.append(
                {
                    "runners": n,
                    "sessions": s.sessions,
                    "per_session": s.per_session,
                    "runs": runs,
                    "median_turns_per_s": median([r["turns_per_s"] for r in runs]),
                }
            )
    return out


SECTIONS = ("first", "stream", "turns")


def main(argv: list[str] | None = None) -> int:
    args = bench_parser(
        __doc__.split("\n\n")[0] if __doc__ else None, SECTIONS, DEFAULT_OUT
    ).parse_args(argv)
    s, only, out_path = plan(args, Settings, SECTIONS, DEFAULT_OUT)
    report, meter = start_report("emdash-fb runner", args.quick, s, layout_text(os.cpu_count()))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="emdash-runner-bench-") as tmp:
        sections = [("first", "first_token", run_first_token), ("stream", "stream", run_stream)]
        sections.append(("turns", "turns", run_turns))
        run_sections(report, only, sections, Path(tmp), s)
    report["methods"] = {
        "first_token": "t0 = CLOCK_MONOTONIC before SessionClient.send() (owner, this process); "
        "t1 = CLOCK_MONOTONIC in the member's SessionView on_event for the turn's first "
        "ReplyDelta (member process); one message at a time, each after the previous reply",
        "writes": "requests counted inside the emulator process by a wrapper around its RTDB "
        "handler; runner writes = PUT/PATCH/POST/DELETE carrying the runner's "
        "auth_variable_override, from before the send until the member saw the reply; "
        "writes/s over the turn record's endedAt - startedAt; heartbeat writes excluded",
        "bytes": "SSE body bytes the member's stream received (sse.read_events wrapped in the "
        "member process) from its TurnStarted event to the reply's MessagePosted, over "
        "len(reply.encode())",
        "turns": "first send until GET /work?shallow=true is empty (polled every 20 ms); "
        "then each session read whole (admin) and the runner logs parsed",
    }
    passed = finish_report(report, meter, started, goals, print_table, out_path)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    run_main(main)
