"""Listeners never die and come back fast: members' views and the runner's work stream,
behind a fault proxy that resets, stalls and refuses connections.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.session import events as ev
from emdash_fb.session.view import SessionView
from tests.runner.test_runner import replies, wait_for
from tests.support.allow import allow_owner
from tests.support.faultproxy import FaultProxy


@pytest.fixture
def proxy(rules_emu: ThreadedEmulator) -> Iterator[FaultProxy]:
    with FaultProxy.in_front_of(rules_emu.database_host, seed=3) as p:
        yield p


def member(rules_emu: ThreadedEmulator, tmp_path: Path, name: str, via: str) -> AppContext:
    env = {
        **rules_emu.env(),
        "FIREBASE_DATABASE_EMULATOR_HOST": via,
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
    }
    app = AppContext(profile=name, env=env)
    allow_owner(rules_emu.project_id, rules_emu.env(), app.auth.sign_in_anonymous(name).uid)
    return app


class Watched:
    """A live view on its own loop thread, recording (monotonic time, event)."""

    def __init__(self, app: AppContext, sid: str) -> None:
        self.events: list[tuple[float, ev.Event]] = []
        self.view = SessionView(
            app.target,
            app.auth,
            app.sessions,
            sid,
            lambda e: self.events.append((time.monotonic(), e)),
        )
        self.loop = asyncio.new_event_loop()
        self.task: Any = None
        import threading

        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(self.view.run())
        self.loop.run_until_complete(self.task)

    def statuses(self) -> list[tuple[float, str]]:
        return [(t, e.status) for t, e in self.events if isinstance(e, ev.ConnectionChanged)]

    def live_since(self, since: float) -> float | None:
        for t, status in self.statuses():
            if t >= since and status == "live":
                return t
        return None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.view.stop)
        self.thread.join(10)


def test_a_members_view_is_back_within_two_seconds_of_every_fault(
    rules_emu: ThreadedEmulator, proxy: FaultProxy, tmp_path: Path
) -> None:
    alice = member(rules_emu, tmp_path, "alice", proxy.address)
    sid = alice.sessions.share().session
    watched = Watched(alice, sid)
    try:
        wait_for(lambda: watched.live_since(0))
        outages = []
        for _ in range(5):  # resets mid-stream, one after another: never a growing wait
            cut = time.monotonic()
            assert proxy.reset_streams() == 3  # the live part, the transcript, the turns
            back = wait_for(lambda cut=cut: watched.live_since(cut + 0.01), timeout=10)
            outages.append(back - cut)
        assert max(outages) < 2.0, outages
        # the database unreachable for 6 s (every attempt refused), then back
        proxy.refuse(True)
        proxy.reset_all()
        time.sleep(6)
        proxy.refuse(False)
        up = time.monotonic()
        back = wait_for(lambda: watched.live_since(up), timeout=10)
        assert back - up < 2.5  # backoff is capped at 2 s
        # a stall: no bytes, no error; noticed by the missing keep-alives (once the stream
        # has shown its 1 s cadence: two keep-alives in a row), then back
        wait_for(lambda: watched.view.live.silence_limit < 3.0, timeout=10)
        stalled = time.monotonic()
        proxy.stall(4.0)
        lost = wait_for(
            lambda: next(
                (t for t, s in watched.statuses() if t > stalled and s == "reconnecting"), None
            ),
            timeout=15,
        )
        assert lost - stalled < 4.0  # 2.5 x the 1 s keep-alive the stream taught it
        back = wait_for(lambda: watched.live_since(lost), timeout=15)
        assert back - (stalled + 4.0) < 2.5
        # the held keep-alives arrived in a burst: they must not teach it a shorter cadence
        time.sleep(3)
        assert watched.view.live.silence_limit >= 2.4
        assert [s for t, s in watched.statuses() if t > back + 0.5].count("reconnecting") == 0
        # and what happened in between shows up, once
        mid = alice.sessions.send(sid, "after all that").message
        wait_for(
            lambda: any(
                isinstance(e, ev.MessagePosted) and e.message.id == mid for _, e in watched.events
            )
        )
        assert (
            sum(isinstance(e, ev.MessagePosted) and e.message.id == mid for _, e in watched.events)
            == 1
        )
    finally:
        watched.stop()


def runner_behind(
    rules_emu: ThreadedEmulator, via: str, log: Path, *args: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    env = {**env, **rules_emu.env(), "FIREBASE_DATABASE_EMULATOR_HOST": via}
    return subprocess.Popen(
        [sys.executable, "-m", "emdash_fb.cli.main", "runner", *args],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_the_runners_work_stream_never_dies(
    rules_emu: ThreadedEmulator,
    proxy: FaultProxy,
    tmp_path: Path,
    make_user: Callable[..., AppContext],
) -> None:
    """Resets, refusals (the database away for a while) and a stall: after each, a new
    message is answered in seconds (by the stream, not by a 15 s poll), and the log says
    what happened in a line or two, with no traceback and no credentials."""
    alice = make_user("alice")
    sid = alice.sessions.share().session
    log = tmp_path / "runner.log"
    proc = runner_behind(rules_emu, proxy.address, log, "--lease", "30", "--agent-opt", "rate=0")
    try:

        def answered_soon(text: str) -> float:
            sent = time.monotonic()
            mid = alice.sessions.send(sid, text).message
            wait_for(lambda: mid in replies(alice.sessions.state(sid)), timeout=20)
            return time.monotonic() - sent

        answered_soon("warm up")
        waits = []
        for i in range(3):
            proxy.reset_streams()
            time.sleep(0.3)
            waits.append(answered_soon(f"after reset {i}"))
        proxy.refuse(True)
        proxy.reset_all()
        time.sleep(8)
        proxy.refuse(False)
        time.sleep(2.5)  # the stream's backoff is at most 2 s
        waits.append(answered_soon("after the database came back"))
        assert max(waits) < 5.0, waits  # a poll every lease/2 would be 15 s
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    text = log.read_text()
    assert "Traceback" not in text, text
    for secret in ("auth_variable_override", "access_token", "auth="):
        assert secret not in text, text
    assert text.count("lost the work stream") >= 1 and "the work stream is back" in text
    lines = [line for line in text.splitlines() if "claiming failed" in line]
    assert len(lines) <= 2, text  # one line when a fault starts, not one per retry


def test_a_member_who_misses_a_retry_sees_only_the_final_attempts_text(
    rules_emu: ThreadedEmulator,
    proxy: FaultProxy,
    tmp_path: Path,
    make_user: Callable[..., AppContext],
) -> None:
    """bob follows with `watch --json` behind the proxy. The runner dies mid-reply and bob's
    stream is cut and kept away while another runner retries the turn: what bob's stream
    showed of the reply is, at every delta, a prefix of the final text, and ends equal to it."""
    import json

    alice = make_user("alice")
    bob = member(rules_emu, tmp_path, "bob", proxy.address)  # his identity is for that address
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    sid = shared.session
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    env = {**env, **bob.env}
    watch_out = tmp_path / "watch.jsonl"
    watcher = subprocess.Popen(
        [sys.executable, "-m", "emdash_fb.cli.main", "--profile", "bob", "--session", sid]
        + ["watch", "--json"],
        env=env,
        stdout=watch_out.open("wb"),
        stderr=subprocess.PIPE,
    )
    # an agent whose every attempt says something different (a deterministic one would hide
    # a merge of two attempts' texts)
    agent = tmp_path / "agent.py"
    agent.write_text(
        "import secrets, sys, time\n"
        "sys.stdin.read()\n"
        "tag = secrets.token_hex(4)\n"
        "for i in range(80):\n"
        "    sys.stdout.write(f'{tag}-{i} ')\n"
        "    sys.stdout.flush()\n"
        "    time.sleep(0.05)\n"
    )
    slow = ("--agent", "command", "--agent-opt", f"cmd={sys.executable} {agent}")
    first = runner_behind(
        rules_emu, rules_emu.database_host, tmp_path / "a.log", "--lease", "2", *slow
    )
    second = None
    try:
        try:
            wait_for(lambda: '"status": "live"' in watch_out.read_text(), timeout=20)
        except AssertionError:
            watcher.kill()
            raise AssertionError(
                watch_out.read_text() + watcher.communicate()[1].decode()
            ) from None
        mid = alice.sessions.send(sid, " ".join(f"w{i}" for i in range(120))).message
        wait_for(lambda: '"reply_delta"' in watch_out.read_text(), timeout=20)
        proxy.refuse(True)
        proxy.reset_streams()  # bob is cut off ...
        os.killpg(first.pid, signal.SIGKILL)  # ... while the runner dies mid-reply
        first.wait(10)
        second = runner_behind(
            rules_emu, rules_emu.database_host, tmp_path / "b.log", "--lease", "2", *slow
        )
        wait_for(
            lambda: (
                (alice.sessions.state(sid).turns.get(mid) or None)
                and alice.sessions.state(sid).turns[mid].attempt == 2
                and alice.sessions.state(sid).turns[mid].text
            ),
            timeout=20,
        )
        proxy.refuse(False)  # bob comes back mid-way through the retry
        wait_for(lambda: mid in replies(alice.sessions.state(sid)), timeout=60)
        final = replies(alice.sessions.state(sid))[mid].text
        wait_for(lambda: final.split()[-1] in watch_out.read_text(), timeout=20)
        time.sleep(0.5)
    finally:
        # the runners first: one left behind would answer later tests' sessions
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
        watcher.send_signal(signal.SIGINT)
        try:  # prompt alone (~0.1 s); under a whole suite's load it has taken over 20 s
            _, err = watcher.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            watcher.kill()
            watcher.communicate()
            raise AssertionError("watch did not stop within 60 s of Ctrl-C") from None
    assert b"Traceback" not in err, err
    events = [json.loads(line) for line in watch_out.read_text().splitlines()]
    last_attempt = alice.sessions.state(sid).turns[mid].attempt
    shown, attempt = "", 0
    for e in events:
        if e.get("message") != mid:
            continue
        if e["event"] == "turn_started":
            shown, attempt = "", e["attempt"]
        elif e["event"] == "reply_delta":
            assert e["attempt"] == attempt, e  # one attempt's text at a time, never merged
            shown += e["text"]
            if attempt == last_attempt:
                assert final.startswith(shown), (shown, final)
    assert attempt == last_attempt == 2
    assert shown == final
    posted = [e for e in events if e["event"] == "message" and e.get("reply_to") == mid]
    assert len(posted) == 1 and posted[0]["text"] == final
    assert any(e["event"] == "connection" and e["status"] == "reconnecting" for e in events)


def test_the_database_restarts_and_everyone_carries_on(tmp_path: Path) -> None:
    """The database goes away (stopped, its data exported) and comes back on another port
    (imported): the runner's work stream and a member's view reconnect through the proxy,
    and a message sent after the restart is answered and seen once."""
    from emdash_fb.emulator.config import EmulatorConfig
    from tests.conftest import RULES

    export = tmp_path / "export"

    def emulator(port: int, *, restore: bool) -> ThreadedEmulator:
        cfg = EmulatorConfig(rules_path=RULES)
        cfg.ports = {"database": port, "auth": 0}
        cfg.export_on_exit = export
        cfg.import_dir = export if restore else None
        return ThreadedEmulator(cfg, keep_alive_seconds=1.0)

    first = emulator(0, restore=False).start()
    with FaultProxy.in_front_of(first.database_host, seed=5) as proxy:
        env = {**first.env(), "FIREBASE_DATABASE_EMULATOR_HOST": proxy.address}
        alice = AppContext(profile="alice", env={**env, "XDG_CONFIG_HOME": str(tmp_path / "c")})
        allow_owner(first.project_id, first.env(), alice.auth.sign_in_anonymous("alice").uid)
        sid = alice.sessions.share().session
        log = tmp_path / "runner.log"
        runner = runner_behind(first, proxy.address, log, "--agent-opt", "rate=0")
        watched = Watched(alice, sid)
        second: ThreadedEmulator | None = None
        try:
            mid = alice.sessions.send(sid, "before").message
            wait_for(lambda: mid in replies(alice.sessions.state(sid)), timeout=20)
            first.stop()  # the database goes away (Auth too: this emulator holds both)
            time.sleep(3)
            second = emulator(0, restore=True).start()
            proxy.set_upstream(("127.0.0.1", int(second.database_host.rsplit(":", 1)[1])))
            back = time.monotonic()
            later = wait_for(
                lambda: _try_send(alice, sid, "after the restart"), timeout=20, every=0.5
            )
            wait_for(lambda: later in replies(alice.sessions.state(sid)), timeout=20)
            live = wait_for(lambda: watched.live_since(back), timeout=10)
            assert live - back < 2.5  # the view is back within ~2 s of the database
            wait_for(
                lambda: any(
                    isinstance(e, ev.MessagePosted) and e.message.reply_to == later
                    for _, e in watched.events
                ),
                timeout=20,
            )
            posted = [
                e
                for _, e in watched.events
                if isinstance(e, ev.MessagePosted) and e.message.id == later
            ]
            assert len(posted) == 1
        finally:
            watched.stop()
            os.killpg(runner.pid, signal.SIGTERM)
            runner.wait(20)
            if second is not None:
                second.stop()
    text = log.read_text()
    assert "Traceback" not in text, text
    assert "the work stream is back" in text


def _try_send(app: AppContext, sid: str, text: str) -> str | None:
    from emdash_fb.firebase.errors import FirebaseError

    try:
        return app.sessions.send(sid, text).message
    except FirebaseError:
        return None
