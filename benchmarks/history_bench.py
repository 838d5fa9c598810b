"""Benchmark a session with a long history: what joining, reconnecting and following it cost.

Sessions of H = 100, 1,000 and 10,000 answered messages (``--quick``: 100 and
1,000). Each answered message is a user message (~120 characters) and the
agent's reply, written in the runner's shape: ``transcript/<mid>`` and
``transcript/<mid>~a`` (no text), the reply's ~2.3 KB of text in
``turns/<mid>/chunks`` (256-byte chunks ``c000000``...), a ``done`` turn
record. The history is written with admin multi-path PATCHes at the root,
straight into the emulator, in batches (admin bypasses the rules, which are
loaded: the real rules file). Everything else goes through product paths
only: real ``emdash-fb`` processes, ``SessionClient`` / ``SessionView``, and
bytes counted at the HTTP layer, so the same script measures the session view
and runner once they change.

Per H (a fresh emulator each), in order:

1. **join bytes** - a real ``emdash-fb chat --join CODE`` (fresh profile) in a
   pseudo-terminal (``tests/support/terminal.py``: pexpect + pyte), its
   database connections through its own TCP proxy
   (``tests/support/faultproxy.py``) that counts what the process receives
   from the database: response bodies, REST and event streams (chunked
   framing included), heads apart. From the process's start until the last
   message's text is on screen and no byte has arrived for 1 s. Against the
   bytes of what it shows: the last N messages (N = all messages minus the
   "… K earlier messages" the REPL prints), the chunks of the replies among
   them, and ``members``, ``meta``, ``queue`` (each as the emulator's REST
   body for that path; the N messages as one ``orderBy="$key"&limitToLast=N``
   read). Goal: ≤ 2x at every H.
2. **join time** - from spawning that process until the last message's text
   is on screen (the screen polled every 20 ms). Goal: H=10,000 ≤ 1.5x H=100.
3. **reconnect bytes** - in the same process: the proxy resets every
   connection and refuses new ones for 10 s, during which 5 answered
   messages are written (admin, the runner's shape); then it lets them
   through again. Bytes received from the cut until the last new reply is on
   screen and 1 s of quiet, against the bytes of what changed (the 5
   messages, their replies and turn records). Goal: ≤ 2x + 16 KB at every H.
4. **CPU per reply chunk** - in the same process (measured before the
   outage): a user message and a running turn (admin), then 200 chunks of 64
   bytes PATCHed into ``turns/<mid>/chunks`` 25 ms apart; the process's
   utime + stime (``/proc/<pid>/stat``) from before the first chunk until
   the last chunk's text is on screen (the streaming preview), ÷ 200. The
   idle CPU rate just before is reported beside it. Goal: ≤ 3 ms at every H.
5. **REPL memory** - ``VmRSS`` (``/proc/<pid>/status``) of that process once
   it has synced (the bytes have settled). Goal: H=10,000 ≤ 1.5x H=100.
6. **runner bytes per turn** - a real ``emdash-fb runner`` (echo agent,
   ``--agent-opt rate=0``, default settings) with its database connections
   through its own counting proxy; the owner sends one message at a time;
   bytes the runner process received from before the send until the reply is
   stored and 0.5 s of quiet (one warm-up turn first). Goal: H=10,000 ≤ 1.2x
   H=1,000 (what grows beyond that is more than the agent's context).
7. **streams per member** - event-stream connections open through the chat
   process's proxy (the proxy parses each response head), sampled while the
   chat is live: after sync, while chunks stream, after the reconnect.
   Goal: ≤ 3.
8. **first reply chunk** - a member's ``SessionView`` in a spawned process
   (direct to the emulator), a real runner (echo ``rate=0``, default flush
   settings, direct); the owner sends ~30 messages one at a time; send →
   the member's first ``ReplyDelta`` of the reply (``CLOCK_MONOTONIC``, as
   in ``runner_bench.py``). p50 / p95. Goal: p95 ≤ 60 ms at every H.

1, 2, 4, 5 and 7 repeat in a fresh chat process per run (3 runs by default;
each run adds its own 6 answered messages to the session); 6 counts one turn
per run; medians are quoted. The table is printed; a full run writes
``benchmarks/results/history.json``.

    .venv/bin/python benchmarks/history_bench.py            # full (H up to 10,000): long
    .venv/bin/python benchmarks/history_bench.py --quick    # H = 100, 1,000; one run: ~2 min
    .venv/bin/python benchmarks/history_bench.py --history 10000 --only join --runs 1
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # tests.support

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
    start_report,
)
from emulator_bench import HttpConnection  # noqa: E402
from runner_bench import RunnerProcess, runner_env  # noqa: E402
from session_bench import (  # noqa: E402
    EmulatorProcess,
    MemberProcess,
    now_ns,
    process_cpu_seconds,
    setup_members,
    sign_in,
    user_env,
)

REPO = Path(__file__).resolve().parent.parent
SESSION_BENCH = Path(__file__).resolve().parent / "session_bench.py"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "history.json"
HOST = "127.0.0.1"
EXE = [sys.executable, "-m", "emdash_fb.cli.main"]

GOAL_JOIN_RATIO = 2.0
GOAL_JOIN_TIME_RATIO = 1.5  # H=10,000 vs H=100
GOAL_RECONNECT_RATIO = 2.0
GOAL_RECONNECT_SLACK = 16 * 1024
GOAL_CPU_MS_PER_CHUNK = 3.0
GOAL_RSS_RATIO = 1.5  # H=10,000 vs H=100
GOAL_RUNNER_RATIO = 1.2  # H=10,000 vs H=1,000
GOAL_STREAMS = 3
GOAL_FIRST_P95_MS = 60.0

SECTIONS = ("join", "cpu", "reconnect", "runner", "latency")
RUNNER_UID = "runner:history-bench"
PROSE = (
    "the agent read the build files and found that the failing step runs before the cache "
    "is warm so each retry starts from nothing while the log keeps growing with every pass "
    "and nobody notices until the disk is full on the shared machine late at night"
)
WORDS = PROSE.split()


def text_of(seed: int, n_bytes: int, lead: str = "") -> str:
    """Deterministic prose of exactly ``n_bytes`` ASCII bytes, starting with ``lead``."""
    words, size, i = ([lead] if lead else []), len(lead), seed
    while size < n_bytes:
        word = WORDS[(i * 7 + seed) % len(WORDS)]
        size += len(word) + (1 if words else 0)
        words.append(word)
        i += 1
    return " ".join(words)[:n_bytes]


def question_marker(i: int) -> str:
    """The first word of the i-th answered message's question."""
    return f"question-{i:05d}"


def reply_marker(i: int) -> str:
    """The first word of the i-th answered message's reply (what "on screen" looks for)."""
    return f"reply-{i:05d}"


_MARKER = re.compile(r"\b(?:question|reply)-\d{5}\b")


# -- the history ---------------------------------------------------------------------------


@dataclass
class Settings:
    runs: int = 3
    histories: tuple[int, ...] = (100, 1000, 10000)
    question_bytes: int = 120
    reply_bytes: int = 2300
    reply_chunk_bytes: int = 256
    batch: int = 250  # answered messages per admin write
    cpu_chunks: int = 200
    cpu_chunk_bytes: int = 64
    cpu_chunk_interval_s: float = 0.025
    cpu_idle_s: float = 2.0
    outage_s: float = 10.0
    outage_messages: int = 5
    latency_samples: int = 30
    latency_budget_s: float = 180.0
    quiet_s: float = 1.0

    @classmethod
    def quick(cls) -> Settings:
        return cls(runs=1, histories=(100, 1000), latency_budget_s=60.0)


def answered_message(
    sid: str,
    mid: str,
    at_ms: int,
    author: tuple[str, str],
    question: str,
    reply: str,
    chunk_bytes: int,
    fence: int,
) -> dict[str, Any]:
    """One answered message as the paths of a root multi-path write, in the product's shape:
    the send's user message, then the runner's finished turn (chunks kept) and reply."""
    uid, name = author
    base = f"sessions/{sid}"
    chunks = {
        f"c{seq:06d}": reply[k : k + chunk_bytes]
        for seq, k in enumerate(range(0, len(reply), chunk_bytes))
    }
    return {
        f"{base}/transcript/{mid}": {
            "role": "user",
            "uid": uid,
            "name": name,
            "text": question,
            "at": at_ms,
        },
        f"{base}/turns/{mid}": {
            "state": "done",
            "runner": RUNNER_UID,
            "fence": fence,
            "startedAt": at_ms + 20,
            "endedAt": at_ms + 900,
            "attempt": 1,
            "crashes": 0,
            "chunks": chunks,
        },
        f"{base}/transcript/{mid}~a": {
            "role": "assistant",
            "uid": RUNNER_UID,
            "name": "echo",
            "at": at_ms + 900,
            "replyTo": mid,
        },
    }


class Admin:
    """Admin REST calls straight to the emulator (``?auth=owner``: the rules are bypassed)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = HttpConnection(port)

    def request(self, method: str, path: str, body: Any = None, query: str = "") -> bytes:
        target = f"/{path}.json?auth=owner" + (f"&{query}" if query else "")
        data = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        try:
            status, reply = self.conn.request(method, target, data)
        except OSError:  # the keep-alive connection went stale: once more on a new one
            self.conn.close()
            self.conn = HttpConnection(self.port)
            status, reply = self.conn.request(method, target, data)
        if status != 200:
            raise RuntimeError(f"{method} /{path} -> {status} {reply[:300]!r}")
        return reply

    def patch_root(self, updates: dict[str, Any]) -> None:
        self.request("PATCH", "", updates)

    def get(self, path: str, query: str = "") -> Any:
        return json.loads(self.request("GET", path, query=query))

    def size(self, path: str, query: str = "") -> int:
        """Bytes of the emulator's REST body for ``path`` (what a reader downloads)."""
        return len(self.request("GET", path, query=query))

    def close(self) -> None:
        self.conn.close()


class History:
    """One session with its history: the owner, its invite, and writes in the runner's shape."""

    def __init__(self, emu: EmulatorProcess, env: dict[str, str], h: int, s: Settings) -> None:
        from emdash_fb.firebase.pushid import PushIds

        self.emu, self.env, self.h, self.s = emu, env, h, s
        self.admin = Admin(emu.port)
        self.owner = sign_in(env, f"owner{h}", "alice")
        shared = self.owner.sessions.share(max_members=50)
        self.sid, self.invite = shared.session, shared.invite
        me = self.owner.auth.current()
        self.author = (me.uid, self.owner.sessions.my_name())
        self.ids = PushIds()
        self.fence = 0
        self.answered = 0
        self.last_marker = ""

    def build(self) -> dict[str, Any]:
        """Write ``h`` answered messages, oldest first, one second apart, ending a minute ago."""
        s, t0 = self.s, time.monotonic()
        now = int(time.time() * 1000)
        start = now - 60_000 - 2000 * self.h
        written = 0
        for first in range(0, self.h, s.batch):
            updates: dict[str, Any] = {}
            for i in range(first, min(self.h, first + s.batch)):
                updates.update(self._answered(start + 2000 * i))
            if first + s.batch >= self.h:
                base = f"sessions/{self.sid}"
                updates[f"{base}/meta/lastMessage"] = self.last_mid
                updates[f"{base}/agent"] = {"name": "echo", "runner": RUNNER_UID, "at": now}
            body = json.dumps(updates, separators=(",", ":")).encode()
            written += len(body)
            self.admin.patch_root(updates)
        seconds = time.monotonic() - t0
        session_bytes = self.admin.size(f"sessions/{self.sid}")
        return {
            "answered": self.h,
            "write_mb": round(written / 1e6, 2),
            "session_bytes": session_bytes,
            "session_mb": round(session_bytes / 1e6, 2),
            "seconds": round(seconds, 1),
        }

    def next_index(self) -> int:
        """The number of the next answered message (its question's and reply's first words)."""
        self.fence += 1
        self.answered += 1
        self.last_marker = reply_marker(self.answered - 1)
        return self.answered - 1

    def _answered(self, at_ms: int, extra: str = "") -> dict[str, Any]:
        i = self.next_index()
        mid = self.last_mid = self.ids(at_ms)
        question = text_of(i, self.s.question_bytes, question_marker(i))
        reply = text_of(i + 1, self.s.reply_bytes, f"{reply_marker(i)} {extra}".strip())
        return answered_message(
            self.sid, mid, at_ms, self.author, question, reply, self.s.reply_chunk_bytes, self.fence
        )

    def answer_now(self, extra: str = "") -> str:
        """One more answered message, now (as a send and a finished turn would leave it)."""
        updates = self._answered(int(time.time() * 1000), extra)
        self.admin.patch_root(updates)
        return self.last_mid

    def message_count(self) -> int:
        return len(self.admin.get(f"sessions/{self.sid}/transcript", "shallow=true") or {})

    def shown_bytes(self, shown: int) -> dict[str, int]:
        """Bytes of what a member's REPL shows: its last ``shown`` messages with their replies'
        texts, and members, meta and queue (each as the emulator's REST body)."""
        base = f"sessions/{self.sid}"
        q = f"orderBy={urllib.parse.quote(json.dumps('$key'))}&limitToLast={shown}"
        raw = self.admin.request("GET", f"{base}/transcript", query=q)
        recent = json.loads(raw) or {}
        replies = sum(
            self.admin.size(f"{base}/turns/{m['replyTo']}/chunks")
            for m in recent.values()
            if isinstance(m, dict) and m.get("replyTo")
        )
        small = {k: self.admin.size(f"{base}/{k}") for k in ("members", "meta", "queue")}
        return {"messages": len(raw), "reply_texts": replies, **small}

    def changed_bytes(self, mids: list[str]) -> int:
        """Bytes of ``mids``' user messages, replies and turn records."""
        base = f"sessions/{self.sid}"
        return sum(
            self.admin.size(f"{base}/transcript/{mid}")
            + self.admin.size(f"{base}/transcript/{mid}~a")
            + self.admin.size(f"{base}/turns/{mid}")
            for mid in mids
        )

    def close(self) -> None:
        self.admin.close()


# -- counting what a process receives from the database ---------------------------------


def install_proxy_counter() -> None:
    """Make every FaultProxy count the response bytes it forwards to its clients.

    Counted per proxy (``proxy.bench_counts``): response heads, REST bodies and
    event-stream bodies (chunked framing included, as the parser passes it).
    Wraps the proxy's response-side hook (in this benchmark process only).
    """
    from tests.support import faultproxy

    pipe: Any = faultproxy._Pipe
    if getattr(pipe, "bench_counted", False):
        return
    original = pipe._on_response_piece

    def counted(self: Any, piece: Any, out: bytearray) -> Any:
        before = len(out)
        stop = original(self, piece, out)
        counts = getattr(self.proxy, "bench_counts", None)
        n = len(out) - before
        if counts is not None and n:
            if piece.kind == "head":
                counts["head"] += n
            elif piece.message is not None and piece.message.event_stream:
                counts["stream"] += n
            else:
                counts["rest"] += n
        return stop

    pipe._on_response_piece = counted
    pipe.bench_counted = True


class CountingProxy:
    """A FaultProxy in front of the emulator's database port, counting what it forwards back."""

    def __init__(self, port: int) -> None:
        from tests.support.faultproxy import FaultProxy

        install_proxy_counter()
        self.proxy = FaultProxy((HOST, port))
        self.proxy.bench_counts = {"head": 0, "rest": 0, "stream": 0}  # type: ignore[attr-defined]
        self.proxy.start()

    @property
    def address(self) -> str:
        return self.proxy.address

    def counts(self) -> dict[str, int]:
        return dict(self.proxy.bench_counts)  # type: ignore[attr-defined]

    def body_bytes(self) -> int:
        c = self.counts()
        return c["rest"] + c["stream"]

    def streams(self) -> int:
        return self.proxy.stream_connections()

    def quiet(self, quiet_s: float, limit_s: float) -> dict[str, int]:
        """Wait until nothing has arrived for ``quiet_s`` (at most ``limit_s``); the counts."""
        deadline = time.monotonic() + limit_s
        last, since = self.counts(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.counts()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                break
        return last

    def stop(self) -> None:
        self.proxy.stop()


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before.get(k, 0) for k in after}


def vm_rss_kb(pid: int) -> int:
    m = re.search(r"^VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(m.group(1)) if m else 0


_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_EARLIER = re.compile(r"… ([\d,]+) earlier messages")


def plain(raw: bytes) -> str:
    """A terminal's raw output without its escape sequences."""
    return _ANSI.sub("", raw.decode("utf-8", "replace"))


def earlier_said(text: str) -> int | None:
    """The K of the REPL's "… K earlier messages" line (None: no such line)."""
    found = _EARLIER.findall(text)
    return int(found[0].replace(",", "")) if found else None


def messages_shown(text: str) -> int:
    """How many messages the output shows: distinct first words of questions and replies."""
    return len(set(_MARKER.findall(text)))


# -- a member's REPL in a pseudo-terminal ------------------------------------------------


class Chat:
    """``emdash-fb chat --join CODE`` in a pty, its database traffic through a CountingProxy."""

    def __init__(self, hist: History, workdir: Path, profile: str, name: str) -> None:
        from tests.support.terminal import Terminal

        self.proxy = CountingProxy(hist.emu.port)
        env = {
            **hist.env,
            "FIREBASE_DATABASE_EMULATOR_HOST": self.proxy.address,
            "TERM": "xterm-256color",
            "XDG_CONFIG_HOME": str(workdir / "chat-config"),
        }
        self.max_streams = 0
        self.t0 = time.monotonic()
        argv = [*EXE, "--profile", profile, "chat", "--join", hist.invite, "--name", name]
        self.term = Terminal(argv, env, cols=120, rows=40)
        self.pid: int = self.term.child.pid

    def cpu(self) -> float:
        return process_cpu_seconds(self.pid)

    def wait_for(self, ok: Callable[[str], bool], timeout: float, what: str) -> float:
        """Poll the screen every 20 ms until ``ok(screen)``; seconds waited. Samples streams."""
        start = time.monotonic()
        deadline = start + timeout
        polls = 0
        while True:
            if ok(self.term.text()):
                return time.monotonic() - start
            if not self.term.child.isalive():
                raise RuntimeError(
                    f"the chat process exited waiting for {what}:\n{self.term.text()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{what} not on screen after {timeout:.0f} s:\n{self.term.text()}"
                )
            polls += 1
            if polls % 10 == 0:
                self.sample_streams()
            time.sleep(0.02)

    def sample_streams(self) -> int:
        n = self.proxy.streams()
        self.max_streams = max(self.max_streams, n)
        return n

    def close(self) -> None:
        import pexpect

        with contextlib.suppress(Exception):
            if self.term.child.isalive():
                self.term.key("\x04")  # Ctrl-D leaves cleanly
                self.term.child.expect(pexpect.EOF, timeout=10)
        self.term.close()
        self.proxy.stop()


def join_timeout(h: int) -> float:
    return 60.0 + 0.03 * h


def measure_join(hist: History, chat: Chat, s: Settings) -> dict[str, Any]:
    marker = hist.last_marker
    seen_s = chat.wait_for(lambda t: marker in t, join_timeout(hist.h), f"the last reply {marker}")
    at_seen = chat.proxy.counts()
    settled = chat.proxy.quiet(s.quiet_s, 30.0)
    rss_kb = vm_rss_kb(chat.pid)
    live = 0
    for _ in range(5):
        live = max(live, chat.sample_streams())
        time.sleep(0.1)
    messages = hist.message_count()
    output = plain(bytes(chat.term.raw))
    # What the REPL printed of the history: the messages whose first words it shows
    # (every question and reply starts with its marker, inside any preview's length).
    shown_n = messages_shown(output)
    earlier = earlier_said(output)
    if earlier is not None and messages - earlier != shown_n:
        log(
            f"    warning: the REPL said {earlier} earlier messages of {messages}, but showed "
            f"{shown_n} (counted from the screen's output)"
        )
    shown = hist.shown_bytes(shown_n)
    shown_total = sum(shown.values())
    received = settled["rest"] + settled["stream"]
    return {
        "messages": messages,
        "shown_messages": shown_n,
        "earlier_messages_said": earlier,
        "seconds_to_last_message": round(seen_s, 3),
        "received_bytes": received,
        "received_rest": settled["rest"],
        "received_stream": settled["stream"],
        "received_heads": settled["head"],
        "received_at_last_message": at_seen["rest"] + at_seen["stream"],
        "shown_bytes": shown_total,
        "shown": shown,
        "ratio": round(received / max(1, shown_total), 2),
        "rss_mb": round(rss_kb / 1024, 1),
        "streams_after_sync": live,
    }


def measure_cpu(hist: History, chat: Chat, s: Settings, run: int) -> dict[str, Any]:
    """200 chunks of 64 B into a running turn; the chat process's CPU per chunk."""
    from emdash_fb.runner.chunks import chunk_key

    nonce = f"{hist.h}x{run}x{os.getpid() % 1000}"
    start_word, end_word = f"cpustart{nonce}", f"cpuend{nonce}"
    i = hist.next_index()
    mid = hist.ids()
    base = f"sessions/{hist.sid}"
    uid, name = hist.author
    question = text_of(run, 120, f"{question_marker(i)} cpuquestion{nonce}")
    hist.admin.patch_root(
        {
            f"{base}/transcript/{mid}": {
                "role": "user",
                "uid": uid,
                "name": name,
                "text": question,
                "at": int(time.time() * 1000),
            },
            f"{base}/turns/{mid}": {
                "state": "running",
                "runner": RUNNER_UID,
                "fence": hist.fence,
                "startedAt": int(time.time() * 1000),
                "attempt": 1,
                "crashes": 0,
            },
        }
    )
    chat.wait_for(lambda t: f"cpuquestion{nonce}" in t, 60, "the streamed turn's question")
    chat.proxy.quiet(0.5, 10.0)
    c0, t0 = chat.cpu(), time.monotonic()
    time.sleep(s.cpu_idle_s)
    idle_ms_per_s = 1000 * (chat.cpu() - c0) / (time.monotonic() - t0)
    b0, cpu0, t0 = chat.proxy.counts(), chat.cpu(), time.monotonic()
    n = s.cpu_chunks
    for seq in range(n):
        due = t0 + seq * s.cpu_chunk_interval_s
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        if seq == 0:
            text = text_of(seq, s.cpu_chunk_bytes - 1, f"{reply_marker(i)} {start_word}") + " "
        elif seq == n - 1:
            text = (text_of(seq, s.cpu_chunk_bytes - len(end_word) - 1) + " " + end_word)[
                -s.cpu_chunk_bytes :
            ]
        else:
            text = text_of(seq, s.cpu_chunk_bytes - 1) + " "
        hist.admin.request("PATCH", f"{base}/turns/{mid}/chunks", {chunk_key(seq): text})
        if seq % 20 == 0:
            chat.sample_streams()
    write_s = time.monotonic() - t0
    chat.wait_for(lambda t: end_word in t, 60 + 0.5 * n, "the last streamed chunk")
    cpu1, t1 = chat.cpu(), time.monotonic()
    got = delta(chat.proxy.counts(), b0)
    # finish the turn as the runner does, so the session is quiet again
    hist.admin.patch_root(
        {
            f"{base}/turns/{mid}/state": "done",
            f"{base}/turns/{mid}/endedAt": int(time.time() * 1000),
            f"{base}/transcript/{mid}~a": {
                "role": "assistant",
                "uid": RUNNER_UID,
                "name": "echo",
                "at": int(time.time() * 1000),
                "replyTo": mid,
            },
        }
    )
    # the reply lands in the scrollback (in full) and the streaming preview row goes
    chat.wait_for(lambda t: end_word in t and "▸" not in t, 60, "the finished streamed reply")
    cpu = cpu1 - cpu0
    return {
        "chunks": n,
        "chunk_bytes": s.cpu_chunk_bytes,
        "cpu_s": round(cpu, 3),
        "cpu_ms_per_chunk": round(1000 * cpu / n, 3),
        "idle_cpu_ms_per_s": round(idle_ms_per_s, 2),
        "wall_s": round(t1 - t0, 2),
        "writer_s": round(write_s, 2),
        "received_bytes_per_chunk": round((got["rest"] + got["stream"]) / n, 1),
    }


def measure_reconnect(hist: History, chat: Chat, s: Settings, run: int) -> dict[str, Any]:
    """A 10 s outage (every connection reset, new ones refused) while 5 messages are answered."""
    chat.proxy.quiet(s.quiet_s, 15.0)
    b0 = chat.proxy.counts()
    proxy = chat.proxy.proxy
    proxy.refuse(True)
    cut = proxy.reset_all()
    t_cut = time.monotonic()
    mids, markers = [], []
    for k in range(s.outage_messages):
        due = t_cut + 1.0 + k * (s.outage_s - 2.0) / max(1, s.outage_messages)
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        mids.append(hist.answer_now(f"back{hist.h}x{run}x{k}"))
        markers.append(hist.last_marker)
    if (wait := t_cut + s.outage_s - time.monotonic()) > 0:
        time.sleep(wait)
    during = delta(chat.proxy.counts(), b0)
    proxy.refuse(False)
    t_back = time.monotonic()
    last = markers[-1]
    seen_s = chat.wait_for(lambda t: last in t, join_timeout(hist.h), f"the last new reply {last}")
    settled = chat.proxy.quiet(s.quiet_s, 30.0)
    for _ in range(5):
        chat.sample_streams()
        time.sleep(0.1)
    got = delta(settled, b0)
    received = got["rest"] + got["stream"]
    changed = hist.changed_bytes(mids)
    return {
        "connections_cut": cut,
        "outage_s": round(t_back - t_cut, 2),
        "new_messages": len(mids),
        "received_during_outage": during["rest"] + during["stream"],
        "received_bytes": received,
        "received_rest": got["rest"],
        "received_stream": got["stream"],
        "received_heads": got["head"],
        "changed_bytes": changed,
        "ratio": round(received / max(1, changed), 2),
        "allowed_bytes": int(GOAL_RECONNECT_RATIO * changed + GOAL_RECONNECT_SLACK),
        "seconds_to_last_message": round(seen_s, 2),
    }


def run_chat(hist: History, workdir: Path, s: Settings, run: int, only: set[str]) -> dict[str, Any]:
    chat = Chat(hist, workdir, f"member{hist.h}r{run}", f"bench{run}")
    log(f"  run {run + 1}/{s.runs}: chat pid {chat.pid}, proxy {chat.proxy.address}")
    try:
        out: dict[str, Any] = {"join": measure_join(hist, chat, s)}
        j = out["join"]
        log(
            f"    join: last message on screen after {j['seconds_to_last_message']:.2f} s; "
            f"received {j['received_bytes'] / 1e6:.2f} MB for {j['shown_bytes'] / 1e3:.1f} KB "
            f"shown ({j['shown_messages']} messages; {j['ratio']}x); RSS {j['rss_mb']} MB; "
            f"{j['streams_after_sync']} stream(s)"
        )
        if "cpu" in only:
            c = out["cpu"] = measure_cpu(hist, chat, s, run)
            log(
                f"    cpu: {c['cpu_ms_per_chunk']:.2f} ms per chunk ({c['cpu_s']} s for "
                f"{c['chunks']} chunks in {c['wall_s']} s; idle {c['idle_cpu_ms_per_s']} ms/s)"
            )
        if "reconnect" in only:
            r = out["reconnect"] = measure_reconnect(hist, chat, s, run)
            log(
                f"    reconnect: received {r['received_bytes'] / 1e6:.3f} MB for "
                f"{r['changed_bytes'] / 1e3:.1f} KB changed ({r['ratio']}x), last new message "
                f"on screen {r['seconds_to_last_message']} s after the outage"
            )
        out["max_streams"] = chat.max_streams
        return out
    finally:
        chat.close()


# -- the runner ------------------------------------------------------------------------


def wait_reply(hist: History, mid: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while hist.admin.get(f"sessions/{hist.sid}/transcript/{mid}~a") is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no reply to {mid} after {timeout:.0f} s")
        time.sleep(0.05)


def measure_runner(hist: History, workdir: Path, s: Settings) -> dict[str, Any]:
    """Bytes a real runner process receives from the database per turn (its own proxy)."""
    proxy = CountingProxy(hist.emu.port)
    env = runner_env(hist.emu, workdir)
    env["FIREBASE_DATABASE_EMULATOR_HOST"] = proxy.address
    runner = RunnerProcess(env, workdir, f"bytes{hist.h}", "--agent-opt", "rate=0")
    turns = []
    try:
        runner.wait_ready()
        log(f"  runner bytes: runner pid {runner.pid}, proxy {proxy.address}")
        for t in range(1 + s.runs):  # one warm-up turn
            proxy.quiet(0.5, 15.0)
            b0, t0 = proxy.counts(), time.monotonic()
            mid = hist.owner.sessions.send(hist.sid, f"runner turn {t}: {text_of(t, 80)}").message
            wait_reply(hist, mid, join_timeout(hist.h))
            seconds = time.monotonic() - t0
            got = delta(proxy.quiet(0.5, 15.0), b0)
            if t == 0:
                continue
            turns.append(
                {
                    "received_bytes": got["rest"] + got["stream"],
                    "received_rest": got["rest"],
                    "received_stream": got["stream"],
                    "received_heads": got["head"],
                    "send_to_reply_s": round(seconds, 2),
                }
            )
            log(
                f"    turn {t}: {turns[-1]['received_bytes'] / 1e3:.1f} KB received "
                f"(REST {got['rest'] / 1e3:.1f} KB, streams {got['stream'] / 1e3:.1f} KB), "
                f"reply stored {seconds:.2f} s after the send"
            )
    finally:
        runner.stop()
        proxy.stop()
    return {
        "turns": turns,
        "median_received_bytes": median([t["received_bytes"] for t in turns]),
        "median_send_to_reply_s": median([t["send_to_reply_s"] for t in turns]),
    }


def measure_latency(hist: History, workdir: Path, s: Settings) -> dict[str, Any]:
    """Send -> the first ReplyDelta at another member's SessionView; echo rate=0."""
    host = MemberProcess()
    runner: RunnerProcess | None = None
    try:
        spec = {
            "profile": f"watcher{hist.h}",
            "name": "watcher",
            "sign_in": True,
            "invite": hist.invite,
        }
        t0 = time.monotonic()
        setup_members([host], hist.env, hist.sid, [spec], timeout=join_timeout(hist.h))
        view_sync_s = time.monotonic() - t0
        runner = RunnerProcess(
            runner_env(hist.emu, workdir), workdir, f"lat{hist.h}", "--agent-opt", "rate=0"
        )
        runner.wait_ready()
        log(
            f"  first reply chunk: member pid {host.pid} (view synced in {view_sync_s:.1f} s), "
            f"runner pid {runner.pid}"
        )
        first, started = [], []
        incomplete = 0
        budget = time.monotonic() + s.latency_budget_s
        for i in range(2 + s.latency_samples):  # two warm-up turns
            if i >= 2 and time.monotonic() > budget:
                break
            t_send = now_ns()
            mid = hist.owner.sessions.send(hist.sid, f"q{i} {text_of(i, 60)}").message
            timeout = join_timeout(hist.h)
            got = host.call("collect", timeout + 10, kind="reply", note=mid, timeout=timeout)
            records = got["records"][0]
            t_delta = next((r[2] for r in records if r[0] == "delta" and r[1] == mid), None)
            t_start = next((r[2] for r in records if r[0] == "start" and r[1] == mid), None)
            if i < 2:
                continue
            if t_delta is None or t_start is None:
                incomplete += 1
                continue
            first.append((t_delta - t_send) / 1e6)
            started.append((t_start - t_send) / 1e6)
            time.sleep(0.05)
    finally:
        if runner is not None:
            runner.stop()
        host.stop()
    first.sort()
    return {
        "samples": len(first),
        "incomplete": incomplete,
        "view_sync_s": round(view_sync_s, 2),
        "p50_ms": round(percentile(first, 50), 1),
        "p95_ms": round(percentile(first, 95), 1),
        "max_ms": round(first[-1], 1) if first else float("nan"),
        "turn_started_p50_ms": round(percentile(sorted(started), 50), 1),
    }


# -- one history size --------------------------------------------------------------------


def summarize_chats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the chat runs (join, cpu, reconnect), and the most streams seen."""
    out: dict[str, Any] = {"runs": runs}
    joins = [r["join"] for r in runs if "join" in r]
    if joins:
        out["join"] = {
            k: median([j[k] for j in joins])
            for k in (
                "received_bytes",
                "shown_bytes",
                "ratio",
                "seconds_to_last_message",
                "rss_mb",
                "messages",
                "shown_messages",
            )
        }
    cpus = [r["cpu"] for r in runs if "cpu" in r]
    if cpus:
        out["cpu"] = {
            k: median([c[k] for c in cpus])
            for k in ("cpu_ms_per_chunk", "idle_cpu_ms_per_s", "received_bytes_per_chunk")
        }
    recs = [r["reconnect"] for r in runs if "reconnect" in r]
    if recs:
        out["reconnect"] = {
            k: median([r[k] for r in recs])
            for k in ("received_bytes", "changed_bytes", "ratio", "seconds_to_last_message")
        }
        out["reconnect"]["allowed_bytes"] = int(
            GOAL_RECONNECT_RATIO * out["reconnect"]["changed_bytes"] + GOAL_RECONNECT_SLACK
        )
    if runs:
        out["max_streams"] = max(r.get("max_streams", 0) for r in runs)
    return out


def run_history(h: int, workdir: Path, s: Settings, only: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"h": h}
    folder = workdir / f"h{h}"
    folder.mkdir()
    with EmulatorProcess(folder, script=SESSION_BENCH) as emu:
        env = user_env(emu, folder / "config")
        hist = History(emu, env, h, s)
        try:
            out["build"] = hist.build()
            b = out["build"]
            log(
                f"H={h:,}: emulator pid {emu.pid}; history written in {b['seconds']} s "
                f"({b['write_mb']} MB of writes, session {b['session_mb']} MB)"
            )
            if only & {"join", "cpu", "reconnect"}:
                runs = [run_chat(hist, folder, s, run, only) for run in range(s.runs)]
                out.update(summarize_chats(runs))
            if "runner" in only:
                out["runner"] = measure_runner(hist, folder, s)
            if "latency" in only:
                out["latency"] = measure_latency(hist, folder, s)
                lat = out["latency"]
                log(
                    f"  first reply chunk: p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms "
                    f"({lat['samples']} samples; TurnStarted p50 {lat['turn_started_p50_ms']} ms)"
                )
            out["session_mb_at_end"] = round(hist.admin.size(f"sessions/{hist.sid}") / 1e6, 2)
        finally:
            hist.close()
    return out


# -- judging and reporting (pure: tests/bench/test_history_judge.py) -------------------------


def by_h(report: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {int(x["h"]): x for x in report.get("histories", [])}


def _ratio_goal(
    rows: dict[int, dict[str, Any]],
    section: str,
    key: str,
    big: int,
    small: int,
    goal: float,
    name: str,
) -> dict[str, Any] | None:
    """``key`` at H=``big`` over H=``small``. When either was not measured, the largest over
    the smallest H measured instead, named as such (an indication: the goal is at ``big``);
    None with fewer than two H measured."""
    have = sorted(h for h, x in rows.items() if x.get(section, {}).get(key) is not None)
    if len(have) < 2:
        return None
    top = big if big in have else have[-1]
    base = small if small in have and small < top else have[0]
    a, b = rows[top][section][key], rows[base][section][key]
    value = round(a / b, 2) if b else float("inf")
    label = f"{name}, H={top:,} vs H={base:,}"
    if (top, base) != (big, small):
        label += f" (the goal is for H={big:,} vs H={small:,}: indicative only)"
    return {"name": label, "goal": f"<= {goal:g}x", "value": value, "pass": value <= goal}


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = by_h(report)
    out: list[dict[str, Any]] = []
    for h, x in sorted(rows.items()):
        if "join" in x:
            j = x["join"]
            out.append(
                {
                    "name": f"join: bytes downloaded / bytes shown, H={h:,} "
                    f"({j['received_bytes'] / 1e6:.2f} MB for {j['shown_bytes'] / 1e3:.0f} KB)",
                    "goal": f"<= {GOAL_JOIN_RATIO:g}x",
                    "value": round(j["ratio"], 2),
                    "pass": j["ratio"] <= GOAL_JOIN_RATIO,
                }
            )
    name = "join: time to the last message on screen"
    g = _ratio_goal(rows, "join", "seconds_to_last_message", 10000, 100, GOAL_JOIN_TIME_RATIO, name)
    if g:
        out.append(g)
    for h, x in sorted(rows.items()):
        if "reconnect" in x:
            r = x["reconnect"]
            out.append(
                {
                    "name": f"reconnect after a {report['settings']['outage_s']:g} s outage: bytes "
                    f"downloaded, H={h:,} (changed: {r['changed_bytes'] / 1e3:.1f} KB)",
                    "goal": f"<= 2x changed + 16 KB = {r['allowed_bytes'] / 1e3:.1f} KB",
                    "value": f"{r['received_bytes'] / 1e3:.1f} KB",
                    "pass": r["received_bytes"] <= r["allowed_bytes"],
                }
            )
    for h, x in sorted(rows.items()):
        if "cpu" in x:
            v = x["cpu"]["cpu_ms_per_chunk"]
            out.append(
                {
                    "name": f"REPL CPU per reply chunk event, ms, H={h:,}",
                    "goal": f"<= {GOAL_CPU_MS_PER_CHUNK:g}",
                    "value": v,
                    "pass": v <= GOAL_CPU_MS_PER_CHUNK,
                }
            )
    g = _ratio_goal(
        rows, "join", "rss_mb", 10000, 100, GOAL_RSS_RATIO, "REPL memory: VmRSS after sync"
    )
    if g:
        out.append(g)
    name = "runner: bytes read per turn"
    g = _ratio_goal(rows, "runner", "median_received_bytes", 10000, 1000, GOAL_RUNNER_RATIO, name)
    if g:
        out.append(g)
    for h, x in sorted(rows.items()):
        if "max_streams" in x:
            out.append(
                {
                    "name": f"event streams per member while the chat is live, H={h:,}",
                    "goal": f"<= {GOAL_STREAMS}",
                    "value": x["max_streams"],
                    "pass": x["max_streams"] <= GOAL_STREAMS,
                }
            )
    for h, x in sorted(rows.items()):
        if "latency" in x:
            v = x["latency"]["p95_ms"]
            ok = x["latency"]["samples"] > 0 and v <= GOAL_FIRST_P95_MS
            out.append(
                {
                    "name": f"message -> first reply chunk at another member, p95 ms, H={h:,}",
                    "goal": f"<= {GOAL_FIRST_P95_MS:g}",
                    "value": v,
                    "pass": ok,
                }
            )
    return out


def _fmt(value: Any, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "nan"
    return format(value, spec)


def _size(n: Any) -> str:
    if n is None:
        return "-"
    return f"{n / 1e3:,.1f} KB" if n < 1e6 else f"{n / 1e6:,.2f} MB"


# (section, label, cell): one row of the table, shown when some H has ``section``
Cell = Callable[[dict[str, Any]], str]
TABLE: tuple[tuple[str, str, Cell], ...] = (
    ("build", "session size (its REST body)", lambda x: _size(x["build"]["session_bytes"])),
    (
        "join",
        "join: bytes downloaded (REST + stream bodies)",
        lambda x: _size(x["join"]["received_bytes"]),
    ),
    (
        "join",
        "join: bytes of what it shows",
        lambda x: f"{_size(x['join']['shown_bytes'])} ({x['join']['shown_messages']:.0f} msgs)",
    ),
    ("join", "join: downloaded / shown (goal <= 2x)", lambda x: f"{x['join']['ratio']:.2f}x"),
    (
        "join",
        "join: seconds to the last message on screen",
        lambda x: _fmt(x["join"]["seconds_to_last_message"], ".2f"),
    ),
    ("join", "REPL VmRSS after sync, MB", lambda x: _fmt(x["join"]["rss_mb"], ".1f")),
    (
        "max_streams",
        "event streams per member (most seen, goal <= 3)",
        lambda x: str(x["max_streams"]),
    ),
    (
        "cpu",
        "REPL CPU ms per reply chunk (goal <= 3)",
        lambda x: _fmt(x["cpu"]["cpu_ms_per_chunk"], ".2f"),
    ),
    (
        "cpu",
        "  (idle CPU just before, ms per s)",
        lambda x: _fmt(x["cpu"]["idle_cpu_ms_per_s"], ".1f"),
    ),
    (
        "reconnect",
        "reconnect: bytes downloaded",
        lambda x: _size(x["reconnect"]["received_bytes"]),
    ),
    (
        "reconnect",
        "reconnect: bytes changed (5 answered messages)",
        lambda x: _size(x["reconnect"]["changed_bytes"]),
    ),
    (
        "reconnect",
        "reconnect: goal (2x changed + 16 KB)",
        lambda x: _size(x["reconnect"]["allowed_bytes"]),
    ),
    (
        "reconnect",
        "reconnect: seconds to the last new message",
        lambda x: _fmt(x["reconnect"]["seconds_to_last_message"], ".2f"),
    ),
    (
        "runner",
        "runner: bytes read per turn",
        lambda x: _size(x["runner"]["median_received_bytes"]),
    ),
    (
        "runner",
        "runner: send -> reply stored, s",
        lambda x: _fmt(x["runner"]["median_send_to_reply_s"], ".2f"),
    ),
    (
        "latency",
        "first reply chunk at a member, p50 / p95 ms",
        lambda x: f"{_fmt(x['latency']['p50_ms'], '.0f')} / {_fmt(x['latency']['p95_ms'], '.0f')}",
    ),
)


def table_rows(report: dict[str, Any]) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The table: one row per figure, one column per H measured ("-" where not measured)."""
    rows = by_h(report)
    hs = sorted(rows)
    header = ("measure", *(f"H={h:,}" for h in hs))
    out = []
    for section, label, cell in TABLE:
        if any(section in rows[h] for h in hs):
            out.append((label, *(cell(rows[h]) if section in rows[h] else "-" for h in hs)))
    return header, out


def print_table(report: dict[str, Any]) -> None:
    header, rows = table_rows(report)
    print_rows(rows, header)
    print_goals(report["goals"])


def layout_text(nproc: int | None) -> str:
    return (
        "emulator: a subprocess per history size running EmulatorServer with the real rules "
        "file and the Auth emulator (free ports); history: admin multi-path PATCHes from this "
        "process, straight to the emulator; member REPLs: `emdash-fb chat --join CODE` in a "
        "pseudo-terminal (pexpect + pyte), its database connections through a counting TCP "
        "proxy (tests/support/faultproxy.py, a thread of this process); runner: `emdash-fb "
        "runner` (echo rate=0, default settings), through its own counting proxy for bytes, "
        "direct for latency; latency member: a spawned process holding a SessionView (direct); "
        f"sender: this process (the owner, SessionClient.send); all share {nproc} CPUs"
    )


def main(argv: list[str] | None = None) -> int:
    p = bench_parser(__doc__.split("\n\n")[0] if __doc__ else None, SECTIONS, DEFAULT_OUT)
    p.add_argument(
        "--history",
        type=int,
        action="append",
        help="answered messages in the session (repeatable; default 100, 1000, 10000)",
    )
    args = p.parse_args(argv)
    s, only, out_path = plan(args, Settings, SECTIONS, DEFAULT_OUT, narrowed=bool(args.history))
    if args.history:
        s.histories = tuple(sorted({max(1, min(50_000, h)) for h in args.history}))
    report, meter = start_report("emdash-fb history", args.quick, s, layout_text(os.cpu_count()))
    report["sections"] = sorted(only)
    started = time.monotonic()
    report["histories"] = []
    with tempfile.TemporaryDirectory(prefix="emdash-history-bench-") as tmp:
        for h in s.histories:
            t = time.monotonic()
            report["histories"].append(run_history(h, Path(tmp), s, only))
            log(f"(H={h:,}: {time.monotonic() - t:.1f} s)")
    report["methods"] = {
        "bytes": "response bytes a FaultProxy (tests/support/faultproxy.py) forwards to the "
        "process from the emulator's database port: REST bodies and event-stream bodies "
        "(chunked framing included); response heads are counted apart (received_heads)",
        "shown": "emulator REST bodies: transcript orderBy $key limitToLast N (N = messages "
        "minus the REPL's 'earlier messages' count), turns/<mid>/chunks of the replies among "
        "them, members, meta, queue",
        "time": "time.monotonic() before spawning the chat process until the last message's "
        "text is on the pyte-rendered screen (polled every 20 ms)",
        "cpu": "utime + stime from /proc/<pid>/stat of the chat process, from before the first "
        "chunk write until the last chunk's text is on screen, / chunks",
        "memory": "VmRSS from /proc/<pid>/status once the join's bytes have settled",
        "streams": "FaultProxy.stream_connections() (connections whose current response is "
        "text/event-stream), sampled while the chat is live",
        "latency": "CLOCK_MONOTONIC before SessionClient.send() until the member's SessionView "
        "on_event for the reply's first ReplyDelta (member process)",
    }
    passed = finish_report(report, meter, started, goals, print_table, out_path)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    run_main(main)
