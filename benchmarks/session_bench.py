"""Benchmark the session library: send-to-member latency, listener CPU per MB received.

Two measurements against the bundled emulators (RTDB with the real rules file
``rules/database.rules.json``, plus Auth), run in their own process and
reached only over 127.0.0.1:

1. **latency** - a message sent with ``SessionClient.send`` until another
   member's live ``SessionView`` reports it (its ``MessagePosted`` event), with
   2, 10 and 50 members. Each member is its own anonymous identity with its own
   ``SessionView`` (so its own event stream). The views live in spawned member
   processes (never in the emulator's); the sender is the session's owner,
   sending from this process, and the owner's view counts as one of the
   members (its own messages are not counted as samples). Sends are paced at
   10/s into a fresh session per run; each text carries its send time
   (``CLOCK_MONOTONIC``, shared by all processes), and the receiving view's
   event callback subtracts it. p50 / p99 / max over all (receiver, message)
   pairs.
2. **listener CPU per MB** - one member's ``SessionView`` alone in a process,
   receiving a few MB; CPU = ``time.process_time()`` of that process over the
   receive window, MB = SSE body bytes its stream received. Three streams:

   - *reply chunks* of 1,024 bytes (the runner's ``flush_bytes`` cap, 3 MB)
     and of 64 bytes (about one 100 ms flush of an agent writing 100
     tokens/s, 0.25 MB), written as ``PATCH turns/$mid/chunks`` (admin writes
     of the runner's shape), 100 per turn, so the view emits a ``ReplyDelta``
     per chunk;
   - *messages*: 4,000-character user messages sent by the owner with
     ``SessionClient.send`` (no runner answers them). Each send is a
     multi-path write at the root; the row compares the bytes the view
     received with the text sent, so a stream that re-sends the whole
     session for such writes shows up as a ratio growing with the session.

   Bytes are counted where the view's stream reads them: ``read_events`` in
   ``emdash_fb.firebase.sse`` is wrapped (in the member process only) so that
   every body chunk aiohttp hands over is counted (after HTTP chunked
   decoding: SSE lines, no HTTP headers). The bytes the process's aiohttp
   connections received (``ResponseHandler.data_received`` wrapped: headers
   and chunk framing included) are reported next to it as ``wire_mb``.
   (``rchar`` in ``/proc/self/io`` does not count socket ``recv`` calls.)

Every measurement is repeated (3 runs by default) and medians are quoted. The
table is printed; a full run writes ``benchmarks/results/session.json``.

    .venv/bin/python benchmarks/session_bench.py            # full, ~2.5 min
    .venv/bin/python benchmarks/session_bench.py --quick    # smoke, ~30 s

This module also holds what ``runner_bench.py`` shares: the emulator process
(optionally counting requests), the member processes and the reporting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import re
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # emulator_bench, when imported
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
    run_sections,
    start_report,
)
from emulator_bench import ChildServer, HttpConnection  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules" / "database.rules.json"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "session.json"
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0
COUNTS_PATH = "/.bench/counts"  # the request counter's own URL (runner_bench)

GOAL_P99_MS_10 = 50.0


def now_ns() -> int:
    """A clock shared by every process on the machine (CLOCK_MONOTONIC)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


# -- the emulator process -------------------------------------------------------


def serve_emulator(count_requests: bool) -> None:
    """The emulator process: RTDB with the real rules file, and Auth, on free ports.

    ``EmulatorServer`` as ``emdash-fb emulators start`` runs it with the repo's
    firebase.json (rules file, both emulators), but on ports the OS picks. With
    ``count_requests`` the RTDB handler is wrapped (in this benchmark process
    only, not in the product) to count every request by caller, method and
    place; ``GET /.bench/counts`` returns the counts.
    """
    from aiohttp import web

    from emdash_fb.emulator.config import EmulatorConfig
    from emdash_fb.emulator.server import EmulatorServer

    async def serve() -> None:
        cfg = EmulatorConfig(rules_path=RULES)
        cfg.ports = {"database": 0, "auth": 0}
        server = EmulatorServer(cfg)
        if count_requests:
            counts: dict[str, int] = {}
            handle = server.rtdb.handle

            async def counted(request: web.Request) -> web.StreamResponse:
                if request.path == COUNTS_PATH:
                    return web.json_response(counts)
                key = request_kind(request)
                counts[key] = counts.get(key, 0) + 1
                return await handle(request)

            server.rtdb.handle = counted  # type: ignore[method-assign]
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        for name, value in server.env().items():
            print(f"{name}={value}", flush=True)
        print("READY", flush=True)
        await stop.wait()
        await server.stop()

    profiled("emulator", lambda: asyncio.run(serve()))


def request_kind(request: Any) -> str:
    """``who method place`` for one RTDB request (the counter's key)."""
    override = request.query.get("auth_variable_override") or ""
    auth = request.headers.get("Authorization", "")
    if '"runner:' in override:
        who = "runner"
    elif auth.endswith(" owner") or request.query.get("auth") == "owner":
        who = "admin"
    else:
        who = "user"
    method = request.method.upper()
    if method == "GET" and "text/event-stream" in request.headers.get("Accept", ""):
        method = "STREAM"
    path = request.path.removesuffix(".json").rstrip("/")
    if not path:
        place = "root"
    elif "/chunks" in path:
        place = "chunks"
    elif "/tools" in path:
        place = "tools"
    elif path.endswith("/lock"):
        place = "lock"
    elif path.endswith("/cancelRequested"):
        place = "cancel"
    elif path.startswith("/runners"):
        place = "runners"
    elif path.startswith("/work"):
        place = "work"
    elif "/turns/" in path:
        place = "turn"
    elif "/queue" in path:
        place = "queue"
    elif re.fullmatch(r"/sessions/[^/]+", path):
        place = "session"
    else:
        place = "other"
    return f"{who} {method} {place}"


class EmulatorProcess(ChildServer):
    """The emulators (real rules + auth, free ports) in their own process."""

    def __init__(self, workdir: Path, *, count_requests: bool = False, script: Path | None = None):
        super().__init__(workdir)
        self.count_requests = count_requests
        self.script = script or Path(__file__).resolve()
        self.env: dict[str, str] = {}

    def start(self) -> EmulatorProcess:
        args = [sys.executable, str(self.script), "--serve-emulator"]
        if self.count_requests:
            args.append("--count-requests")
        m = self.spawn(args, re.compile(rb"(?s)^(.*)READY\n"))
        for line in m.group(1).decode().splitlines():
            name, sep, value = line.partition("=")
            if sep and name.startswith("FIREBASE_"):
                self.env[name] = value
        return self

    @property
    def port(self) -> int:
        return int(self.env["FIREBASE_DATABASE_EMULATOR_HOST"].rsplit(":", 1)[1])

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def counts(self) -> dict[str, int]:
        url = f"http://{self.env['FIREBASE_DATABASE_EMULATOR_HOST']}{COUNTS_PATH}"
        with urllib.request.urlopen(url, timeout=10) as reply:
            return json.loads(reply.read())

    def admin_get(self, path: str, query: str = "") -> Any:
        url = f"http://{self.env['FIREBASE_DATABASE_EMULATOR_HOST']}/{path}.json?auth=owner"
        with urllib.request.urlopen(url + (f"&{query}" if query else ""), timeout=30) as reply:
            return json.loads(reply.read())

    def __enter__(self) -> EmulatorProcess:
        return self.start()


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (from /proc/<pid>/stat)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- member processes: identities, each with its own live SessionView -----------

STREAM_BYTES = [0]  # SSE body bytes read by this process's event streams
WIRE_BYTES = [0]  # bytes aiohttp's client connections received (headers and framing too)


class _CountingContent:
    """Wraps an aiohttp body so every chunk the SSE parser reads is counted."""

    def __init__(self, content: Any) -> None:
        self.content = content

    async def iter_any(self) -> Any:
        async for chunk in self.content.iter_any():
            STREAM_BYTES[0] += len(chunk)
            yield chunk


def install_stream_counter() -> None:
    """Count the bytes of every event stream this process opens (bench process only).

    Two counts: the SSE body (``read_events`` in ``emdash_fb.firebase.sse``
    wrapped, so every chunk the parser is handed is counted, after HTTP chunked
    decoding), and the raw bytes every aiohttp client connection of the process
    receives (``ResponseHandler.data_received``: status line, headers, chunk
    framing; only the SessionView streams use aiohttp in a member process).
    """
    from aiohttp import client_proto

    from emdash_fb.firebase import sse

    original = sse.read_events

    async def counting(content: Any) -> Any:
        async for item in original(_CountingContent(content)):
            yield item

    sse.read_events = counting  # type: ignore[assignment]
    received = client_proto.ResponseHandler.data_received

    def data_received(self: Any, data: bytes) -> None:
        WIRE_BYTES[0] += len(data)
        received(self, data)

    client_proto.ResponseHandler.data_received = data_received  # type: ignore[method-assign]


def marks() -> dict[str, Any]:
    return {
        "cpu": time.process_time(),
        "bytes": STREAM_BYTES[0],
        "wire": WIRE_BYTES[0],
        "t": now_ns(),
    }


def profiled(name: str, fn: Callable[[], None]) -> None:
    """Run ``fn``, under cProfile when BENCH_PROFILE_DIR is set (stats saved there on exit)."""
    folder = os.environ.get("BENCH_PROFILE_DIR")
    if not folder:
        fn()
        return
    import cProfile

    prof = cProfile.Profile()
    try:
        prof.runcall(fn)
    finally:
        prof.dump_stats(str(Path(folder) / f"{name}-{os.getpid()}.pstats"))


# A record: (kind, key, t_ns, stream bytes so far, size, note)
#   post  : a user message; key = message id, size = len(text), note = text[:48]
#   reply : the assistant's final message; key = message id, note = reply_to
#   delta : ReplyDelta; key = mid, size = len(text), note = text if short
#   start : TurnStarted; key = mid.   ended: TurnEnded; key = mid, note = state
#   conn  : ConnectionChanged; key = status
Record = tuple[str, str, int, int, int, str]


class _Member:
    def __init__(self, app: Any, sid: str) -> None:
        from emdash_fb.session.view import SessionView

        self.app = app
        self.records: list[Record] = []
        self.synced = asyncio.Event()
        self.arrived = asyncio.Event()  # set on every record (collect waits on it)
        self.view = SessionView(app.target, app.auth, app.sessions, sid, self.on_event)
        self.task: asyncio.Task[None] | None = None

    def on_event(self, e: Any) -> None:
        from emdash_fb.session import events as ev

        t, b = now_ns(), STREAM_BYTES[0]
        if isinstance(e, ev.MessagePosted):
            m = e.message
            if m.role == "assistant":
                self.records.append(("reply", m.id, t, b, len(m.text), m.reply_to or ""))
            else:
                self.records.append(("post", m.id, t, b, len(m.text), m.text[:48]))
        elif isinstance(e, ev.ReplyDelta):
            note = e.text if len(e.text) <= 16 else ""
            self.records.append(("delta", e.mid, t, b, len(e.text), note))
        elif isinstance(e, ev.TurnStarted):
            self.records.append(("start", e.turn.mid, t, b, 0, ""))
        elif isinstance(e, ev.TurnEnded):
            self.records.append(("ended", e.turn.mid, t, b, 0, e.turn.state))
        elif isinstance(e, ev.ConnectionChanged):
            self.records.append(("conn", e.status, t, b, 0, ""))
        elif isinstance(e, ev.Synced):
            self.synced.set()
            return
        else:
            return
        self.arrived.set()


class MemberHost:
    """The members living in one worker process, on its asyncio loop."""

    def __init__(self) -> None:
        self.members: list[_Member] = []

    async def setup(
        self, env: dict[str, str], sid: str, members: list[dict[str, Any]], timeout: float
    ) -> list[str]:
        """Sign in (or load) each identity, join with the invite, open its view; wait for sync."""
        from emdash_fb.cli.context import AppContext

        def prepare(spec: dict[str, Any]) -> Any:
            app = AppContext(profile=spec["profile"], env=env)
            if spec.get("sign_in"):
                app.auth.sign_in_anonymous(spec["name"])
            if spec.get("invite"):
                app.sessions.join(spec["invite"])
            return app

        apps = await asyncio.gather(*(asyncio.to_thread(prepare, s) for s in members))
        fresh = [_Member(app, sid) for app in apps]
        for m in fresh:
            m.task = asyncio.create_task(m.view.run())
        self.members += fresh
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(m.synced.wait() for m in fresh))
        return [m.app.auth.current().uid for m in fresh]

    async def collect(self, kind: str, note: str, timeout: float) -> dict[str, Any]:
        """Wait until every member has a ``kind`` record with ``note``; hand over the records."""

        def done(m: _Member) -> bool:
            return any(r[0] == kind and r[5] == note for r in m.records)

        deadline = time.monotonic() + timeout
        for m in self.members:
            while not done(m) and (left := deadline - time.monotonic()) > 0:
                m.arrived.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await m.arrived.wait()
        out = {
            "records": [m.records for m in self.members],
            "missing_end": sum(not done(m) for m in self.members),
            "marks": marks(),
        }
        for m in self.members:
            m.records = []
        return out

    async def clear(self) -> dict[str, Any]:
        for m in self.members:
            m.records = []
        return marks()

    async def close(self) -> None:
        for m in self.members:
            m.view.stop()
        tasks = [m.task for m in self.members if m.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        self.members = []


def _member_main(conn: mpc.Connection) -> None:
    """A member worker process: runs commands from the parent on its asyncio loop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent cleans up on Ctrl-C
    install_stream_counter()
    profiled("members", lambda: asyncio.run(_member_loop(conn)))


async def _member_loop(conn: mpc.Connection) -> None:
    host = MemberHost()
    loop = asyncio.get_running_loop()
    try:
        while True:
            ready = await loop.run_in_executor(None, conn.poll, 600)
            if not ready:
                return  # the parent is gone or stuck: don't linger
            cmd, args = conn.recv()
            try:
                if cmd == "quit":
                    await host.close()
                    conn.send(("ok", None))
                    return
                if cmd == "setup":
                    result: Any = await host.setup(**args)
                elif cmd == "collect":
                    result = await host.collect(**args)
                elif cmd == "clear":
                    result = await host.clear()
                elif cmd == "marks":
                    result = marks()
                elif cmd == "close":
                    result = await host.close()
                else:
                    raise ValueError(f"unknown command {cmd}")
                conn.send(("ok", result))
            except Exception as exc:
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        await host.close()


class MemberProcess:
    """The parent's handle on one member worker process."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_member_main, args=(child,), name="members", daemon=True)
        self.proc.start()
        child.close()

    def send(self, cmd: str, **args: Any) -> None:
        self.conn.send((cmd, args))

    def reply(self, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"member process did not answer within {timeout:.0f} s")
        status, payload = self.conn.recv()
        if status == "error":
            raise RuntimeError(f"member process: {payload}")
        return payload

    def call(self, cmd: str, wait: float, **args: Any) -> Any:
        self.send(cmd, **args)
        return self.reply(wait)

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.call("quit", 15)
        self.proc.join(3)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(3)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(3)
        self.conn.close()


def setup_members(
    hosts: list[MemberProcess],
    env: dict[str, str],
    sid: str,
    specs: list[dict[str, Any]],
    timeout: float = 60.0,
) -> list[str]:
    """Spread ``specs`` over ``hosts`` round robin; every host sets its share up in parallel."""
    shares: list[list[dict[str, Any]]] = [[] for _ in hosts]
    for i, spec in enumerate(specs):
        shares[i % len(hosts)].append(spec)
    busy = []
    for host, share in zip(hosts, shares, strict=True):
        if share:
            host.send("setup", env=env, sid=sid, members=share, timeout=timeout)
            busy.append(host)
    uids: list[str] = []
    for host in busy:
        uids += host.reply(timeout + 10)
    return uids


def session_with_watcher(
    host: MemberProcess, env: dict[str, str], owner: tuple[str, str], member: tuple[str, str]
) -> tuple[Any, str]:
    """(the owner's context, session id): ``owner`` (profile, name) shares a session and
    ``member`` (profile, name) joins it in ``host``, its view watching."""
    owner_ctx = sign_in(env, *owner)
    shared = owner_ctx.sessions.share()
    profile, name = member
    spec = {"profile": profile, "name": name, "sign_in": True, "invite": shared.invite}
    setup_members([host], env, shared.session, [spec])
    return owner_ctx, shared.session


def user_env(emu: EmulatorProcess, config_dir: Path) -> dict[str, str]:
    """What ``AppContext`` needs to be a user of these emulators (and nothing of ours)."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_", "XDG_"))
    }
    return {**base, **emu.env, "XDG_CONFIG_HOME": str(config_dir)}


def sign_in(env: dict[str, str], profile: str, name: str) -> Any:
    """A signed-in user, allowed to own sessions (as `emdash-fb admin allow` does)."""
    from emdash_fb.cli.context import AppContext
    from tests.support.allow import allow_owner

    app = AppContext(profile=profile, env=env)
    allow_owner(app.target.project_id, env, app.auth.sign_in_anonymous(name).uid)
    return app


# -- measurements ---------------------------------------------------------------------


@dataclass
class Settings:
    runs: int = 3
    members: tuple[int, ...] = (2, 10, 50)
    rate: float = 10.0  # sends per second
    samples: int = 120  # sends per run
    member_procs: int = 2
    # (chunk bytes, MB in total): the runner's flush_bytes cap, and about one 100 ms
    # flush of a 100 tokens/s agent
    chunk_streams: tuple[tuple[int, float], ...] = ((1024, 3.0), (64, 0.25))
    chunks_per_turn: int = 100
    message_chars: int = 4000
    messages: int = 30

    @classmethod
    def quick(cls) -> Settings:
        return cls(runs=1, samples=40, chunk_streams=((1024, 1.0), (64, 0.1)), messages=15)


def measure_latency(
    emu: EmulatorProcess,
    hosts: list[MemberProcess],
    env: dict[str, str],
    n_members: int,
    run: int,
    s: Settings,
) -> dict[str, Any]:
    """One run: a fresh session with ``n_members``; paced sends; arrival - send at every view."""
    owner_profile = f"lat{n_members}r{run}m0"
    owner = sign_in(env, owner_profile, "owner")
    shared = owner.sessions.share(max_members=max(2, n_members))
    sid = shared.session
    specs = [{"profile": owner_profile}] + [
        {
            "profile": f"lat{n_members}r{run}m{i}",
            "name": f"m{i}",
            "sign_in": True,
            "invite": shared.invite,
        }
        for i in range(1, n_members)
    ]
    t_setup = time.monotonic()
    uids = setup_members(hosts, env, sid, specs)
    setup_s = time.monotonic() - t_setup
    owner_uid = owner.auth.current().uid
    for _ in range(3):  # warm-up sends, not counted
        owner.sessions.send(sid, "warm-up")
        time.sleep(1 / s.rate)
    time.sleep(0.3)
    for h in hosts:
        h.call("clear", 10)
    cpu0 = {h.pid: h.cpu_seconds() for h in hosts}
    emu_cpu0 = emu.cpu_seconds()
    interval = 1.0 / s.rate
    send_ms: list[float] = []
    late = 0
    start = time.monotonic()
    for seq in range(s.samples):
        delay = start + seq * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -interval:
            late += 1
        t0 = now_ns()
        owner.sessions.send(sid, f"lat {seq} {t0}")
        send_ms.append((now_ns() - t0) / 1e6)
    elapsed = time.monotonic() - start
    end_text = f"end of run {run}"
    owner.sessions.send(sid, end_text)
    for h in hosts:
        h.send("collect", kind="post", note=end_text, timeout=30)
    results = [h.reply(45) for h in hosts]
    member_cpu = sum(h.cpu_seconds() - cpu0[h.pid] for h in hosts)
    emu_cpu = emu.cpu_seconds() - emu_cpu0
    for h in hosts:
        h.call("close", 20)
    session_bytes = len(json.dumps(emu.admin_get(f"sessions/{sid}")))
    # The owner is the first spec, so it sits first on host 0.
    latencies: list[float] = []
    by_third: list[list[float]] = [[], [], []]
    seen: dict[tuple[int, int], int] = {}
    missing_end = 0
    for host_index, res in enumerate(results):
        missing_end += res["missing_end"]
        for member_index, records in enumerate(res["records"]):
            if host_index == 0 and member_index == 0:
                continue  # the sender's own view
            for kind, _key, t, _b, _size, note in records:
                if kind != "post" or not note.startswith("lat "):
                    continue
                _, seq, sent = note.split()
                latencies.append((t - int(sent)) / 1e6)
                by_third[min(2, 3 * int(seq) // s.samples)].append(latencies[-1])
                k = (host_index * 1000 + member_index, int(seq))
                seen[k] = seen.get(k, 0) + 1
    receivers = n_members - 1
    expected = receivers * s.samples
    lat = sorted(latencies)
    return {
        "members": n_members,
        "receivers": receivers,
        "sends": s.samples,
        "achieved_rate": round(s.samples / elapsed, 2),
        "sends_late": late,
        "samples": len(lat),
        "missed": expected - len(seen),
        "duplicates": sum(v - 1 for v in seen.values()),
        "missing_end": missing_end,
        "p50_ms": round(percentile(lat, 50), 2),
        "p99_ms": round(percentile(lat, 99), 2),
        "max_ms": round(lat[-1], 2) if lat else float("nan"),
        "p99_first_third_ms": round(percentile(sorted(by_third[0]), 99), 2),
        "p99_last_third_ms": round(percentile(sorted(by_third[2]), 99), 2),
        "send_call_p50_ms": round(percentile(sorted(send_ms), 50), 2),
        "member_setup_s": round(setup_s, 2),
        "member_cpu_s": round(member_cpu, 2),
        # every view handles every send (the sender's own too) and the end marker
        "member_cpu_ms_per_view_event": round(1000 * member_cpu / (n_members * (s.samples + 1)), 3),
        "emulator_cpu_s": round(emu_cpu, 2),
        "session_json_bytes_at_end": session_bytes,
        "owner_uid_in_members": owner_uid in uids,
    }


def measure_cpu_chunks(
    emu: EmulatorProcess,
    host: MemberProcess,
    env: dict[str, str],
    run: int,
    s: Settings,
    chunk_bytes: int,
    chunk_mb: float,
) -> dict[str, Any]:
    """One listener; reply chunks of ``chunk_bytes`` (admin PATCHes of the runner's shape)."""
    from emdash_fb.runner.chunks import chunk_key

    owner, sid = session_with_watcher(
        host, env, (f"cpuc{run}owner", "owner"), (f"cpuc{run}m1", "listener")
    )
    conn = HttpConnection(emu.port)
    chunk = ("lorem ipsum dolor sit amet " * (chunk_bytes // 27 + 1))[:chunk_bytes]
    total = int(chunk_mb * 1e6 // chunk_bytes)
    turns = (total + s.chunks_per_turn - 1) // s.chunks_per_turn
    base = f"/sessions/{sid}/turns"
    time.sleep(0.3)
    before = host.call("clear", 10)
    t0 = time.monotonic()
    written = 0
    for turn in range(turns):
        mid = f"-bench{run:02d}turn{turn:06d}"[:20]
        head = {
            "state": "running",
            "runner": "runner:bench",
            "fence": 1,
            "startedAt": int(time.time() * 1000),
            "attempt": 1,
        }
        status, body = conn.request(
            "PUT", f"{base}/{mid}.json?auth=owner", json.dumps(head).encode()
        )
        if status != 200:
            raise RuntimeError(f"turn write refused: {status} {body[:200]!r}")
        for seq in range(min(s.chunks_per_turn, total - written)):
            payload = json.dumps({chunk_key(seq): chunk}).encode()
            status, body = conn.request("PATCH", f"{base}/{mid}/chunks.json?auth=owner", payload)
            if status != 200:
                raise RuntimeError(f"chunk write refused: {status} {body[:200]!r}")
            written += 1
        last_mid = mid
    status, _ = conn.request(
        "PATCH",
        f"{base}/{last_mid}/chunks.json?auth=owner",
        json.dumps({"999999": "<END>"}).encode(),
    )
    write_s = time.monotonic() - t0
    got = host.call("collect", 60, kind="delta", note="<END>", timeout=45)
    conn.close()
    host.call("close", 20)
    name = f"reply chunks of {chunk_bytes} B"
    return cpu_result(name, before, got, written * chunk_bytes, written, write_s)


def measure_cpu_messages(
    emu: EmulatorProcess, host: MemberProcess, env: dict[str, str], run: int, s: Settings
) -> dict[str, Any]:
    """One listener; the owner sends ``messages`` user messages of ``message_chars``."""
    owner, sid = session_with_watcher(
        host, env, (f"cpum{run}owner", "owner"), (f"cpum{run}m1", "listener")
    )
    text = ("lorem ipsum dolor sit amet " * (s.message_chars // 27 + 1))[: s.message_chars]
    time.sleep(0.3)
    before = host.call("clear", 10)
    t0 = time.monotonic()
    for i in range(s.messages):
        owner.sessions.send(sid, f"{i:04d} {text}"[: s.message_chars])
        time.sleep(0.05)
    owner.sessions.send(sid, "<END>")
    write_s = time.monotonic() - t0
    got = host.call("collect", 60, kind="post", note="<END>", timeout=45)
    host.call("close", 20)
    name = f"messages of {s.message_chars} characters"
    return cpu_result(name, before, got, s.messages * s.message_chars, s.messages, write_s)


def cpu_result(
    kind: str,
    before: dict[str, Any],
    got: dict[str, Any],
    payload_bytes: int,
    writes: int,
    write_s: float,
) -> dict[str, Any]:
    after = got["marks"]
    records = got["records"][0]
    events = sum(r[0] in ("delta", "post") for r in records)
    # Up to the last event, not the collect reply (which adds nothing but idle time).
    last = records[-1] if records else None
    cpu = after["cpu"] - before["cpu"]
    received = after["bytes"] - before["bytes"]
    wire = after["wire"] - before["wire"]
    wall = ((last[2] if last else after["t"]) - before["t"]) / 1e9
    mb = received / 1e6
    return {
        "stream": kind,
        "writes": writes,
        "events": events,
        "missing_end": got["missing_end"],
        "payload_mb": round(payload_bytes / 1e6, 3),
        "received_mb": round(mb, 3),
        "wire_mb": round(wire / 1e6, 3),
        "received_per_payload": round(received / max(1, payload_bytes), 2),
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 2),
        "writer_s": round(write_s, 2),
        "cpu_ms_per_mb": round(1000 * cpu / mb, 1) if mb else float("nan"),
        "cpu_ms_per_payload_mb": round(1000 * cpu / (payload_bytes / 1e6), 1),
    }


# -- reporting -----------------------------------------------------------------------------


def print_table(report: dict[str, Any]) -> None:
    rows: list[tuple[str, ...]] = []
    for lat in report.get("latency", []):
        runs = " ".join(f"{r['p99_ms']:.1f}" for r in lat["runs"])
        missed = sum(r["missed"] for r in lat["runs"])
        rows.append(
            (
                f"send -> MessagePosted p50/p99 ms, {lat['members']} members",
                f"{lat['median_p50_ms']:.1f} / {lat['median_p99_ms']:.1f}",
                f"p99: {runs}",
                f"{lat['runs'][0]['samples']} samples/run, missed {missed}, "
                f"max {max(r['max_ms'] for r in lat['runs']):.0f} ms",
            )
        )
    for c in report.get("listener_cpu", []):
        runs = " ".join(f"{r['cpu_ms_per_mb']:.0f}" for r in c["runs"])
        r0 = c["runs"][0]
        rows.append(
            (
                f"listener CPU ms per MB received, {c['stream']}",
                f"{c['median_cpu_ms_per_mb']:.0f}",
                runs,
                f"{r0['received_mb']:.1f} MB received for {r0['payload_mb']:.2f} MB of text, "
                f"{r0['events']} events",
            )
        )
    print_rows(rows, ("measure", "median", "runs", "note"))
    print_goals(report["goals"])


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for lat in report.get("latency", []):
        if lat["members"] == 10:
            out.append(
                {
                    "name": "send -> visible at another member, p99 ms, 10 members @10 sends/s",
                    "goal": f"<= {GOAL_P99_MS_10:.0f}",
                    "value": lat["median_p99_ms"],
                    "pass": lat["median_p99_ms"] <= GOAL_P99_MS_10,
                }
            )
    return out


def layout_text(nproc: int | None, member_procs: int) -> str:
    return (
        "emulator: a subprocess running EmulatorServer with the real rules file and the Auth "
        "emulator (as `emdash-fb emulators start` with the repo's firebase.json, free ports); "
        f"members: {member_procs} spawned process(es), each member its own anonymous identity "
        "and SessionView (own stream) on the process's asyncio loop, members spread round robin; "
        "sender: this process (the owner, SessionClient.send); "
        f"all share {nproc} CPUs"
    )


def run_latency(workdir: Path, s: Settings) -> list[dict[str, Any]]:
    out = []
    for n in s.members:
        with contextlib.ExitStack() as stack:
            emu = stack.enter_context(EmulatorProcess(workdir))
            hosts = [MemberProcess() for _ in range(max(1, min(s.member_procs, n)))]
            for h in hosts:
                stack.callback(h.stop)
            env = user_env(emu, workdir / "config")
            log(
                f"latency, {n} members: emulator pid {emu.pid}, member pids "
                f"{[h.pid for h in hosts]}"
            )
            runs = []
            for run in range(s.runs):
                r = measure_latency(emu, hosts, env, n, run, s)
                log(
                    f"  run {run + 1}/{s.runs}: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                    f"max {r['max_ms']:.0f} ms, {r['samples']} samples, missed {r['missed']}; "
                    f"p99 first/last third {r['p99_first_third_ms']:.0f}/"
                    f"{r['p99_last_third_ms']:.0f} ms; "
                    f"CPU s: members {r['member_cpu_s']}, emulator {r['emulator_cpu_s']}"
                )
                runs.append(r)
        out.append(
            {
                "members": n,
                "rate": s.rate,
                "runs": runs,
                "median_p50_ms": median([r["p50_ms"] for r in runs]),
                "median_p99_ms": median([r["p99_ms"] for r in runs]),
            }
        )
    return out


def run_listener_cpu(workdir: Path, s: Settings) -> list[dict[str, Any]]:
    out = []
    measures: list[tuple[str, Callable[..., dict[str, Any]]]] = [
        (
            f"reply chunks of {size} B",
            functools.partial(measure_cpu_chunks, chunk_bytes=size, chunk_mb=mb),
        )
        for size, mb in s.chunk_streams
    ]
    measures.append((f"messages of {s.message_chars} characters", measure_cpu_messages))
    with contextlib.ExitStack() as stack:
        emu = stack.enter_context(EmulatorProcess(workdir))
        env = user_env(emu, workdir / "config")
        for name, fn in measures:
            runs = []
            for run in range(s.runs):
                host = MemberProcess()  # a fresh process: nothing else in its CPU time
                try:
                    r = fn(emu, host, env, run, s)
                finally:
                    host.stop()
                log(
                    f"listener CPU, {name}, run {run + 1}/{s.runs}: {r['cpu_ms_per_mb']:.0f} ms/MB "
                    f"({r['cpu_s']:.2f} s CPU for {r['received_mb']:.2f} MB in {r['events']} events, "
                    f"wire {r['wire_mb']:.2f} MB, text {r['payload_mb']:.2f} MB)"
                )
                runs.append(r)
            out.append(
                {
                    "stream": name,
                    "runs": runs,
                    "median_cpu_ms_per_mb": median([r["cpu_ms_per_mb"] for r in runs]),
                    "median_received_per_payload": median(
                        [r["received_per_payload"] for r in runs]
                    ),
                }
            )
    return out


SECTIONS = ("latency", "cpu")


def main(argv: list[str] | None = None) -> int:
    p = bench_parser(__doc__.split("\n\n")[0] if __doc__ else None, SECTIONS, DEFAULT_OUT)
    p.add_argument(
        "--members", type=int, action="append", help="member counts for latency (repeatable)"
    )
    p.add_argument("--member-procs", type=int, help="member worker processes (default 2)")
    p.add_argument("--serve-emulator", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--count-requests", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_emulator:
        serve_emulator(args.count_requests)
        return 0
    s, only, out_path = plan(args, Settings, SECTIONS, DEFAULT_OUT, narrowed=bool(args.members))
    if args.members:
        s.members = tuple(max(2, min(50, n)) for n in args.members)
    if args.member_procs is not None:
        s.member_procs = max(1, min(args.member_procs, 16))
    report, meter = start_report(
        "emdash-fb session", args.quick, s, layout_text(os.cpu_count(), s.member_procs)
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="emdash-session-bench-") as tmp:
        sections = [("latency", "latency", run_latency), ("cpu", "listener_cpu", run_listener_cpu)]
        run_sections(report, only, sections, Path(tmp), s)
    report["methods"] = {
        "latency": "t0 = CLOCK_MONOTONIC just before SessionClient.send() in the sender; "
        "t1 = CLOCK_MONOTONIC in the receiving SessionView's on_event callback for the "
        "MessagePosted event; samples over all receivers (the sender's own view excluded)",
        "listener_cpu": "time.process_time() of a process holding one SessionView, from "
        "before the first write until the end marker arrived; MB = SSE body bytes read by its "
        "stream (sse.read_events wrapped in that process); wire_mb = bytes its aiohttp "
        "connections received (aiohttp's ResponseHandler.data_received wrapped)",
    }
    passed = finish_report(report, meter, started, goals, print_table, out_path)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    run_main(main)
