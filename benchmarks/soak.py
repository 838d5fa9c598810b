"""A bounded soak under faults: what the members of busy sessions see while things break.

The issue's scene, on one machine: 6 sessions of 3 members (an owner and two
joiners), ~150 messages over two minutes, connections reset mid-request and
mid-stream, stalls and latency, runners killed with kill -9 or SIGTERM at
random, and the database restarted once; then the faults stop and the soak
waits until every message has its final reply. Everything a member does is
the real command line, as a person would run it, each through its own
fault-injecting proxy (``tests/support/faultproxy.py``):

- **emulators**: the Auth emulator as ``emdash-fb emulators start --only auth``
  (the product's command, direct: no faults), and the RTDB emulator in a child
  process of this script (``--serve-database``): ``EmulatorServer`` exactly as
  ``emdash-fb emulators start --only database`` runs it with the repo's rules,
  ``--import`` and ``--export-on-exit``, but with 1 s stream keep-alives (the
  command line can't set them; a listener declares a silent stream dead after
  2.5 keep-alive intervals, so with the default 30 s a stall would take 75 s
  to notice). The restart mid-way stops it with SIGTERM (it exports) and
  starts it again on the same port with that import.
- **members**: each one its own profile and its own proxy, through which go
  its ``emdash-fb watch --json`` (one process per member, for the whole soak)
  and its ``emdash-fb send TEXT --json`` calls (one process per message, from
  a thread pool; a member sends one message at a time). One proxy for both
  because a saved identity belongs to a database address (``Target.key``):
  a member's commands must all use the same one. The proxy's chaos resets
  streams and connections, stalls, and adds latency; before some sends it also
  arms a lost response or a request cut mid-way for that send's write.
- **runners**: ``emdash-fb runner --agent echo --agent-opt rate=40 --lease 3
  --retries 3 --id ID``, each through its own proxy (resets, stream resets,
  lost responses, a stall or two); every 15-25 s one is killed (kill -9 or
  SIGTERM, at random) and a new one, under a fresh id, starts 1-3 s later.

Every random choice (the schedule of sends, kills and send faults, each
proxy's chaos) comes from ``--seed``, so a run can be repeated; what the
processes do in response is timing, and varies a little.

The figures, from what members SAW (every watcher's JSON lines) and from the
database at the end (read once with the emulator's owner credential, only to
judge):

- **lost**: a send that exited 0 whose message is not stored (under its id,
  with its text), or a stored message with no reply after the drain;
- **duplicated**: a text stored twice, a watcher shown the same message id
  twice, or two finished replies for one message (two ``done`` turn lines in
  the runner logs, or two stored replies);
- **mismatched live texts**: after each ``reply_delta``, the text a watcher
  accumulated since that message's latest ``turn_started`` must be a prefix of
  the final reply text in the database (the turn's chunks joined, plus the
  ``[failed: ...]`` note of a failed reply: what every client shows); a
  delta of another attempt than the latest ``turn_started`` counts too; and a
  watcher's ``message`` event must carry the stored text exactly;
- **false errors**: sends that exited non-zero although their message is stored;
- **failed**: replies whose turn ended ``failed`` (with the reasons);
- **tracebacks**: "Traceback" anywhere in any process's output;
- **outages**: per watcher, each time it reported ``connection: reconnecting``
  until its next ``connection: live``, measured from the fault that caused it
  when there is one (the proxy's event, or the database restart; from the
  start of a stall or restart already holding the stream), else from the
  ``reconnecting`` line; a stall longer than the 2.5 s silence limit that
  the watcher never noticed is an outage of the stall's length (the view was
  frozen while it said live); other faults that caused no reconnect are
  counted apart (a shorter stall only delays bytes);
- **secrets in logs**: lines with ``?auth=``, ``auth_variable_override=`` or
  ``access_token=`` in any output;
- **missed**: (watcher, stored message) pairs the watcher never showed;
- **agent offline while one was up**: ``agent: offline`` events while a
  runner process was ready (its log's ready line) and not yet stopped.

    .venv/bin/python benchmarks/soak.py            # full, ~2.5 min; writes results/soak.json
    .venv/bin/python benchmarks/soak.py --quick    # smoke, ~1 min
    .venv/bin/python benchmarks/soak.py --seconds 300 --seed 7 --logs /tmp/soak-logs
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import datetime as dt
import heapq
import itertools
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchlib, emulator_bench
sys.path.insert(0, str(REPO))  # tests.support

from benchlib import (  # noqa: E402
    bench_parser,
    finish_report,
    log,
    percentile,
    plan,
    print_goals,
    print_rows,
    run_main,
    start_report,
)
from emulator_bench import ChildServer  # noqa: E402

from tests.support.faultproxy import FaultProxy  # noqa: E402

RULES = REPO / "rules" / "database.rules.json"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "soak.json"
SECTIONS = ("soak",)
HOST = "127.0.0.1"
PROJECT = "demo-soak"
CLI = [sys.executable, "-m", "emdash_fb.cli.main"]
KEEP_ALIVE_S = 1.0
SILENCE_S = 2.5 * KEEP_ALIVE_S  # the listener's limit, learned from the keep-alives
GOAL_OUTAGE_P90_S = 3.0
CLI_TIMEOUT_S = 60.0
READY_TIMEOUT_S = 60.0
EVIDENCE_CAP = 12  # items kept per kind of problem
CAUSE_SLACK_S = 1.0  # a reconnect this long after a fault was noticed was caused by it

NAMES = [
    "ada",
    "bob",
    "cyd",
    "dan",
    "eve",
    "fay",
    "gus",
    "hal",
    "ivy",
    "jon",
    "kim",
    "lea",
    "max",
    "ned",
    "ola",
    "pia",
    "rex",
    "sue",
    "tom",
    "uma",
    "vic",
    "wes",
    "xia",
    "yan",
    "zed",
]
VOCAB = [
    "parser",
    "cache",
    "index",
    "stream",
    "token",
    "queue",
    "lease",
    "chunk",
    "retry",
    "fence",
    "order",
    "commit",
    "branch",
    "merge",
    "schema",
    "table",
    "column",
    "buffer",
    "socket",
    "thread",
    "worker",
    "signal",
    "timeout",
    "backoff",
    "mirror",
    "snapshot",
    "replay",
    "cursor",
    "offset",
    "window",
    "budget",
    "review",
    "deploy",
    "rollback",
    "metric",
    "alert",
    "quota",
    "shard",
]
SECRET_URL = re.compile(r"[?&](auth|auth_variable_override|access_token)=")
READY_LINE = re.compile(r"^(\S+ \S+) runner \S+ ready \(agent ", re.M)
TURN_LINE = re.compile(
    r"turn (\S+)/(\S+) by .*?: (\w+) in [\d.]+s, (\d+) chars, (\d+) chunks, attempt (\d+)"
)
STALL_EVENT = re.compile(r"^(?:chaos )?stall (\d+(?:\.\d+)?)s")


def mono() -> float:
    return time.monotonic()


# -- settings ------------------------------------------------------------------------


@dataclass
class Settings:
    runs: int = 1
    seed: int = 1
    sessions: int = 6
    members: int = 3  # per session: the owner and two joiners
    seconds: float = 120.0  # the fault phase
    messages: int = 150
    runners: int = 3
    kill_every_s: tuple[float, float] = (15.0, 25.0)
    restart_after_s: tuple[float, float] = (1.0, 3.0)
    db_restart_at: float = 0.5  # fraction of the fault phase
    echo_rate: int = 40
    lease_s: float = 3.0
    retries: int = 3
    max_queued: int = 10  # per member (the owner's setting, share --max-queued)
    # a member's proxy (its watch and its sends)
    member_stream_resets_per_s: float = 1 / 25
    member_resets_per_s: float = 1 / 60
    member_stalls_per_s: float = 1 / 60
    member_stall_s: tuple[float, float] = (0.5, 3.5)
    member_lost_responses_per_s: float = 1 / 120
    member_latency_ms: tuple[float, float] = (15.0, 25.0)  # plus uniform jitter
    send_lose_p: float = 0.12  # before a send: its write's answer is lost
    send_cut_p: float = 0.08  # before a send: its write is cut after 50..2500 bytes
    # a runner's proxy
    runner_resets_per_s: float = 1 / 10
    runner_stream_resets_per_s: float = 1 / 30
    runner_stalls_per_s: float = 1 / 60
    runner_stall_s: tuple[float, float] = (1.0, 4.0)
    runner_lost_responses_per_s: float = 1 / 20
    runner_latency_ms: tuple[float, float] = (10.0, 20.0)
    drain_s: float = 90.0
    settle_s: float = 30.0
    send_timeout_s: float = 60.0
    send_workers: int = 4

    @classmethod
    def quick(cls) -> Settings:
        return cls(
            sessions=3,
            seconds=40.0,
            messages=50,
            runners=2,
            kill_every_s=(8.0, 14.0),
            drain_s=60.0,
            settle_s=20.0,
        )


# -- child processes -------------------------------------------------------------------


class Children:
    """Every process the soak starts, so that all of them stop on exit, Ctrl-C or SIGTERM."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: list[subprocess.Popen[Any]] = []
        self._closed = False

    def popen(self, args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("start_new_session", True)  # Ctrl-C reaches us; we stop them
        with self._lock:  # never one more after stop_all()
            if self._closed:
                raise RuntimeError("the soak is stopping: no new processes")
            proc: subprocess.Popen[Any] = subprocess.Popen(args, **kwargs)
            self._procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """SIGTERM every child still running, then SIGKILL what is left after 10 s."""
        with self._lock:
            self._closed = True
            procs = [p for p in self._procs if p.poll() is None]
        for p in procs:
            signal_group(p, signal.SIGTERM)
        deadline = mono() + 10
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, deadline - mono()))
        for p in procs:
            if p.poll() is None:
                signal_group(p, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(5)


def signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    """Signal a child's process group (each child leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class DatabaseProcess(ChildServer):
    """The RTDB emulator (real rules, 1 s keep-alives) in its own process: ``--serve-database``."""

    def __init__(self, workdir: Path, generation: int) -> None:
        super().__init__(workdir, f"database-{generation}.log")
        self.host_port = ""

    def start(self, config: Path, import_dir: Path | None, export_dir: Path) -> DatabaseProcess:
        args = [sys.executable, str(Path(__file__).resolve()), "--serve-database", str(config)]
        if import_dir is not None:
            args += ["--import", str(import_dir)]
        args += ["--export-on-exit", str(export_dir)]
        m = self.spawn(args, re.compile(rb"FIREBASE_DATABASE_EMULATOR_HOST=(\S+)\nREADY\n"))
        self.host_port = m.group(1).decode()
        return self


class AuthProcess(ChildServer):
    """``emdash-fb emulators start --only auth``: the product's command, unchanged."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, "auth.log")
        self.host_port = ""

    def start(self, config: Path) -> AuthProcess:
        args = [*CLI, "emulators", "start", "--only", "auth", "--config", str(config)]
        m = self.spawn(
            [*args, "--project", PROJECT],
            re.compile(rb"export FIREBASE_AUTH_EMULATOR_HOST=(\S+)\n"),
        )
        self.host_port = m.group(1).decode()
        return self


def serve_database(argv: list[str]) -> None:
    """The database process: ``EmulatorServer`` as ``emdash-fb emulators start --only database``
    runs it (firebase.json, rules, import, export on exit), with 1 s keep-alives."""
    import asyncio
    import logging

    from emdash_fb.emulator.config import EmulatorConfig
    from emdash_fb.emulator.rtdb_http import StreamSettings
    from emdash_fb.emulator.server import EmulatorServer

    p = argparse.ArgumentParser()
    p.add_argument("--serve-database", type=Path, required=True)
    p.add_argument("--import", dest="import_dir", type=Path)
    p.add_argument("--export-on-exit", type=Path)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    cfg = EmulatorConfig.from_file(
        args.serve_database,
        project_id=PROJECT,
        only=("database",),
        import_dir=args.import_dir,
        export_on_exit=args.export_on_exit,
    )
    server = EmulatorServer(cfg, stream_settings=StreamSettings(keep_alive_seconds=KEEP_ALIVE_S))

    async def serve() -> None:
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"FIREBASE_DATABASE_EMULATOR_HOST={server.database_host}\nREADY", flush=True)
        await stop.wait()
        await server.stop()

    asyncio.run(serve())


# -- the people and the runners ------------------------------------------------------------


@dataclass
class Member:
    session: int
    index: int  # 0 is the owner
    name: str
    profile: str
    proxy: FaultProxy
    env: dict[str, str]
    uid: str = ""
    sid: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    watcher: subprocess.Popen[Any] | None = None
    out_path: Path | None = None
    armed: int = 0  # send faults armed on this member's proxy so far

    @property
    def label(self) -> str:
        return f"s{self.session}/{self.name}"


@dataclass
class SendPlan:
    n: int
    due: float  # seconds into the fault phase
    member: int
    text: str
    fault: str | None  # "lose" | "cut" | None
    cut_after: int = 0


@dataclass
class SendRecord:
    n: int
    member: str
    session: int
    sid: str
    text: str
    due_s: float
    start_s: float = 0.0
    end_s: float = 0.0
    exit: int | None = None  # None: timed out (killed)
    message: str | None = None
    position: int | None = None
    stderr: str = ""
    fault: str | None = None  # armed for this send
    fault_fired: bool = False


@dataclass
class RunnerProc:
    slot: int
    rid: str
    proc: subprocess.Popen[Any]
    log_path: Path
    started_mono: float
    stopped_how: str = ""
    stopped_s: float | None = None
    exited_s: float | None = None
    exit_code: int | None = None


# -- the soak ------------------------------------------------------------------------------


class Soak:
    def __init__(self, s: Settings, workdir: Path) -> None:
        self.s = s
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.children = Children()
        self.rng = random.Random(s.seed)
        self.members: list[Member] = []
        self.member_proxies: list[FaultProxy] = []
        self.runner_proxies: list[FaultProxy] = []
        self.runners: list[RunnerProc] = []
        self.runner_current: dict[int, RunnerProc | None] = {}
        self.runner_gen = Counter[int]()
        self.sends: list[SendRecord] = []
        self.timeline: list[tuple[float, str]] = []  # (monotonic, what the soak did)
        self.db: DatabaseProcess | None = None
        self.servers: list[ChildServer] = []  # every emulator process started
        self.db_generation = 0
        self.auth: AuthProcess | None = None
        self.db_host = ""
        self.db_config = workdir / "firebase.json"
        self.restart: dict[str, float] = {}
        self.stopping = threading.Event()
        self.send_logs_lock = threading.Lock()
        self.record_lock = threading.Lock()
        self.phase_start = 0.0
        self.cpu_at_start = 0.0
        self.cpu_fault_phase = 0.0
        self.wall_minus_mono = time.time() - time.monotonic()
        self.durations: dict[str, float] = {}
        self.phase_end = 0.0
        self.errors: list[str] = []  # from background actions
        self._bg: list[threading.Thread] = []

    # -- small helpers --

    def note(self, what: str) -> None:
        with self.record_lock:
            self.timeline.append((mono(), what))
        log(f"  [{self.rel(mono()):7.1f} s] {what}")

    def rel(self, t_mono: float) -> float:
        return round(t_mono - self.phase_start, 3) if self.phase_start else 0.0

    def base_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("EMDASH_FB_", "FIREBASE_", "XDG_", "GOOGLE_", "GCLOUD_"))
        }
        env.update(
            {
                "XDG_CONFIG_HOME": str(self.workdir / "config"),
                "EMDASH_FB_PROJECT_ID": PROJECT,
                "FIREBASE_AUTH_EMULATOR_HOST": self.auth.host_port if self.auth else "",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def cli(self, m: Member, *args: str, name: str) -> dict[str, Any]:
        """One setup command of a member (no faults yet); its output kept for the scan."""
        proc = self.children.popen(
            [*CLI, "--profile", m.profile, *args],
            env=m.env,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = proc.communicate(timeout=CLI_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            signal_group(proc, signal.SIGKILL)
            out, err = proc.communicate()
        (self.logs / f"setup-{m.profile}-{name}.log").write_text(
            f"$ {' '.join(args)}\n[exit {proc.returncode}]\n--- stdout\n{out}--- stderr\n{err}"
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{m.label}: `{' '.join(args)}` failed: {err.strip()[-500:]}")
        try:
            return json.loads(out) if out.strip().startswith(("{", "[")) else {}
        except ValueError:
            return {}

    def admin_get(self, path: str, timeout: float = 10.0) -> Any:
        """A read with the emulator's owner credential, straight to the emulator (judging only)."""
        req = urllib.request.Request(
            f"http://{self.db_host}/{path}.json", headers={"Authorization": "Bearer owner"}
        )
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            return json.loads(reply.read())

    # -- set-up --

    def start_emulators(self) -> None:
        self.db_config.write_text(
            json.dumps(
                {
                    "emulators": {
                        "database": {"host": HOST, "port": 0},
                        "auth": {"host": HOST, "port": 0},
                    },
                    "database": {"rules": str(RULES)},
                }
            )
        )
        self.auth = AuthProcess(self.logs)
        self.servers.append(self.auth)
        self.auth.start(self.db_config)
        self.db = self.start_database(None)
        self.db_host = self.db.host_port
        # A restart comes back on the same port.
        cfg = json.loads(self.db_config.read_text())
        cfg["emulators"]["database"]["port"] = int(self.db_host.rsplit(":", 1)[1])
        self.db_config.write_text(json.dumps(cfg))
        log(f"emulators: database {self.db_host} (pid {self.db.pid}), auth {self.auth.host_port}")

    def start_database(self, import_dir: Path | None) -> DatabaseProcess:
        self.db_generation += 1
        export = self.workdir / f"export-{self.db_generation}"
        db = DatabaseProcess(self.logs, self.db_generation)
        self.servers.append(db)
        db.start(self.db_config, import_dir, export)
        if self.stopping.is_set():  # close() ran meanwhile: don't leave this one behind
            db.stop()
            raise RuntimeError("the soak is stopping")
        return db

    def make_members(self) -> None:
        s = self.s
        names = list(NAMES)
        for k in range(s.sessions):
            for i in range(s.members):
                name = f"{names[(k * s.members + i) % len(names)]}{k}"
                proxy = FaultProxy.in_front_of(self.db_host, seed=s.seed * 1000 + len(self.members))
                proxy.start()
                self.member_proxies.append(proxy)
                env = {**self.base_env(), "FIREBASE_DATABASE_EMULATOR_HOST": proxy.address}
                self.members.append(Member(k, i, name, f"s{k}m{i}", proxy, env))

    def set_up_session(self, k: int) -> None:
        people = [m for m in self.members if m.session == k]
        owner = people[0]
        owner.uid = self.cli(owner, "login", "--name", owner.name, "--json", name="login")["uid"]
        self.cli(owner, "admin", "allow", "me", name="allow")
        shared = self.cli(
            owner,
            "share",
            "--title",
            f"soak {k}",
            "--max-queued",
            str(self.s.max_queued),
            "--json",
            name="share",
        )
        for m in people:
            m.sid = shared["session"]
        for m in people[1:]:
            m.uid = self.cli(m, "login", "--name", m.name, "--json", name="login")["uid"]
            self.cli(m, "join", shared["invite"], "--json", name="join")

    def start_watchers(self) -> None:
        for m in self.members:
            m.out_path = self.logs / f"watch-{m.profile}.out"
            with (
                m.out_path.open("wb") as out,
                (self.logs / f"watch-{m.profile}.err").open("wb") as err,
            ):
                m.watcher = self.children.popen(
                    [*CLI, "--profile", m.profile, "--session", m.sid, "watch", "--json"],
                    env=m.env,
                    cwd=self.workdir,
                    stdout=out,
                    stderr=err,
                )
        deadline = mono() + READY_TIMEOUT_S
        for m in self.members:
            assert m.out_path is not None and m.watcher is not None
            while '"status": "live"' not in m.out_path.read_text(errors="replace"):
                if m.watcher.poll() is not None or mono() > deadline:
                    err = (self.logs / f"watch-{m.profile}.err").read_text(errors="replace")
                    raise RuntimeError(f"watcher {m.label} did not go live: {err[-800:]}")
                time.sleep(0.1)

    def start_runner(self, slot: int) -> RunnerProc:
        self.runner_gen[slot] += 1
        rid = f"soak{slot}g{self.runner_gen[slot]}"
        log_path = self.logs / f"runner-{rid}.log"
        env = {
            **self.base_env(),
            "FIREBASE_DATABASE_EMULATOR_HOST": self.runner_proxies[slot].address,
        }
        s = self.s
        with log_path.open("wb") as logf:
            proc = self.children.popen(
                [
                    *CLI,
                    "runner",
                    "--agent",
                    "echo",
                    "--agent-opt",
                    f"rate={s.echo_rate}",
                    "--lease",
                    str(s.lease_s),
                    "--retries",
                    str(s.retries),
                    "--id",
                    rid,
                ],
                env=env,
                cwd=self.workdir,
                stdout=logf,
                stderr=subprocess.STDOUT,
            )
        r = RunnerProc(slot, rid, proc, log_path, mono())
        self.runners.append(r)
        self.runner_current[slot] = r
        return r

    def wait_runners_ready(self, procs: Iterable[RunnerProc]) -> None:
        deadline = mono() + READY_TIMEOUT_S
        for r in procs:
            while " ready (agent " not in r.log_path.read_text(errors="replace"):
                if r.proc.poll() is not None or mono() > deadline:
                    tail = r.log_path.read_text(errors="replace")[-800:]
                    raise RuntimeError(f"runner {r.rid} did not start: {tail}")
                time.sleep(0.1)

    # -- the schedule --

    def make_plan(self) -> tuple[list[SendPlan], list[tuple[float, int, str, float]], float]:
        """Sends, kills (at, slot, signal, restart after) and the database restart, all seeded."""
        s, rng = self.s, self.rng
        n = s.messages
        times = sorted(rng.uniform(0.5, s.seconds * 0.92) for _ in range(n))
        who = [i % len(self.members) for i in range(n)]
        rng.shuffle(who)
        sends = []
        for i, (t, mi) in enumerate(zip(times, who, strict=True)):
            m = self.members[mi]
            words = " ".join(rng.choice(VOCAB) for _ in range(rng.randint(15, 60)))
            text = f"q{i:03d} from {m.name}: {words}"
            if i % 10 == 7:  # some text that needs escaping, over two lines
                text += '\nsecond line: "quotes", ünïcødé ✓ <b>tags</b> & 100%'
            x = rng.random()
            fault = (
                "lose" if x < s.send_lose_p else "cut" if x < s.send_lose_p + s.send_cut_p else None
            )
            sends.append(SendPlan(i, t, mi, text, fault, rng.randint(50, 2500)))
        at = []
        t = rng.uniform(*s.kill_every_s)
        while t < s.seconds - 3:
            at.append(t)
            t += rng.uniform(*s.kill_every_s)
        # kill -9 and SIGTERM in random order, as many of each (give or take one)
        hows = [("SIGKILL", "SIGTERM")[i % 2] for i in range(len(at))]
        rng.shuffle(hows)
        kills = [
            (t, rng.randrange(s.runners), how, rng.uniform(*s.restart_after_s))
            for t, how in zip(at, hows, strict=True)
        ]
        return sends, kills, s.seconds * s.db_restart_at

    def start_chaos(self) -> None:
        s = self.s
        for p in self.member_proxies:
            p.set_latency(*s.member_latency_ms)
            p.chaos(
                resets_per_s=s.member_resets_per_s,
                stream_resets_per_s=s.member_stream_resets_per_s,
                stall_per_s=s.member_stalls_per_s,
                stall_s=s.member_stall_s,
                lost_responses_per_s=s.member_lost_responses_per_s,
            )
        for p in self.runner_proxies:
            p.set_latency(*s.runner_latency_ms)
            p.chaos(
                resets_per_s=s.runner_resets_per_s,
                stream_resets_per_s=s.runner_stream_resets_per_s,
                stall_per_s=s.runner_stalls_per_s,
                stall_s=s.runner_stall_s,
                lost_responses_per_s=s.runner_lost_responses_per_s,
            )

    def calm(self) -> None:
        for p in self.member_proxies + self.runner_proxies:
            p.calm()
            p.unstall()
            p.set_latency(0.0, 0.0)

    # -- actions --

    def send(self, sp: SendPlan) -> SendRecord:
        m = self.members[sp.member]
        rec = SendRecord(sp.n, m.label, m.session, m.sid, sp.text, round(sp.due, 3))
        with m.lock:
            if self.stopping.is_set():
                rec.stderr = "not sent: the soak was stopping"
                return rec
            rec.start_s = self.rel(mono())
            fired_before = armed_faults_fired(m.proxy)
            if sp.fault and fired_before >= m.armed:  # nothing of ours still armed there
                if sp.fault == "lose":
                    m.proxy.lose_response(method="PATCH")
                else:
                    m.proxy.cut_request(after_bytes=sp.cut_after, method="PATCH")
                m.armed += 1
                rec.fault = sp.fault if sp.fault == "lose" else f"cut after {sp.cut_after} B"
            elif sp.fault:
                rec.fault = "skipped (the last one armed has not fired yet)"
            proc = self.children.popen(
                [*CLI, "--profile", m.profile, "--session", m.sid, "send", sp.text, "--json"],
                env=m.env,
                cwd=self.workdir,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                out, err = proc.communicate(timeout=self.s.send_timeout_s)
                rec.exit = proc.returncode
            except subprocess.TimeoutExpired:
                signal_group(proc, signal.SIGKILL)
                out, err = proc.communicate()
                rec.exit = None
            rec.end_s = self.rel(mono())
            rec.fault_fired = rec.fault is not None and armed_faults_fired(m.proxy) > fired_before
        rec.stderr = err.strip()[-400:]
        with contextlib.suppress(ValueError, AttributeError):
            doc = json.loads(out)
            rec.message, rec.position = doc.get("message"), doc.get("position")
        with self.send_logs_lock:
            with (self.logs / f"send-{m.profile}.log").open("a") as f:
                f.write(
                    f"=== send #{sp.n} at {rec.start_s:.2f}-{rec.end_s:.2f} s, exit {rec.exit}, "
                    f"fault {rec.fault} (fired: {rec.fault_fired})\n--- stdout\n{out}\n"
                    f"--- stderr\n{err}\n"
                )
            self.sends.append(rec)
        return rec

    def kill_runner(self, slot: int, how: str, restart_after: float) -> None:
        r = self.runner_current.get(slot)
        if r is None or r.proc.poll() is not None:
            self.note(f"kill {how} runner slot {slot}: nothing running")
            return
        sig = signal.SIGKILL if how == "SIGKILL" else signal.SIGTERM
        r.stopped_how, r.stopped_s = how, self.rel(mono())
        signal_group(r.proc, sig)
        self.runner_current[slot] = None
        self.note(f"{how} runner {r.rid} (pid {r.proc.pid}); a new one in {restart_after:.1f} s")
        self.background(self.reap, r)

    def reap(self, r: RunnerProc) -> None:
        try:
            r.proc.wait(30)
        except subprocess.TimeoutExpired:
            signal_group(r.proc, signal.SIGKILL)
            r.proc.wait(5)
        r.exited_s, r.exit_code = self.rel(mono()), r.proc.returncode

    def restart_runner(self, slot: int) -> None:
        if self.runner_current.get(slot) is None and not self.stopping.is_set():
            r = self.start_runner(slot)
            self.note(f"started runner {r.rid} (pid {r.proc.pid})")

    def restart_database(self) -> None:
        assert self.db is not None
        old = self.db
        self.restart["down_at"] = self.rel(mono())
        self.note(f"database restart: SIGTERM to pid {old.pid} (it exports on exit)")
        old.stop()
        self.restart["exited_at"] = self.rel(mono())
        export = self.workdir / f"export-{self.db_generation}"
        if not (export / "firebase-export-metadata.json").exists():
            raise RuntimeError(f"the database did not export on exit: {old.log_tail()}")
        self.db = self.start_database(export)
        if self.db.host_port != self.db_host:
            raise RuntimeError(f"the database came back on {self.db.host_port}, not {self.db_host}")
        self.restart["up_at"] = self.rel(mono())
        self.note(
            f"database back (pid {self.db.pid}) after "
            f"{self.restart['up_at'] - self.restart['down_at']:.2f} s"
        )

    def background(self, fn: Callable[..., Any], *args: Any) -> None:
        def run() -> None:
            try:
                fn(*args)
            except Exception as exc:
                self.errors.append(f"{fn.__name__}: {type(exc).__name__}: {exc}")
                log(f"error in {fn.__name__}: {exc}")

        t = threading.Thread(target=run, daemon=True)
        t.start()
        self._bg.append(t)

    # -- the phases --

    def fault_phase(self) -> None:
        sends, kills, db_at = self.make_plan()
        seq = itertools.count()  # ties in time keep their order; payloads are never compared
        queue: list[tuple[float, int, str, Any]] = []
        for sp in sends:
            queue.append((sp.due, next(seq), "send", sp))
        for at, slot, how, after in kills:
            queue.append((at, next(seq), "kill", (slot, how, after)))
        queue.append((db_at, next(seq), "database", None))
        heapq.heapify(queue)
        pool = cf.ThreadPoolExecutor(self.s.send_workers, thread_name_prefix="send")
        futures: list[cf.Future[SendRecord]] = []
        self.phase_start = mono()
        self.cpu_at_start = own_cpu_seconds()
        self.start_chaos()
        self.note(
            f"faults on: {len(sends)} sends, {len(kills)} runner kills, "
            f"database restart at {db_at:.0f} s"
        )
        try:
            while queue:
                due, _, kind, payload = heapq.heappop(queue)
                while (delay := self.phase_start + due - mono()) > 0:
                    time.sleep(min(delay, 0.5))
                if kind == "send":
                    futures.append(pool.submit(self.send, payload))
                elif kind == "kill":
                    slot, how, after = payload
                    self.kill_runner(slot, how, after)
                    heapq.heappush(queue, (due + after, next(seq), "restart", slot))
                elif kind == "restart":
                    self.restart_runner(payload)
                elif kind == "database":
                    self.background(self.restart_database)
            while (delay := self.phase_start + self.s.seconds - mono()) > 0:
                time.sleep(min(delay, 0.5))
        except BaseException:
            self.stopping.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            self.calm()
            self.note("faults off (every proxy calm, no latency)")
        pool.shutdown(wait=False)
        self.durations["fault_phase_s"] = round(mono() - self.phase_start, 1)
        self.cpu_fault_phase = round(own_cpu_seconds() - self.cpu_at_start, 1)
        # The sends still running finish now (each is bounded by its own timeout).
        deadline = mono() + self.s.send_timeout_s + 10
        for fut in futures:
            with contextlib.suppress(Exception):
                fut.result(max(0.1, deadline - mono()))
        for t in self._bg:
            t.join(max(0.1, deadline - mono()))
        if "up_at" not in self.restart:
            raise RuntimeError(f"the database restart did not finish: {self.errors}")

    def drain(self) -> dict[str, Any]:
        """Faults off, every runner slot up; until each stored message has a reply (bounded)."""
        t0 = mono()
        for slot in range(self.s.runners):
            r = self.runner_current.get(slot)
            if r is None or r.proc.poll() is not None:
                self.runner_current[slot] = None
                self.restart_runner(slot)
        deadline = t0 + self.s.drain_s
        waiting: list[str] = []
        while True:
            try:
                waiting = self.unanswered()
            except (OSError, ValueError) as exc:
                waiting = [f"(read failed: {exc})"]
            if not waiting or mono() > deadline:
                break
            time.sleep(1.0)
        self.durations["drain_s"] = round(mono() - t0, 1)
        self.note(f"drain over: {len(waiting)} message(s) still without a reply")
        return {"unanswered_at_deadline": waiting[:50], "seconds": self.durations["drain_s"]}

    def unanswered(self) -> list[str]:
        out = []
        for sid in sorted({m.sid for m in self.members}):
            tree = self.admin_get(f"sessions/{sid}") or {}
            msgs = tree.get("transcript") or {}
            turns = tree.get("turns") or {}
            for mid, msg in msgs.items():
                if msg.get("role") == "user" and f"{mid}~a" not in msgs:
                    out.append(mid)
            out += [f"{mid} (running)" for mid, t in turns.items() if t.get("state") == "running"]
        work = self.admin_get("work") or {}
        return out + [f"{mid} (in /work)" for mid in work]

    def settle(self) -> float:
        """Until every watcher is live and has shown every stored reply of its session (bounded)."""
        t0 = mono()
        deadline = t0 + self.s.settle_s
        while mono() < deadline:
            replies = self.stored_replies()
            if all(self.watcher_caught_up(m, replies.get(m.sid, set())) for m in self.members):
                break
            time.sleep(1.0)
        return round(mono() - t0, 1)

    def stored_replies(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for sid in {m.sid for m in self.members}:
            with contextlib.suppress(OSError, ValueError):
                msgs = (self.admin_get(f"sessions/{sid}") or {}).get("transcript") or {}
                out[sid] = {k for k, v in msgs.items() if v.get("role") == "assistant"}
        return out

    def watcher_caught_up(self, m: Member, replies: set[str]) -> bool:
        assert m.out_path is not None
        seen: set[str] = set()
        status = ""
        for ev in parse_lines(m.out_path.read_text(errors="replace"))[0]:
            if ev.get("event") == "message":
                seen.add(str(ev.get("id")))
            elif ev.get("event") == "connection":
                status = str(ev.get("status"))
        return status == "live" and replies <= seen

    def stop_everything_but_the_database(self) -> None:
        for m in self.members:
            if m.watcher is not None and m.watcher.poll() is None:
                m.watcher.send_signal(signal.SIGINT)  # what Ctrl-C does
        for r in self.runners:
            if r.proc.poll() is None:
                r.stopped_how = r.stopped_how or "end (SIGTERM)"
                signal_group(r.proc, signal.SIGTERM)
        deadline = mono() + 20
        for p in [m.watcher for m in self.members if m.watcher] + [r.proc for r in self.runners]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.1, deadline - mono()))
        for m in self.members:
            if m.watcher is not None and m.watcher.poll() is None:
                self.note(f"watcher {m.label} ignored SIGINT; SIGTERM")
                signal_group(m.watcher, signal.SIGTERM)
        self.children.stop_all()  # senders that are somehow left; the emulators are not in it

    def run(self) -> dict[str, Any]:
        s = self.s
        t0 = mono()
        self.start_emulators()
        self.make_members()
        with cf.ThreadPoolExecutor(3, thread_name_prefix="setup") as pool:
            list(pool.map(self.set_up_session, range(s.sessions)))
        self.start_watchers()
        for slot in range(s.runners):
            self.runner_proxies.append(
                FaultProxy.in_front_of(self.db_host, seed=s.seed * 1000 + 500 + slot).start()
            )
        self.wait_runners_ready([self.start_runner(slot) for slot in range(s.runners)])
        self.durations["setup_s"] = round(mono() - t0, 1)
        log(
            f"set up in {self.durations['setup_s']} s: {len(self.members)} members in "
            f"{s.sessions} sessions, each watching; {s.runners} runners"
        )
        self.fault_phase()
        drain = self.drain()
        self.durations["settle_s"] = self.settle()
        self.note(f"settled after {self.durations['settle_s']} s")
        self.phase_end = mono()
        self.stop_everything_but_the_database()
        final = {
            sid: self.admin_get(f"sessions/{sid}") or {} for sid in {m.sid for m in self.members}
        }
        work = self.admin_get("work") or {}
        self.stop_database()
        return self.analyse(final, work, drain)

    def stop_database(self) -> None:
        if self.db is not None:
            self.db.stop()
        if self.auth is not None:
            self.auth.stop()

    def close(self) -> None:
        self.stopping.set()
        self.children.stop_all()
        deadline = mono() + 15  # a database restart in flight finishes (or gives up) first
        for t in self._bg:
            t.join(max(0.1, deadline - mono()))
        self.children.stop_all()  # a runner a restart may have started meanwhile
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop()
        for p in self.member_proxies + self.runner_proxies:
            with contextlib.suppress(Exception):
                p.stop()

    # -- what it all means --

    def analyse(
        self, final: dict[str, Any], work: dict[str, Any], drain: dict[str, Any]
    ) -> dict[str, Any]:
        watchers = {}
        bad_lines = {}
        for m in self.members:
            assert m.out_path is not None
            events, bad = parse_lines(m.out_path.read_text(errors="replace"))
            for ev in events:
                ev["_t"] = self.rel(ev.get("seen_at", 0) / 1000 - self.wall_minus_mono)
            watchers[m.label] = events
            bad_lines[m.label] = bad
        sessions = {m.sid: m.session for m in self.members}
        session_of_watcher = {m.label: m.sid for m in self.members}
        runner_logs = {r.rid: r.log_path.read_text(errors="replace") for r in self.runners}
        faults_by_watcher = {m.label: proxy_faults(m.proxy, self.rel) for m in self.members}
        restart = self.restart
        db_fault = Fault(
            restart["down_at"],
            "database restart",
            restart["up_at"] - restart["down_at"],
            f"database restart (SIGTERM at {restart['down_at']:.2f} s, back at "
            f"{restart['up_at']:.2f} s)",
        )
        alive = []
        for r in self.runners:
            m = READY_LINE.search(runner_logs[r.rid])
            if m is not None:
                wall = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                ready = self.rel(wall - self.wall_minus_mono)
                alive.append((ready, r.stopped_s if r.stopped_s is not None else float("inf")))
        result = judge(
            final=final,
            runners_alive=alive,
            work=work,
            sends=self.sends,
            watchers=watchers,
            session_of_watcher=session_of_watcher,
            runner_logs=runner_logs,
            faults_by_watcher=faults_by_watcher,
            extra_faults=[db_fault],
            logs_dir=self.logs,
            end_s=self.rel(self.phase_end),
        )
        result["sessions"] = {str(v): k for k, v in sessions.items()}
        result["watch_lines_unparsed"] = sum(bad_lines.values())
        result["drain"] = drain
        result["durations"] = self.durations
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        result["cpu"] = {
            "soak_process_in_fault_phase_s": self.cpu_fault_phase,
            "soak_process_cpus": round(self.cpu_fault_phase / max(1.0, self.s.seconds), 2),
            "all_children_s": round(children.ru_utime + children.ru_stime, 1),
            "note": "the soak process holds every proxy; children: emulators, watchers, "
            "senders, runners, set-up commands (all reaped by now)",
        }
        result["database_restart"] = restart
        result["injected"] = self.injected()
        result["timeline"] = [(self.rel(t), what) for t, what in self.timeline]
        return result

    def injected(self) -> dict[str, Any]:
        member = Counter[str]()
        for p in self.member_proxies:
            member.update(p.stats)
        runner = Counter[str]()
        for p in self.runner_proxies:
            runner.update(p.stats)
        kills = Counter(
            r.stopped_how for r in self.runners if r.stopped_how in ("SIGKILL", "SIGTERM")
        )
        sends = Counter(
            (rec.fault.split(" ")[0] if rec.fault else "none")
            + (" fired" if rec.fault_fired else "")
            for rec in self.sends
        )
        return {
            "member_proxies": dict(member),
            "runner_proxies": dict(runner),
            "send_faults_armed": dict(sends),
            "runner_kills": dict(kills),
            "runner_processes": [
                {
                    "id": r.rid,
                    "started_s": self.rel(r.started_mono),
                    "stopped": r.stopped_how,
                    "stopped_s": r.stopped_s,
                    "exited_s": r.exited_s,
                    "exit_code": r.exit_code if r.exit_code is not None else r.proc.returncode,
                }
                for r in self.runners
            ],
            "database_restarts": 1,
        }


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def armed_faults_fired(proxy: FaultProxy) -> int:
    """How many of the faults armed by hand (not chaos) on this proxy have fired."""
    return sum(
        1
        for _, what in proxy.events
        if what.startswith("lose_response:") or what.startswith("cut_request")
    )


# -- judging (pure functions of what was recorded) ----------------------------------------------


@dataclass
class Fault:
    t: float  # seconds into the fault phase
    kind: str
    duration: float  # stalls, the database restart; 0 for the rest
    detail: str

    @property
    def end(self) -> float:
        return self.t + self.duration


def proxy_faults(proxy: FaultProxy, rel: Callable[[float], float]) -> list[Fault]:
    out = []
    for t, what in proxy.events:
        kind = ""
        duration = 0.0
        if what.startswith("chaos stream reset") or what.startswith("reset_streams"):
            kind = "stream reset"
        elif what.startswith("chaos reset") or what.startswith("reset_all"):
            kind = "reset"
        elif (m := STALL_EVENT.match(what)) is not None:
            kind, duration = "stall", float(m.group(1))
        elif what.startswith("lose_response (chaos)"):
            kind = "lost response (chaos)"
        elif what.startswith("lose_response"):
            kind = "lost response (a send's)"
        elif what.startswith("cut_request"):
            kind = "cut request (a send's)"
        elif "unreachable" in what:
            kind = "upstream down"
        if kind:
            out.append(Fault(rel(t), kind, duration, what))
    return out


def parse_lines(text: str) -> tuple[list[dict[str, Any]], int]:
    events, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(ev, dict):
            events.append(ev)
        else:
            bad += 1
    return events, bad


def chunks_text(turn: dict[str, Any]) -> str:
    chunks = turn.get("chunks") or {}
    return "".join(
        v for k in sorted(chunks, key=lambda k: (len(k), k)) if isinstance(v := chunks[k], str)
    )


def reply_text(reply: dict[str, Any], turn: dict[str, Any] | None) -> str:
    """What every client shows as a stored reply: its text, else its turn's chunks (and why it
    failed); the same rule as ``records.with_reply_text``, written out here to judge by."""
    if isinstance(reply.get("text"), str) and reply["text"]:
        return str(reply["text"])
    if turn is None:
        return "(no reply)"
    text = chunks_text(turn)
    state, error = turn.get("state"), turn.get("error")
    if error and state in ("failed", "cancelled"):
        text = f"{text}\n\n[{state}: {error}]".strip()
    return text or "(no reply)"


def judge(
    *,
    final: dict[str, Any],
    work: dict[str, Any],
    sends: list[SendRecord],
    watchers: dict[str, list[dict[str, Any]]],
    session_of_watcher: dict[str, str],
    runner_logs: dict[str, str],
    faults_by_watcher: dict[str, list[Fault]],
    extra_faults: list[Fault],
    logs_dir: Path | None,
    end_s: float,
    runners_alive: list[tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """Every figure and its evidence, from the sends, the watchers' lines, the runner logs and
    the final database."""
    evidence: dict[str, list[Any]] = defaultdict(list)

    def add(kind: str, item: dict[str, Any]) -> None:
        if len(evidence[kind]) < EVIDENCE_CAP:
            evidence[kind].append(item)

    # -- the database at the end
    user: dict[str, dict[str, Any]] = {}  # mid -> {sid, text, ...}
    finals: dict[str, str] = {}  # question mid -> the reply text everyone should end with
    replies: dict[str, dict[str, Any]] = {}  # reply mid -> message
    by_text: dict[str, list[str]] = defaultdict(list)
    reply_count: Counter[str] = Counter()
    turns_of: dict[str, dict[str, Any]] = {}
    for sid, tree in final.items():
        msgs = tree.get("transcript") or {}
        turns = tree.get("turns") or {}
        for mid, msg in msgs.items():
            if msg.get("role") == "user":
                user[mid] = {"sid": sid, **msg}
                by_text[msg.get("text", "")].append(mid)
            elif msg.get("role") == "assistant":
                replies[mid] = {"sid": sid, **msg}
                q = msg.get("replyTo") or mid.removesuffix("~a")
                reply_count[q] += 1
                finals[q] = reply_text(msg, turns.get(q))
        for mid, turn in turns.items():
            turns_of[mid] = turn
            if mid not in finals:  # no reply stored: judge the stream against its chunks
                finals[mid] = chunks_text(turn)

    def runner_lines(mid: str) -> list[str]:
        return [
            f"{rid}: {line}"
            for rid, text in sorted(runner_logs.items())
            for line in text.splitlines()
            if mid in line
        ][:20]

    def watcher_lines(label: str, mid: str) -> list[str]:
        """The watcher's lines about ``mid`` (or its reply), with its connection changes
        from 5 s before the first of them to 5 s after the last; ``_t`` is seconds into
        the fault phase."""
        events = watchers.get(label, [])
        about = [
            ev for ev in events if mid in (ev.get("id"), ev.get("message"), ev.get("reply_to"))
        ]
        if not about:
            return []
        lo, hi = float(about[0]["_t"]) - 5, float(about[-1]["_t"]) + 5
        out = [
            json.dumps({k: v for k, v in ev.items() if k != "seen_at"}, ensure_ascii=False)
            for ev in events
            if any(ev is a for a in about)
            or (ev.get("event") == "connection" and lo <= float(ev["_t"]) <= hi)
        ]
        return out[:60]

    # -- sends: lost, false errors, true errors
    lost_sent, false_errors, send_errors, timeouts = 0, 0, 0, 0
    sent_mids = set()
    for rec in sends:
        stored_mids = by_text.get(rec.text, [])
        if rec.exit == 0:
            sent_mids.add(rec.message)
            ok = rec.message in user and user[rec.message].get("text") == rec.text
            if not ok:
                lost_sent += 1
                add(
                    "lost",
                    {
                        "why": "the send exited 0 but its message is not stored as sent",
                        "send": vars(rec),
                        "stored_under": stored_mids,
                    },
                )
        elif stored_mids:
            false_errors += 1
            if rec.exit is None:
                timeouts += 1
            add(
                "false_errors",
                {
                    "send": vars(rec),
                    "stored_under": stored_mids,
                    "runner_log": runner_lines(stored_mids[0]),
                },
            )
        else:
            send_errors += 1
            if rec.exit is None:
                timeouts += 1
            add("send_errors", {"send": vars(rec)})

    # -- stored messages without a reply
    unanswered = [mid for mid in user if f"{mid}~a" not in replies and reply_count[mid] == 0]
    for mid in unanswered:
        add(
            "lost",
            {
                "why": "stored, but no reply after the drain",
                "message": mid,
                "session": user[mid]["sid"],
                "text": user[mid].get("text"),
                "turn": {k: v for k, v in (turns_of.get(mid) or {}).items() if k != "chunks"},
                "queued": mid in (final[user[mid]["sid"]].get("queue") or {}),
                "in_work": mid in work,
                "runner_log": runner_lines(mid),
            },
        )

    # -- failed replies
    failed = []
    for q, turn in turns_of.items():
        if turn.get("state") == "failed":
            failed.append(
                {"message": q, "error": turn.get("error"), "attempt": turn.get("attempt")}
            )
    for item in failed:
        add("failed", {**item, "runner_log": runner_lines(item["message"])})

    # -- duplicates in the database and the runner logs
    dup_stored = {t: mids for t, mids in by_text.items() if len(mids) > 1}
    for text, mids in dup_stored.items():
        add("duplicated", {"why": "one text stored under several ids", "text": text, "ids": mids})
    done_lines: dict[str, list[str]] = defaultdict(list)
    for rid, text in runner_logs.items():
        for m in TURN_LINE.finditer(text):
            if m.group(3) == "done":
                done_lines[m.group(2)].append(f"{rid}: {m.group(0)}")
    dup_done = {mid: lines for mid, lines in done_lines.items() if len(lines) > 1}
    for mid, lines in dup_done.items():
        add("duplicated", {"why": "two runners finished one message", "message": mid, "log": lines})
    dup_replies = [q for q, n in reply_count.items() if n > 1]
    for q in dup_replies:
        add("duplicated", {"why": "two replies stored for one message", "message": q})

    # -- what each watcher showed
    dup_seen = 0
    mismatched = 0
    checked = Counter[str]()
    mismatch_pairs: set[tuple[str, str]] = set()
    missed = 0
    for label, events in watchers.items():
        sid = session_of_watcher[label]
        seen: Counter[str] = Counter()
        acc: dict[str, list[Any]] = {}  # mid -> [attempt, text]
        shown_at_sync: set[str] = set()
        for ev in events:
            kind = ev.get("event")
            if kind == "synced":
                shown_at_sync |= {str(m.get("id")) for m in ev.get("messages") or []}
            elif kind == "turn_started":
                acc[str(ev.get("message"))] = [ev.get("attempt"), ""]
            elif kind == "reply_delta":
                mid = str(ev.get("message"))
                st = acc.get(mid)
                problem = ""
                if st is None:
                    problem = "a reply_delta before any turn_started"
                    st = acc[mid] = [ev.get("attempt"), ""]
                elif st[0] != ev.get("attempt"):
                    problem = f"a delta of attempt {ev.get('attempt')} after turn_started {st[0]}"
                st[1] += str(ev.get("text", ""))
                final_text = finals.get(mid)
                checked["reply_deltas"] += 1
                if not problem and final_text is not None and not final_text.startswith(st[1]):
                    problem = "what was shown is not a prefix of the final reply"
                if problem:
                    mismatched += 1
                    if (label, mid) not in mismatch_pairs:
                        mismatch_pairs.add((label, mid))
                        add(
                            "mismatched",
                            {
                                "watcher": label,
                                "message": mid,
                                "why": problem,
                                "attempt": st[0],
                                "final_attempt": (turns_of.get(mid) or {}).get("attempt"),
                                "shown": st[1],
                                "final": final_text,
                                "events": watcher_lines(label, mid),
                                "runner_log": runner_lines(mid),
                            },
                        )
            elif kind == "message":
                mid = str(ev.get("id"))
                seen[mid] += 1
                if seen[mid] == 2:
                    dup_seen += 1
                    add(
                        "duplicated",
                        {
                            "why": "a watcher was shown one message twice",
                            "watcher": label,
                            "message": mid,
                            "events": watcher_lines(label, mid),
                        },
                    )
                if ev.get("role") == "assistant":
                    q = str(ev.get("reply_to") or mid.removesuffix("~a"))
                    expected = finals.get(q)
                else:
                    expected = (user.get(mid) or {}).get("text")
                checked["message_events"] += 1
                if expected is not None and ev.get("text") != expected:
                    mismatched += 1
                    if (label, mid) not in mismatch_pairs:
                        mismatch_pairs.add((label, mid))
                        add(
                            "mismatched",
                            {
                                "watcher": label,
                                "message": mid,
                                "why": "a message event differs from the stored text",
                                "shown": ev.get("text"),
                                "final": expected,
                                "events": watcher_lines(label, mid),
                                "runner_log": runner_lines(mid.removesuffix("~a")),
                            },
                        )
        stored_here = [mid for mid, u in user.items() if u["sid"] == sid]
        stored_here += [mid for mid, r in replies.items() if r["sid"] == sid]
        for mid in stored_here:
            if mid not in seen and mid not in shown_at_sync:
                missed += 1
                add(
                    "missed",
                    {"watcher": label, "message": mid, "events": watcher_lines(label, mid)[-12:]},
                )

    # -- "agent offline" while a runner was up (ready, not yet stopped)
    false_offline = 0
    for label, events in watchers.items():
        for e in events:
            if e.get("event") != "agent" or e.get("state") != "offline":
                continue
            t = float(e["_t"])
            up = [(a, b) for a, b in runners_alive or [] if a <= t <= b]
            if up:
                false_offline += 1
                add(
                    "agent_offline_while_a_runner_was_up",
                    {
                        "watcher": label,
                        "at_s": round(t, 3),
                        "runners_up_since_s": [a for a, _ in up],
                    },
                )

    # -- outages
    outage = outages(watchers, faults_by_watcher, extra_faults, end_s)
    for ep in outage["episodes"]:
        if ep["outage_s"] is None or ep["outage_s"] > GOAL_OUTAGE_P90_S:
            add("long_outages", ep)
    for ep in outage["never_caused_reconnect"][:EVIDENCE_CAP]:
        evidence["absorbed_faults_sample"].append(ep)
    for ep in outage["episodes"]:
        if ep["cause"] == "stall not noticed":
            t = ep["fault_at_s"]
            add(
                "stalls_not_noticed",
                {
                    **ep,
                    "earlier_stalls_on_this_proxy": [
                        f"{f.t:.2f} s {f.detail}"
                        for f in faults_by_watcher.get(ep["watcher"], [])
                        if f.kind == "stall" and f.t < t
                    ],
                    "connection_events": [
                        f"{float(e['_t']):.2f} s {e.get('status')}"
                        for e in watchers.get(ep["watcher"], [])
                        if e.get("event") == "connection"
                    ],
                },
            )

    # -- logs: tracebacks and secrets in URLs
    tracebacks, secrets = scan_logs(logs_dir, add) if logs_dir is not None else (0, 0)

    # -- how long people waited: the send command, and the reply at the sender's own screen
    first_text: list[float] = []
    reply_seen: list[float] = []
    waits: list[tuple[float, SendRecord]] = []
    for rec in sends:
        if rec.exit != 0 or not rec.message:
            continue
        evs = watchers.get(rec.member, [])
        deltas = [
            float(e["_t"])
            for e in evs
            if e.get("event") == "reply_delta" and e.get("message") == rec.message
        ]
        final_seen = [
            float(e["_t"])
            for e in evs
            if e.get("event") == "message" and e.get("reply_to") == rec.message
        ]
        first_text.append(min(deltas) - rec.start_s if deltas else float("inf"))
        reply_seen.append(min(final_seen) - rec.start_s if final_seen else float("inf"))
        waits.append((reply_seen[-1], rec))
    for wait, rec in sorted(waits, key=lambda w: -w[0])[:5]:
        turn = turns_of.get(rec.message or "") or {}
        add(
            "slowest_replies",
            {
                "message": rec.message,
                "watcher": rec.member,
                "sent_at_s": rec.start_s,
                "reply_seen_after_s": round(wait, 3),
                "attempts": turn.get("attempt"),
                "runner_log": runner_lines(rec.message or "-"),
            },
        )

    answered_done = sum(
        1 for q in user if (turns_of.get(q) or {}).get("state") == "done" and reply_count[q]
    )
    return {
        "sends": len(sends),
        "sends_ok": sum(1 for r in sends if r.exit == 0),
        "send_errors": send_errors,
        "send_timeouts": timeouts,
        "stored_messages": len(user),
        "replies": len(replies),
        "replies_done": answered_done,
        "lost": lost_sent + len(unanswered),
        "lost_sent_not_stored": lost_sent,
        "lost_no_reply": len(unanswered),
        "failed": len(failed),
        "failed_reasons": dict(Counter(str(f["error"]) for f in failed)),
        "duplicated": len(dup_stored) + len(dup_done) + len(dup_replies) + dup_seen,
        "duplicated_stored": len(dup_stored),
        "duplicated_finished_twice": len(dup_done),
        "duplicated_replies": len(dup_replies),
        "duplicated_shown": dup_seen,
        "mismatched": mismatched,
        "mismatched_pairs": len(mismatch_pairs),
        "checked": dict(checked),
        "false_errors": false_errors,
        "missed": missed,
        "agent_offline_while_up": false_offline,
        "tracebacks": tracebacks,
        "secret_urls": secrets,
        "send_seconds": summary(r.end_s - r.start_s for r in sends if r.exit is not None),
        "first_reply_text_seconds": summary(first_text),
        "reply_seconds": summary(reply_seen),
        "retried_turns": sum(1 for t in turns_of.values() if int(t.get("attempt") or 1) > 1),
        "outages": {k: v for k, v in outage.items() if k not in ("never_caused_reconnect",)},
        "sends_made": [
            {k: v for k, v in vars(rec).items() if k != "text"} | {"text": rec.text[:40]}
            for rec in sorted(sends, key=lambda r: r.n)
        ],
        "faults_by_watcher": {
            label: [[round(f.t, 3), f.kind, round(f.duration, 3)] for f in faults]
            for label, faults in sorted(faults_by_watcher.items())
        },
        "absorbed_faults": dict(Counter(f["kind"] for f in outage["never_caused_reconnect"])),
        "evidence": dict(evidence),
    }


def summary(vals: Iterable[float]) -> dict[str, Any]:
    """count, p50, p90, max (nearest rank; ``inf`` stands for "never")."""
    vals = sorted(vals)
    return {
        "count": len(vals),
        "p50_s": round(percentile(vals, 50), 3) if vals else None,
        "p90_s": round(percentile(vals, 90), 3) if vals else None,
        "max_s": round(vals[-1], 3) if vals else None,
    }


STREAM_KINDS = ("stream reset", "reset", "lost response (chaos)")
FREEZES = ("stall", "database restart")  # everything on the way is held, or gone


def could_cause(f: Fault, down: float) -> bool:
    """Whether fault ``f`` explains a watcher's reconnect reported at ``down``.

    A reset (of the stream or of any connection) and a chaos lost response are
    felt at once; a stall only while it lasts (a silence timeout fires while
    bytes are held) and only if it is long enough to outlast the silence limit
    after the last keep-alive; the database restart while it is down. Faults
    armed for a send (a lost response of its PATCH, a cut request) never touch
    the stream.
    """
    if f.t > down + 0.05:
        return False
    if f.kind in STREAM_KINDS:
        return down <= f.t + CAUSE_SLACK_S
    if f.kind == "stall":
        return f.duration >= SILENCE_S - KEEP_ALIVE_S - 0.1 and down <= f.end + CAUSE_SLACK_S
    if f.kind == "database restart":
        return down <= f.end + CAUSE_SLACK_S
    return False


def freeze_start(t: float, faults: list[Fault]) -> tuple[float, float]:
    """(start, end) of the freeze (stalls, the restart, chained) in effect at ``t``, or (t, t)."""
    start, end = t, t
    changed = True
    while changed:
        changed = False
        for f in faults:
            if f.kind in FREEZES and f.t < start <= f.end + 0.05:
                start, end, changed = f.t, max(end, f.end), True
    return start, end


def outages(
    watchers: dict[str, list[dict[str, Any]]],
    faults_by_watcher: dict[str, list[Fault]],
    extra_faults: list[Fault],
    end_s: float,
) -> dict[str, Any]:
    """What each watcher went through: every reconnect until it was live again, counted from
    the fault that caused it (from the start of a stall or restart already holding its
    stream), and every stall longer than the silence limit that it never noticed (its view
    frozen while it said "live"), counted as the stall's length."""
    episodes: list[dict[str, Any]] = []
    absorbed: list[dict[str, Any]] = []
    for label, events in watchers.items():
        conn = [
            (float(ev["_t"]), str(ev.get("status")))
            for ev in events
            if ev.get("event") == "connection"
        ]
        faults = sorted(faults_by_watcher.get(label, []) + extra_faults, key=lambda f: f.t)
        spans: list[tuple[float, float | None]] = []
        down: float | None = None
        first_live = False
        for t, status in conn:
            if status == "live":
                if down is not None:
                    spans.append((down, t))
                down = None
                first_live = True
            elif status == "reconnecting" and down is None and first_live:
                down = t
        if down is not None:
            spans.append((down, None))
        used: set[int] = set()
        for down, live in spans:
            causes = [(i, f) for i, f in enumerate(faults) if could_cause(f, down)]
            start, kind, detail, after_end = down, "unexplained", "", None
            if causes:
                last = max(causes, key=lambda c: c[1].t)[1]
                start, frozen_until = freeze_start(min(down, last.t), faults)
                kind = last.kind
                if start < last.t or last.kind == "database restart":
                    kind = next(
                        (f.kind for f in faults if f.t == start and f.kind in FREEZES), last.kind
                    )
                detail = "; ".join(f"{f.t:.2f} s {f.detail}" for _, f in causes)
                if live is not None:
                    # recovery: from the end of the last fault that hit before it was live
                    ended = max(
                        [last.end, frozen_until]
                        + [
                            f.end
                            for f in faults
                            if f.kind in STREAM_KINDS + FREEZES and start <= f.t < live
                        ]
                    )
                    after_end = round(max(0.0, live - ended), 3)
            # every fault that began during the outage is part of it
            stop = live if live is not None else end_s
            used.update(i for i, f in enumerate(faults) if start - 0.05 <= f.t <= stop)
            used.update(i for i, _ in causes)
            episodes.append(
                {
                    "watcher": label,
                    "cause": kind,
                    "faults": detail,
                    "fault_at_s": round(start, 3),
                    "reconnecting_at_s": round(down, 3),
                    "live_at_s": None if live is None else round(live, 3),
                    "outage_s": None if live is None else round(live - start, 3),
                    "after_fault_ended_s": after_end,
                }
            )
        for i, f in enumerate(faults):
            if i in used or f.kind not in STREAM_KINDS + ("stall",):
                continue  # faults armed for sends, the restart, failed connects: not the stream's
            if f.kind == "stall" and f.duration > SILENCE_S + 0.2:
                episodes.append(
                    {
                        "watcher": label,
                        "cause": "stall not noticed",
                        "faults": f"{f.t:.2f} s {f.detail}",
                        "fault_at_s": round(f.t, 3),
                        "reconnecting_at_s": None,
                        "live_at_s": None,
                        "outage_s": round(f.duration, 3),
                        "after_fault_ended_s": 0.0,
                        "note": "longer than the silence limit, yet no reconnect: the view "
                        "was frozen for the whole stall while it said live",
                    }
                )
            else:
                absorbed.append(
                    {"watcher": label, "kind": f.kind, "at_s": round(f.t, 3), "detail": f.detail}
                )

    def value(ep: dict[str, Any]) -> float:
        v = ep["outage_s"]
        return float("inf") if v is None else float(v)

    by_cause: dict[str, list[float]] = defaultdict(list)
    for ep in episodes:
        by_cause[ep["cause"]].append(value(ep))
    after = [ep["after_fault_ended_s"] for ep in episodes if ep["after_fault_ended_s"] is not None]
    episodes.sort(key=lambda ep: (ep["watcher"], ep["fault_at_s"]))
    return {
        **summary(value(ep) for ep in episodes),
        "reconnects": sum(1 for ep in episodes if ep["reconnecting_at_s"] is not None),
        "stalls_not_noticed": sum(1 for ep in episodes if ep["cause"] == "stall not noticed"),
        "never_live_again": sum(
            1 for ep in episodes if ep["reconnecting_at_s"] is not None and ep["live_at_s"] is None
        ),
        "by_cause": {k: summary(v) for k, v in sorted(by_cause.items())},
        "after_fault_ended": summary(after),
        "episodes": episodes,
        "never_caused_reconnect": absorbed,
    }


def scan_logs(logs_dir: Path, add: Callable[[str, dict[str, Any]], None]) -> tuple[int, int]:
    """("Traceback" occurrences, lines with a credential-bearing URL) over every output file."""
    tracebacks = secrets = 0
    for path in sorted(logs_dir.iterdir()):
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if "Traceback" in line:
                tracebacks += 1
                add("tracebacks", {"file": path.name, "excerpt": lines[max(0, i - 3) : i + 25]})
            if SECRET_URL.search(line):
                secrets += 1
                redacted = re.sub(
                    r"((?:auth|auth_variable_override|access_token)=)[^&\s\"']*",
                    r"\1<redacted>",
                    line,
                )
                add("secret_urls", {"file": path.name, "line": redacted[:500]})
    return tracebacks, secrets


# -- the report -----------------------------------------------------------------------------


def fmt_s(v: Any) -> str:
    return "-" if v is None else "inf" if v == float("inf") else f"{v:.2f}"


def _triple(sm: dict[str, Any]) -> str:
    return f"{fmt_s(sm['p50_s'])} / {fmt_s(sm['p90_s'])} / {fmt_s(sm['max_s'])}"


def _counts(stats: dict[str, int], keys: tuple[str, ...]) -> tuple[str, str]:
    total = sum(stats.get(k, 0) for k in keys)
    return str(total), ", ".join(f"{stats.get(k, 0)} {k.replace('_', ' ')}" for k in keys)


def print_table(report: dict[str, Any]) -> None:
    r = report["soak"]
    o = r["outages"]
    inj = r["injected"]
    watchers = len(r["sessions"]) * report["settings"]["members"]
    failed = ", ".join(f"{k} x{v}" for k, v in r["failed_reasons"].items())
    absorbed = ", ".join(f"{k} x{v}" for k, v in sorted(r["absorbed_faults"].items()))
    kills = inj["runner_kills"]
    dr = r["database_restart"]
    d = r["durations"]
    rows: list[tuple[str, ...]] = [
        (
            "messages sent",
            str(r["sends"]),
            f"{r['sends_ok']} exit 0, {r['send_errors']} failed visibly (not stored), "
            f"{r['send_timeouts']} timed out; {r['stored_messages']} stored",
        ),
        (
            "lost",
            str(r["lost"]),
            f"{r['lost_sent_not_stored']} sent (exit 0) but not stored, "
            f"{r['lost_no_reply']} stored without a reply after the drain",
        ),
        (
            "duplicated",
            str(r["duplicated"]),
            f"{r['duplicated_stored']} texts stored twice, {r['duplicated_shown']} shown twice, "
            f"{r['duplicated_finished_twice']} finished twice, {r['duplicated_replies']} replied twice",
        ),
        (
            "mismatched live texts",
            str(r["mismatched"]),
            f"in {r['mismatched_pairs']} (watcher, message) pairs; checked "
            f"{r['checked'].get('reply_deltas', 0)} deltas, "
            f"{r['checked'].get('message_events', 0)} message events",
        ),
        ("false errors", str(r["false_errors"]), "send exited non-zero, yet its message is stored"),
        ("failed replies", str(r["failed"]), failed or "-"),
        ("tracebacks", str(r["tracebacks"]), "in any process's output"),
        (
            "credential URLs in logs",
            str(r["secret_urls"]),
            "lines with ?auth= / auth_variable_override= / access_token=",
        ),
        ("missed by a watcher", str(r["missed"]), "(watcher, stored message) pairs never shown"),
        (
            "'agent offline' while one was up",
            str(r["agent_offline_while_up"]),
            "agent events saying offline while a runner process was ready and not stopped",
        ),
        (
            "replies",
            str(r["replies"]),
            f"{r['replies_done']} done, {r['retried_turns']} needed more than one attempt",
        ),
        (
            "outage p50 / p90 / max s",
            _triple(o),
            f"{o['count']} outages of {watchers} watchers: {o['reconnects']} reconnects (from the "
            f"fault that caused each), {o['stalls_not_noticed']} stalls never noticed; "
            f"{o['never_live_again']} never live again",
        ),
    ]
    for cause, sm in o["by_cause"].items():
        what = "a stall longer than the silence limit, frozen yet 'live'"
        rows.append(
            (
                f"  {cause}"
                if cause in ("unexplained", "stall not noticed")
                else f"  after a {cause}",
                _triple(sm),
                f"{sm['count']} x " + (what if cause == "stall not noticed" else "reconnect"),
            )
        )
    rows.append(
        (
            "  from the fault's end",
            _triple(o["after_fault_ended"]),
            "the reconnects, counted from the end of their stall or restart",
        )
    )
    rows.append(
        ("send command s, p50 / p90 / max", _triple(r["send_seconds"]), "start to exit, every send")
    )
    rows.append(
        (
            "reply s, p50 / p90 / max",
            _triple(r["reply_seconds"]),
            f"send to the final reply on the sender's screen (first text: "
            f"{_triple(r['first_reply_text_seconds'])})",
        )
    )
    rows.append(
        ("faults with no reconnect", str(sum(r["absorbed_faults"].values())), absorbed or "-")
    )
    rows.append(
        (
            "member proxies: faults",
            *_counts(
                inj["member_proxies"],
                ("stream_resets", "resets", "stalls", "lost_responses", "cut_requests"),
            ),
        )
    )
    rows.append(
        (
            "runner proxies: faults",
            *_counts(
                inj["runner_proxies"], ("stream_resets", "resets", "stalls", "lost_responses")
            ),
        )
    )
    rows.append(
        (
            "runners killed",
            str(sum(kills.values())),
            f"{kills.get('SIGKILL', 0)} kill -9, {kills.get('SIGTERM', 0)} SIGTERM; "
            f"{len(inj['runner_processes'])} runner processes in all",
        )
    )
    rows.append(
        (
            "database restart",
            f"{dr['up_at'] - dr['down_at']:.2f} s",
            f"down at {dr['down_at']:.1f} s into the faults until back (export, import)",
        )
    )
    rows.append(
        (
            "durations s",
            f"{d.get('fault_phase_s')} + {d.get('drain_s')} + {d.get('settle_s')}",
            f"faults + drain + settle; set-up {d.get('setup_s')}",
        )
    )
    cpu = r["cpu"]
    rows.append(
        (
            "CPU s",
            f"{cpu['soak_process_in_fault_phase_s']} + {cpu['all_children_s']}",
            f"the soak process (proxies) during the faults ({cpu['soak_process_cpus']} CPUs), "
            "+ all its children over the whole run",
        )
    )
    print_rows(rows, ("measure", "value", "note"))
    print_goals(report["goals"])
    if report.get("checks"):
        print_goals(report["checks"])


def goals(report: dict[str, Any]) -> list[dict[str, Any]]:
    r = report["soak"]
    p90 = r["outages"]["p90_s"]
    out = [
        {"name": name, "goal": "0", "value": r[key], "pass": r[key] == 0}
        for name, key in (
            ("lost messages", "lost"),
            ("duplicated messages or replies", "duplicated"),
            ("mismatched live texts", "mismatched"),
            ("false errors", "false_errors"),
            ("tracebacks", "tracebacks"),
        )
    ]
    out.append(
        {
            "name": "outage after a fault, p90 s",
            "goal": f"<= {GOAL_OUTAGE_P90_S:.0f}",
            "value": p90,
            "pass": p90 is not None and p90 <= GOAL_OUTAGE_P90_S,
        }
    )
    return out


def checks(r: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": name, "goal": "0", "value": r[key], "pass": r[key] == 0}
        for name, key in (
            ("credential-bearing URLs in logs (check)", "secret_urls"),
            ("stored messages a watcher never showed (check)", "missed"),
            ("failed replies (check)", "failed"),
            ("watchers never live again (check)", "never_live"),
            ("'agent offline' shown while a runner was up (check)", "agent_offline_while_up"),
        )
    ]


def layout_text(s: Settings) -> str:
    return (
        f"auth: `emdash-fb emulators start --only auth` (direct); database: EmulatorServer with the "
        f"real rules and {KEEP_ALIVE_S:g} s keep-alives in a child process, restarted once "
        f"(export, import, same port); {s.sessions} sessions x {s.members} members, each member "
        "its own profile and fault proxy carrying its `emdash-fb watch --json` process and its "
        f"`emdash-fb send --json` processes ({s.send_workers} sender threads); {s.runners} "
        f"`emdash-fb runner` processes (echo rate={s.echo_rate}, lease {s.lease_s:g} s, retries "
        f"{s.retries}), each through its own fault proxy, killed and replaced; proxies: threads "
        f"of this process; all share {os.cpu_count()} CPUs"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--serve-database":
        serve_database(argv)
        return 0
    p = bench_parser(__doc__.split("\n\n")[0] if __doc__ else None, SECTIONS, DEFAULT_OUT)
    p.add_argument("--seconds", type=float, help="length of the fault phase (default 120)")
    p.add_argument("--seed", type=int, help="seed of every random choice (default 1)")
    p.add_argument("--logs", type=Path, help="keep every process's output in this folder")
    args = p.parse_args(argv)
    if args.runs not in (None, 1):
        p.error("a soak is one run (--runs 1)")
    s, _only, out_path = plan(
        args, Settings, SECTIONS, DEFAULT_OUT, narrowed=args.seconds is not None
    )
    if args.seed is not None:
        s.seed = args.seed
    if args.seconds is not None:
        s.messages = max(1, round(s.messages * args.seconds / s.seconds))
        s.seconds = args.seconds
    report, meter = start_report("emdash-fb soak", args.quick, s, layout_text(s))
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if args.logs is not None:
            args.logs.mkdir(parents=True, exist_ok=True)
            workdir = Path(tempfile.mkdtemp(prefix="run-", dir=args.logs))
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="emdash-soak-")))
        soak = Soak(s, workdir)
        stack.callback(soak.close)
        report["soak"] = soak.run()
    r = report["soak"]
    r["never_live"] = r["outages"]["never_live_again"]
    report["checks"] = checks(r)
    passed = finish_report(report, meter, started, goals, print_table, out_path)
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-database":
        serve_database(sys.argv[1:])
    else:
        run_main(main)
