"""Benchmark the bundled RTDB emulator: write rate, write-to-listener latency, stream memory.

Three measurements, each against the emulator server that ``emdash-fb emulators
start`` runs, in its own process (never in this one), reached only over 127.0.0.1:

1. **writes/s** - closed-loop PUTs of a ~50-byte JSON value to distinct children
   of one location while 10 SSE listeners stream that location, for 1 and 4
   writer connections (HTTP/1.1 keep-alive, one thread per connection).
2. **latency** - writes paced at 100/s, each carrying its send time; listeners
   note the arrival time of every event; latency = arrival - send over all
   listeners, for 1, 10 and 100 listeners (p50 / p99 / max).
3. **memory** - the emulator's VmRSS before and after opening 1,000 idle SSE
   streams, per stream (a fresh emulator for every run).

Process layout: the emulator is a subprocess; all SSE listeners live in one
spawned worker process (raw non-blocking sockets in a selector loop, so the
client is cheap and does not share a GIL with the server); the writers run in
this process. All share the machine's CPUs, which the report states.

Every run is repeated (3 times by default) and medians are quoted. The table
is printed, and a full run writes ``benchmarks/results/emulator.json``.

    .venv/bin/python benchmarks/emulator_bench.py            # full, ~2 min
    .venv/bin/python benchmarks/emulator_bench.py --quick    # smoke, ~30 s
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import multiprocessing.connection as mpc
import os
import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import (
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

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "benchmarks" / "results" / "emulator.json"
HOST = "127.0.0.1"
VALUE_BYTES = 50  # size of each written JSON value
END_KEY = "zz_end"  # the child written last: tells listeners a run is over
STARTUP_TIMEOUT = 30.0
IO_TIMEOUT = 10.0

GOAL_WRITES_PER_S = 1000.0
GOAL_P99_MS = 20.0
GOAL_KB_PER_STREAM = 50.0


def now_ns() -> int:
    """A clock shared by every process on the machine (CLOCK_MONOTONIC)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def value_body(seq: int) -> bytes:
    """A ~50-byte JSON value carrying its send time ``t`` (ns) and sequence number."""
    head = f'{{"t":{now_ns()},"s":{seq},"p":"'
    pad = max(1, VALUE_BYTES - len(head) - 2)
    return (head + "x" * pad + '"}').encode()


@dataclass
class Settings:
    runs: int = 3
    write_seconds: float = 3.0
    write_warmup: float = 0.5
    write_connections: tuple[int, ...] = (1, 4)
    write_listeners: int = 10
    latency_listeners: tuple[int, ...] = (1, 10, 100)
    latency_rate: float = 100.0
    latency_seconds: float = 5.0
    idle_streams: int = 1000

    @classmethod
    def quick(cls) -> Settings:
        return cls(runs=1, write_seconds=1.5, latency_seconds=2.0)


# -- the emulator subprocess --------------------------------------------------


def serve_emulator(config_path: str) -> None:
    """The emulator process: what ``emdash-fb emulators start --only database`` runs.

    The same ``EmulatorConfig.from_file`` + ``EmulatorServer`` on an asyncio
    loop until SIGTERM, without importing the rest of the CLI, so the bench
    measures the emulator only. Prints the standard host variable when ready.
    """
    import asyncio

    from emdash_fb.emulator.config import EmulatorConfig
    from emdash_fb.emulator.server import EmulatorServer

    async def serve() -> None:
        server = EmulatorServer(EmulatorConfig.from_file(config_path, only=("database",)))
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"FIREBASE_DATABASE_EMULATOR_HOST={server.database_host}", flush=True)
        await stop.wait()
        await server.stop()

    asyncio.run(serve())


class ChildServer:
    """A server in its own process (own session, so Ctrl-C reaches only us).

    ``spawn`` starts it and reads its stdout until ``ready`` matches;
    ``stop`` asks it to finish with SIGTERM, then kills it. Subclasses say
    how to start their server and what its ready line looks like.
    """

    def __init__(self, workdir: Path, log_name: str = "emulator.log") -> None:
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / log_name

    def spawn(self, args: list[str], ready: re.Pattern[bytes]) -> re.Match[bytes]:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                args,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                start_new_session=True,  # Ctrl-C reaches us; we stop it ourselves
            )
        assert self.proc.stdout is not None
        out = b""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while (m := ready.search(out)) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"server did not start: {self.log_tail()}")
                if sel.select(min(remaining, 0.5)):
                    chunk = os.read(self.proc.stdout.fileno(), 4096)
                    if not chunk:
                        raise RuntimeError(f"server exited at start: {self.log_tail()}")
                    out += chunk
        return m

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:] or "(empty log)"
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # stops cleanly on SIGTERM
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmulatorProcess(ChildServer):
    """The emulator (database only, allow-all rules, free port) in its own process."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.port = 0

    def start(self) -> EmulatorProcess:
        config = self.workdir / "firebase.json"
        config.write_text(json.dumps({"emulators": {"database": {"host": HOST, "port": 0}}}))
        m = self.spawn(
            [sys.executable, str(Path(__file__).resolve()), "--serve-emulator", str(config)],
            re.compile(rb"FIREBASE_DATABASE_EMULATOR_HOST=[\d.]+:(\d+)"),
        )
        self.port = int(m.group(1))
        return self

    def rss_kb(self) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if m is None:
            raise RuntimeError("no VmRSS for the emulator process")
        return int(m.group(1))

    def __enter__(self) -> EmulatorProcess:
        return self.start()


# -- a minimal keep-alive HTTP/1.1 client (writers) ---------------------------


class HttpConnection:
    """One keep-alive connection; just enough HTTP/1.1 for the emulator's replies."""

    def __init__(self, port: int) -> None:
        self.host = f"{HOST}:{port}"
        self.sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill()
        header, self.buf = self.buf[:end], self.buf[end + 4 :]
        lines = header.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                raise RuntimeError("chunked replies are not expected from the emulator")
        while len(self.buf) < length:
            self._fill()
        reply, self.buf = self.buf[:length], self.buf[length:]
        return status, reply

    def put(self, path: str, body: bytes) -> None:
        status, reply = self.request("PUT", f"/{path}.json", body)
        if status != 200:
            raise RuntimeError(f"PUT /{path} -> {status} {reply[:200]!r}")

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("emulator closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()


# -- the listener worker process ----------------------------------------------

_SEND_TIME = re.compile(rb'"t":(\d+)')


class _Stream:
    """One raw SSE connection. Counts ``put`` events; finds send times in them."""

    __slots__ = ("sock", "buf", "headers_done", "events", "ended", "closed")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.headers_done = False
        self.events = 0
        self.ended = False
        self.closed = False

    def read(self, sel: selectors.BaseSelector, latencies: list[int] | None) -> None:
        try:
            data = self.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        arrived = now_ns()
        if not data:
            self.closed = True
            sel.unregister(self.sock)
            return
        self.buf += data
        if not self.headers_done:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status_line = bytes(self.buf[: self.buf.find(b"\r\n")])
            if b" 200 " not in status_line:
                raise RuntimeError(f"stream refused: {status_line!r}")
            del self.buf[: end + 4]
            self.headers_done = True
        # Events end in a blank line; HTTP chunk-size lines sit between them.
        end = self.buf.rfind(b"\n\n")
        if end < 0:
            return
        segment = bytes(self.buf[: end + 2])
        del self.buf[: end + 2]
        self.events += segment.count(b"event: put\n")
        if latencies is not None:
            latencies.extend(arrived - int(t) for t in _SEND_TIME.findall(segment))
        if b'"zz_end"' in segment:
            self.ended = True


class _Listeners:
    """All the worker's streams and its selector; driven by commands from the parent."""

    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.streams: list[_Stream] = []

    def open(self, port: int, path: str, n: int, batch: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        request = (
            f"GET /{path}.json HTTP/1.1\r\nHost: {HOST}:{port}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
        for start in range(0, n, batch):
            pending = []
            for _ in range(min(batch, n - start)):
                sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
                sock.sendall(request)
                sock.setblocking(False)
                stream = _Stream(sock)
                self.streams.append(stream)
                pending.append(stream)
                self.sel.register(sock, selectors.EVENT_READ, stream)
            # Wait for every new stream's initial snapshot before opening more.
            while any(s.events == 0 for s in pending):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.streams)} streams opened, not all answered")
                if any(s.closed for s in pending):
                    raise RuntimeError("the emulator closed a stream while opening")
                for key, _ in self.sel.select(min(remaining, 0.5)):
                    key.data.read(self.sel, None)
        return len(self.streams)

    def drain(self, conn: mpc.Connection, timeout: float, record: bool) -> dict[str, Any]:
        """Read until every stream saw the end marker (or ``timeout``)."""
        for s in self.streams:
            s.events, s.ended = 0, False
        latencies: list[int] | None = [] if record else None
        conn.send(("started", None))
        deadline = time.monotonic() + timeout
        while not all(s.ended or s.closed for s in self.streams):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in self.sel.select(min(remaining, 0.5)):
                key.data.read(self.sel, latencies)
        return {
            "events": [s.events for s in self.streams],
            "ended": sum(s.ended for s in self.streams),
            "closed": sum(s.closed for s in self.streams),
            "latencies_ns": latencies or [],
        }

    def close(self) -> None:
        for s in self.streams:
            if not s.closed:
                self.sel.unregister(s.sock)
            s.sock.close()
        self.streams.clear()


def _listener_main(conn: mpc.Connection) -> None:
    """The worker's command loop (runs in the spawned listener process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent cleans up on Ctrl-C
    listeners = _Listeners()
    while True:
        if not conn.poll(600):
            break  # the parent is gone or stuck: don't linger
        cmd, args = conn.recv()
        try:
            if cmd == "quit":
                listeners.close()
                conn.send(("ok", None))
                return
            if cmd == "open":
                result: Any = listeners.open(**args)
            elif cmd == "drain":
                result = listeners.drain(conn, **args)
            elif cmd == "close":
                result = listeners.close()
            else:
                raise ValueError(f"unknown command {cmd}")
            conn.send(("ok", result))
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    listeners.close()


class ListenerProcess:
    """The parent's handle on the listener worker process."""

    def __init__(self) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=_listener_main, args=(child,), name="sse-listeners", daemon=True
        )
        self.proc.start()
        child.close()

    def call(self, cmd: str, wait: float, **args: Any) -> Any:
        self.conn.send((cmd, args))
        return self.reply(wait)

    def reply(self, timeout: float) -> Any:
        if not self.conn.poll(timeout):
            raise TimeoutError(f"listener process did not answer within {timeout:.0f} s")
        status, payload = self.conn.recv()
        if status == "error":
            raise RuntimeError(f"listener process: {payload}")
        return payload

    def open(self, port: int, path: str, n: int) -> None:
        opened = self.call("open", 60, port=port, path=path, n=n, batch=50, timeout=50)
        if opened != n:
            raise RuntimeError(f"opened {opened} streams, wanted {n}")

    def start_drain(self, timeout: float, record: bool) -> None:
        self.conn.send(("drain", {"timeout": timeout, "record": record}))
        self.reply(10)  # "started": the worker is in its read loop

    def close_streams(self) -> None:
        self.call("close", 30)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(("quit", {}))
            self.reply(5)
        self.proc.join(3)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(3)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(3)
        self.conn.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid


# -- measurements ---------------------------------------------------------------


def check_delivery(drained: dict[str, Any], writes: int, listeners: int) -> int:
    """How many events the listeners missed (0 when all writes reached all listeners)."""
    expected = (writes + 1) * listeners  # + the end marker
    got = sum(drained["events"])
    if drained["closed"]:
        raise RuntimeError(f"{drained['closed']} listener streams were closed by the emulator")
    return max(0, expected - got)


def measure_writes(
    emu: EmulatorProcess,
    worker: ListenerProcess,
    connections: int,
    listeners: int,
    path: str,
    settings: Settings,
) -> dict[str, Any]:
    """Closed-loop PUTs from ``connections`` threads for a fixed time."""
    if listeners:
        worker.open(emu.port, path, listeners)
    conns = [HttpConnection(emu.port) for _ in range(connections)]
    barrier = threading.Barrier(connections + 1, timeout=IO_TIMEOUT)
    window: dict[str, float] = {}
    counts = [0] * connections
    measured = [0] * connections
    rtt_sum = [0.0] * connections
    errors: list[BaseException] = []

    def run(idx: int) -> None:
        conn = conns[idx]
        i = 0
        try:
            barrier.wait()
            t_measure, t_end = window["measure"], window["end"]
            while True:
                t0 = time.monotonic()
                conn.put(f"{path}/c{idx}_{i}", value_body(i))
                t1 = time.monotonic()
                i += 1
                if t1 >= t_end:
                    break
                if t0 >= t_measure:
                    measured[idx] += 1
                    rtt_sum[idx] += t1 - t0
            counts[idx] = i
        except BaseException as exc:
            errors.append(exc)
            counts[idx] = i

    if listeners:
        worker.start_drain(settings.write_warmup + settings.write_seconds + 60, record=False)
    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(connections)]
    for t in threads:
        t.start()
    start = time.monotonic()
    window["measure"] = start + settings.write_warmup
    window["end"] = window["measure"] + settings.write_seconds
    barrier.wait()
    for t in threads:
        t.join(settings.write_warmup + settings.write_seconds + 2 * IO_TIMEOUT)
    if errors:
        raise RuntimeError(f"writer failed: {errors[0]!r}")
    conns[0].put(f"{path}/{END_KEY}", b'{"zz_end":true}')
    for c in conns:
        c.close()
    total = sum(counts)
    result: dict[str, Any] = {
        "writes_per_s": round(sum(measured) / settings.write_seconds, 1),
        "mean_response_ms": round(1000 * sum(rtt_sum) / max(1, sum(measured)), 3),
        "writes_total": total,
    }
    if listeners:
        drained = worker.reply(settings.write_seconds + 70)
        result["events_missed"] = check_delivery(drained, total, listeners)
        result["events_delivered"] = sum(drained["events"])
        worker.close_streams()
    return result


def measure_latency(
    emu: EmulatorProcess, worker: ListenerProcess, listeners: int, path: str, settings: Settings
) -> dict[str, Any]:
    """Writes paced at ``latency_rate``; latency = listener arrival - writer send."""
    worker.open(emu.port, path, listeners)
    conn = HttpConnection(emu.port)
    n = int(settings.latency_rate * settings.latency_seconds)
    interval = 1.0 / settings.latency_rate
    worker.start_drain(settings.latency_seconds + 60, record=True)
    start = time.monotonic()
    behind = 0
    for i in range(n):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -interval:
            behind += 1
        conn.put(f"{path}/w{i}", value_body(i))
    elapsed = time.monotonic() - start
    conn.put(f"{path}/{END_KEY}", b'{"zz_end":true}')
    conn.close()
    drained = worker.reply(settings.latency_seconds + 70)
    worker.close_streams()
    lat_ms = sorted(x / 1e6 for x in drained["latencies_ns"])
    return {
        "writes": n,
        "achieved_rate": round(n / elapsed, 1),
        "writes_sent_late": behind,
        "samples": len(lat_ms),
        "events_missed": check_delivery(drained, n, listeners),
        "p50_ms": round(percentile(lat_ms, 50), 3),
        "p99_ms": round(percentile(lat_ms, 99), 3),
        "max_ms": round(lat_ms[-1], 3) if lat_ms else float("nan"),
    }


def measure_memory(workdir: Path, worker: ListenerProcess, streams: int) -> dict[str, Any]:
    """RSS of a fresh emulator before and after ``streams`` idle SSE connections."""
    with EmulatorProcess(workdir) as emu:
        setup = HttpConnection(emu.port)
        setup.put("idle", b'{"hello":"world","n":1}')
        # Warm up every code path once so the baseline holds them already.
        worker.open(emu.port, "idle", 20)
        worker.close_streams()
        setup.request("GET", "/idle.json")
        time.sleep(0.5)
        before = emu.rss_kb()
        worker.open(emu.port, "idle", streams)
        time.sleep(1.0)
        after = emu.rss_kb()
        worker.close_streams()
        setup.close()
    return {
        "rss_before_kb": before,
        "rss_after_kb": after,
        "kb_per_stream": round((after - before) / streams, 2),
    }


# -- reporting -------------------------------------------------------------------


def layout_text(nproc: int | None) -> str:
    return (
        "emulator: a subprocess running EmulatorServer as `emdash-fb emulators start` does "
        "(allow-all rules, unauthenticated requests, default namespace); listeners: one spawned "
        "process, raw sockets in a selector loop; writers: this process, raw HTTP/1.1 "
        f"keep-alive, one thread per connection; all three share {nproc} CPUs"
    )


def print_table(report: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str, str]] = []
    for w in report.get("writes", []):
        runs = " ".join(f"{r['writes_per_s']:.0f}" for r in w["runs"])
        rows.append(
            (
                f"writes/s, {w['connections']} conn, {w['listeners']} listeners",
                f"{w['median_writes_per_s']:.0f}",
                runs,
                f"{w['median_response_ms']:.2f} ms/resp",
            )
        )
    for lat in report.get("latency", []):
        runs = " ".join(f"{r['p99_ms']:.1f}" for r in lat["runs"])
        rows.append(
            (
                f"latency p50/p99 ms, {lat['listeners']} listeners @{lat['rate']:.0f}/s",
                f"{lat['median_p50_ms']:.2f} / {lat['median_p99_ms']:.2f}",
                f"p99: {runs}",
                f"max {max(r['max_ms'] for r in lat['runs']):.1f} ms",
            )
        )
    mem = report.get("memory")
    if mem:
        runs = " ".join(f"{r['kb_per_stream']:.1f}" for r in mem["runs"])
        rss = mem["runs"][0]
        rows.append(
            (
                f"memory KB per idle stream ({mem['streams']} streams)",
                f"{mem['median_kb_per_stream']:.1f}",
                runs,
                f"RSS {rss['rss_before_kb'] // 1024}->{rss['rss_after_kb'] // 1024} MB",
            )
        )
    print_rows(rows, ("measure", "median", "runs", "note"))
    print_goals(report["goals"])


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if report.get("writes"):
        with_listeners = [w for w in report["writes"] if w["listeners"] >= 10]
        if with_listeners:
            best = max(with_listeners, key=lambda w: w["median_writes_per_s"])
            out.append(
                {
                    "name": f"writes/s with {best['listeners']} listeners "
                    f"(best: {best['connections']} writer connections)",
                    "goal": f">= {GOAL_WRITES_PER_S:.0f}",
                    "value": best["median_writes_per_s"],
                    "pass": best["median_writes_per_s"] >= GOAL_WRITES_PER_S,
                }
            )
    for lat in report.get("latency", []):
        if lat["listeners"] == 100:
            out.append(
                {
                    "name": f"write->listener p99 ms, 100 listeners @{lat['rate']:.0f} writes/s",
                    "goal": f"<= {GOAL_P99_MS:.0f}",
                    "value": lat["median_p99_ms"],
                    "pass": lat["median_p99_ms"] <= GOAL_P99_MS,
                }
            )
    mem = report.get("memory")
    if mem:
        out.append(
            {
                "name": f"KB per idle stream ({mem['streams']} streams)",
                "goal": f"< {GOAL_KB_PER_STREAM:.0f}",
                "value": mem["median_kb_per_stream"],
                "pass": mem["median_kb_per_stream"] < GOAL_KB_PER_STREAM,
            }
        )
    return out


# -- driver ------------------------------------------------------------------------


def raise_fd_limit(wanted: int) -> None:
    """1,000 streams need 1,000 descriptors on each side; children inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def run_writes(workdir: Path, worker: ListenerProcess, s: Settings) -> list[dict[str, Any]]:
    out = []
    with EmulatorProcess(workdir) as emu:
        log(f"writes: emulator pid {emu.pid}, listener pid {worker.pid}")
        for conns in s.write_connections:
            runs = []
            for run in range(s.runs):
                path = f"bench/writes/c{conns}_r{run}"
                r = measure_writes(emu, worker, conns, s.write_listeners, path, s)
                log(
                    f"  {conns} conn, {s.write_listeners} listeners, run {run + 1}/{s.runs}: "
                    f"{r['writes_per_s']:.0f} writes/s, missed {r.get('events_missed', 0)}"
                )
                runs.append(r)
            out.append(
                {
                    "connections": conns,
                    "listeners": s.write_listeners,
                    "seconds": s.write_seconds,
                    "value_bytes": VALUE_BYTES,
                    "runs": runs,
                    "median_writes_per_s": median([r["writes_per_s"] for r in runs]),
                    "median_response_ms": median([r["mean_response_ms"] for r in runs]),
                }
            )
    return out


def run_latency(workdir: Path, worker: ListenerProcess, s: Settings) -> list[dict[str, Any]]:
    out = []
    with EmulatorProcess(workdir) as emu:
        log(f"latency: emulator pid {emu.pid}, listener pid {worker.pid}")
        for n in s.latency_listeners:
            runs = []
            for run in range(s.runs):
                r = measure_latency(emu, worker, n, f"bench/latency/l{n}_r{run}", s)
                log(
                    f"  {n} listeners, run {run + 1}/{s.runs}: p50 {r['p50_ms']:.2f} ms, "
                    f"p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.1f} ms, "
                    f"missed {r['events_missed']}"
                )
                runs.append(r)
            out.append(
                {
                    "listeners": n,
                    "rate": s.latency_rate,
                    "seconds": s.latency_seconds,
                    "runs": runs,
                    "median_p50_ms": median([r["p50_ms"] for r in runs]),
                    "median_p99_ms": median([r["p99_ms"] for r in runs]),
                }
            )
    return out


def run_memory(workdir: Path, worker: ListenerProcess, s: Settings) -> dict[str, Any]:
    runs = []
    for run in range(s.runs):
        r = measure_memory(workdir, worker, s.idle_streams)
        log(
            f"memory run {run + 1}/{s.runs}: RSS {r['rss_before_kb']} -> {r['rss_after_kb']} kB, "
            f"{r['kb_per_stream']:.1f} KB/stream"
        )
        runs.append(r)
    return {
        "streams": s.idle_streams,
        "runs": runs,
        "median_kb_per_stream": median([r["kb_per_stream"] for r in runs]),
    }


SECTIONS = ("writes", "latency", "memory")


def main(argv: list[str] | None = None) -> int:
    p = bench_parser(__doc__.split("\n\n")[0] if __doc__ else None, SECTIONS, DEFAULT_OUT)
    p.add_argument("--serve-emulator", metavar="CONFIG", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_emulator:
        serve_emulator(args.serve_emulator)
        return 0
    raise_fd_limit(4 * Settings().idle_streams)
    s, only, out_path = plan(args, Settings, SECTIONS, DEFAULT_OUT)
    report, meter = start_report("emdash-fb emulator", args.quick, s, layout_text(os.cpu_count()))
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="emdash-bench-")))
        worker = ListenerProcess()
        stack.callback(worker.stop)
        sections = [("writes", "writes", run_writes), ("latency", "latency", run_latency)]
        sections.append(("memory", "memory", run_memory))
        run_sections(report, only, sections, workdir, worker, s)
    passed = finish_report(report, meter, started, goals, print_table, out_path)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    run_main(main)
