"""The Listener against the emulator: sync, updates, every kind of reconnect, stopping cleanly."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emdash_fb.emulator.idtoken import mint_id_token
from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.firebase.client import Rtdb
from emdash_fb.firebase.errors import NetworkError
from emdash_fb.firebase.identity import Auth, IdentityStore
from emdash_fb.firebase.listener import Listener, Update
from emdash_fb.firebase.target import Target
from tests.firebase.stub_server import Step, StubServer

FAST = {"backoff_initial": 0.05, "backoff_max": 0.5, "keep_alive": 1.0}


class Recorder:
    """Collects a listener's updates and statuses (called on the listener's loop)."""

    def __init__(self, on_status: Callable[[str], None] | None = None) -> None:
        self.updates: list[Update] = []
        self.statuses: list[str] = []
        self._also = on_status

    def update(self, u: Update) -> None:
        self.updates.append(u)

    def status(self, s: str) -> None:
        self.statuses.append(s)
        if self._also is not None:
            self._also(s)

    @property
    def resyncs(self) -> list[Update]:
        return [u for u in self.updates if u.resync]


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def start(
    target: Target, auth: Auth, path: str, rec: Recorder, **kw: Any
) -> tuple[Listener, asyncio.Task]:
    listener = Listener(target, auth, path, rec.update, rec.status, **{**FAST, **kw})
    return listener, asyncio.create_task(listener.run())


async def finish(listener: Listener, task: asyncio.Task) -> None:
    listener.stop()
    await asyncio.wait_for(task, 5)


def drop_streams(emu: ThreadedEmulator) -> int:
    """The server ends every open stream (the emulator's test hook)."""
    return emu.call(lambda: len([s.close("test") for s in list(emu.server.rtdb.active_streams)]))


def added_keys(updates: list[Update], child: str) -> Counter[str]:
    """How often each key under ``child`` appeared, as a consumer diffing old->new would see it."""
    seen: Counter[str] = Counter()
    for u in updates:
        old = (u.old or {}).get(child) or {}
        new = (u.new or {}).get(child) or {}
        seen.update(k for k in new if k not in old)
    return seen


# -- syncing and following ------------------------------------------------------------------


def test_initial_sync_then_puts_and_patches(
    target: Target, auth: Auth, db: Rtdb, base: str
) -> None:
    db.set(base, {"a": 1, "b": {"c": 2}})

    async def main() -> Recorder:
        rec = Recorder()
        listener, task = start(target, auth, base, rec)
        await until(lambda: len(rec.updates) == 1)
        assert rec.updates[0] == Update(None, {"a": 1, "b": {"c": 2}}, True)
        await asyncio.to_thread(db.set, f"{base}/b/d", [10, 20])
        await until(lambda: len(rec.updates) == 2)
        await asyncio.to_thread(db.update, base, {"a": None, "b/c": 3, "e/f": "g"})
        await until(lambda: len(rec.updates) == 3)
        await asyncio.to_thread(db.delete, f"{base}/b")
        await until(lambda: len(rec.updates) == 4)
        assert listener.mirror == {"e": {"f": "g"}}
        await finish(listener, task)
        return rec

    rec = asyncio.run(main())
    news = [u.new for u in rec.updates]
    assert news == [
        {"a": 1, "b": {"c": 2}},
        {"a": 1, "b": {"c": 2, "d": {"0": 10, "1": 20}}},
        {"b": {"c": 3, "d": {"0": 10, "1": 20}}, "e": {"f": "g"}},
        {"e": {"f": "g"}},
    ]
    assert [u.resync for u in rec.updates] == [True, False, False, False]
    for before, after in zip(rec.updates, rec.updates[1:], strict=False):
        assert after.old is before.new
    assert rec.statuses == ["connecting", "live", "stopped"]


def test_updates_share_unchanged_branches(target: Target, auth: Auth, db: Rtdb, base: str) -> None:
    db.set(base, {"big": {str(i): i for i in range(100)}, "small": {"n": 0}})

    async def main() -> Recorder:
        rec = Recorder()
        listener, task = start(target, auth, base, rec)
        await until(lambda: len(rec.updates) == 1)
        await asyncio.to_thread(db.set, f"{base}/small/n", 1)
        await until(lambda: len(rec.updates) == 2)
        await finish(listener, task)
        return rec

    rec = asyncio.run(main())
    last = rec.updates[-1]
    assert last.new["big"] is last.old["big"]
    assert last.old["small"] == {"n": 0} and last.new["small"] == {"n": 1}


def test_listening_to_nothing(target: Target, auth: Auth, db: Rtdb, base: str) -> None:
    async def main() -> Recorder:
        rec = Recorder()
        listener, task = start(target, auth, f"{base}/empty", rec)
        await until(lambda: len(rec.updates) == 1)
        await asyncio.to_thread(db.set, f"{base}/empty/x", 1)
        await until(lambda: len(rec.updates) == 2)
        await finish(listener, task)
        return rec

    rec = asyncio.run(main())
    assert rec.updates[0] == Update(None, None, True)
    assert rec.updates[1] == Update(None, {"x": 1}, False)


# -- reconnecting -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["close", "reset"])
def test_server_drop_resyncs_exactly_once(
    target: Target, auth: Auth, db: Rtdb, base: str, fb_emulator: ThreadedEmulator, how: str
) -> None:
    writer = Rtdb(target, auth)

    def while_disconnected(status: str) -> None:
        if status == "reconnecting":  # before any new connection is attempted
            for i in range(3):
                writer.set(f"{base}/msgs/during{i}", i)
            writer.set(f"{base}/msgs/before0", None)
            writer.set(f"{base}/flag", None)

    def drop() -> None:
        if how == "close":
            assert drop_streams(fb_emulator) >= 1
        else:  # an abrupt TCP reset, as when the server sheds a stalled client

            def reset() -> int:
                streams = [s for s in fb_emulator.server.rtdb.active_streams if s.on_overflow]
                for s in streams:
                    s.on_overflow()
                return len(streams)

            assert fb_emulator.call(reset) >= 1

    async def main() -> Recorder:
        rec = Recorder(while_disconnected)
        await asyncio.to_thread(db.set, f"{base}/flag", True)
        listener, task = start(target, auth, base, rec)
        await until(lambda: rec.statuses[-1:] == ["live"])
        for i in range(3):
            await asyncio.to_thread(db.set, f"{base}/msgs/before{i}", i)
        await until(lambda: len(rec.updates) == 4)
        drop()
        await until(lambda: len(rec.resyncs) == 2)
        for i in range(3):
            await asyncio.to_thread(db.set, f"{base}/msgs/after{i}", i)
        await until(lambda: (listener.mirror or {}).get("msgs", {}).get("after2") == 2)
        await finish(listener, task)
        return rec

    rec = asyncio.run(main())
    assert rec.statuses == ["connecting", "live", "reconnecting", "live", "stopped"]
    resync = rec.resyncs[1]
    assert set(resync.new["msgs"]) - set(resync.old["msgs"]) == {"during0", "during1", "during2"}
    assert set(resync.old["msgs"]) - set(resync.new["msgs"]) == {"before0"}
    assert resync.old["flag"] is True and "flag" not in resync.new
    counts = added_keys(rec.updates, "msgs")
    assert set(counts.values()) == {1}  # nothing shown twice
    assert set(counts) == {f"{p}{i}" for p in ("before", "during", "after") for i in range(3)}
    assert rec.updates[-1].new["msgs"] == {
        "before1": 1, "before2": 2, "during0": 0, "during1": 1, "during2": 2,
        "after0": 0, "after1": 1, "after2": 2,
    }  # fmt: skip


@pytest.fixture(scope="module")
def quiet_emulator() -> Iterator[ThreadedEmulator]:
    """An emulator that sends keep-alives only every 30 s, like production."""
    with ThreadedEmulator(keep_alive_seconds=30.0) as emu:
        yield emu


def test_the_keep_alive_interval_is_learned_from_the_stream(
    target: Target, auth: Auth, base: str
) -> None:
    """Assumed 30 s until two keep-alives in a row show the server's real interval (1 s
    here): then a stall is noticed after 2.5 s, not 75 s."""

    async def main() -> Listener:
        rec = Recorder()
        listener, task = start(target, auth, base, rec, keep_alive=30.0)
        assert listener.silence_limit == 75.0
        await until(lambda: listener.silence_limit < 10, timeout=8)
        await finish(listener, task)
        return listener

    listener = asyncio.run(main())
    assert 0.8 <= listener.keep_alive <= 1.6
    assert listener.silence_limit == pytest.approx(2.5 * listener.keep_alive)


def test_silence_beyond_the_keep_alive_reconnects(
    quiet_emulator: ThreadedEmulator, tmp_path: Any
) -> None:
    env = {**quiet_emulator.env(), "XDG_CONFIG_HOME": str(tmp_path)}
    from emdash_fb.firebase.target import resolve_target

    target = resolve_target(env)
    auth = Auth(target, IdentityStore(target, "default", env))
    db = Rtdb(target, auth)

    async def main() -> Recorder:
        rec = Recorder()
        listener, task = start(target, auth, "quiet", rec, keep_alive=0.4)  # dead after 1 s
        await until(lambda: rec.statuses[-1:] == ["live"])
        started = time.monotonic()
        await until(lambda: "reconnecting" in rec.statuses, timeout=3)
        assert 0.8 < time.monotonic() - started < 2.5
        await until(lambda: rec.statuses[-1] == "live")
        await asyncio.to_thread(db.set, "quiet/x", 1)
        await until(lambda: listener.mirror == {"x": 1}, timeout=0.9)
        await finish(listener, task)
        return rec

    rec = asyncio.run(main())
    assert len(rec.resyncs) >= 2


def test_auth_revoked_reconnects_with_a_new_token(
    target: Target, auth: Auth, db: Rtdb, base: str, fb_emulator: ThreadedEmulator
) -> None:
    ident = auth.sign_in_anonymous("short")
    short = mint_id_token(
        project_id=fb_emulator.project_id, uid=ident.uid, provider="anonymous", lifetime=2
    )
    # The saved expiry claims an hour, so only the server's auth_revoked can prompt a refresh.
    auth.store.save(dataclasses.replace(ident, id_token=short, expires_at=time.time() + 3600))
    db.set(base, {"n": 0})

    async def main() -> tuple[Recorder, float]:
        rec = Recorder()
        listener, task = start(target, auth, base, rec, backoff_initial=5.0)
        await until(lambda: rec.statuses[-1:] == ["live"])
        opened = time.monotonic()
        await until(lambda: rec.statuses.count("live") == 2, timeout=5)
        back = time.monotonic() - opened
        await asyncio.to_thread(db.set, f"{base}/n", 1)
        await until(lambda: listener.mirror == {"n": 1})
        await finish(listener, task)
        return rec, back

    rec, back = asyncio.run(main())
    assert back < 4  # straight back: no 5 s backoff for a revoked token
    assert rec.statuses == ["connecting", "live", "reconnecting", "live", "stopped"]
    saved = auth.store.load()
    assert saved is not None and saved.id_token != short and saved.uid == ident.uid


def test_token_is_swapped_before_it_expires_without_a_gap(
    target: Target, auth: Auth, db: Rtdb, base: str
) -> None:
    ident = auth.sign_in_anonymous("swap")
    time.sleep(1.1)  # so the refreshed token differs (tokens carry whole seconds)
    auth.store.save(dataclasses.replace(ident, expires_at=time.time() + 3.0))
    auth.refresh_margin = 1.0  # accept it as it is at first
    db.set(base, {"n": 0})

    async def main() -> Recorder:
        rec = Recorder()
        listener, task = start(target, auth, base, rec, token_margin=2.0)
        await until(lambda: len(rec.resyncs) == 2, timeout=5)
        await asyncio.to_thread(db.set, f"{base}/n", 1)
        await until(lambda: listener.mirror == {"n": 1})
        await finish(listener, task)
        return rec

    rec = asyncio.run(main())
    assert rec.statuses == ["connecting", "live", "stopped"]  # never "reconnecting"
    assert rec.resyncs[1].old == rec.resyncs[1].new == {"n": 0}
    saved = auth.store.load()
    assert saved is not None and saved.id_token != ident.id_token
    assert saved.expires_at - time.time() > 3000


# -- stopping -----------------------------------------------------------------------------


def test_stop_leaves_no_running_tasks(target: Target, auth: Auth, base: str) -> None:
    async def main() -> set[asyncio.Task]:
        rec = Recorder()
        listener, task = start(target, auth, base, rec)
        await until(lambda: rec.statuses[-1:] == ["live"])
        await finish(listener, task)
        await asyncio.sleep(0)
        return asyncio.all_tasks() - {asyncio.current_task()}

    assert asyncio.run(main()) == set()


def test_stop_during_backoff(target: Target, auth: Auth) -> None:
    dead = dataclasses.replace(target, database_url="http://127.0.0.1:9")

    async def main() -> tuple[Recorder, set[asyncio.Task]]:
        rec = Recorder()
        listener, task = start(dead, auth, "x", rec, backoff_initial=30.0)
        await until(lambda: "reconnecting" in rec.statuses)
        started = time.monotonic()
        await finish(listener, task)
        assert time.monotonic() - started < 1
        return rec, asyncio.all_tasks() - {asyncio.current_task()}

    rec, left = asyncio.run(main())
    assert rec.statuses == ["connecting", "reconnecting", "stopped"]
    assert left == set()


def test_stop_from_another_thread(target: Target, auth: Auth, base: str) -> None:
    rec = Recorder()
    listener = Listener(target, auth, base, rec.update, rec.status, **FAST)
    thread = threading.Thread(target=lambda: asyncio.run(listener.run()))
    thread.start()
    deadline = time.monotonic() + 5
    while listener.status != "live" and time.monotonic() < deadline:
        time.sleep(0.01)
    listener.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert rec.statuses == ["connecting", "live", "stopped"]


def test_stop_before_run_and_run_only_once(target: Target, auth: Auth, base: str) -> None:
    rec = Recorder()
    listener = Listener(target, auth, base, rec.update, rec.status)
    listener.stop()
    asyncio.run(listener.run())
    assert rec.statuses == ["connecting", "stopped"] and rec.updates == []
    with pytest.raises(RuntimeError, match="runs once"):
        asyncio.run(listener.run())


def test_a_consumer_error_propagates(target: Target, auth: Auth, base: str) -> None:
    statuses: list[str] = []

    def broken(update: Update) -> None:
        raise ValueError("consumer bug")

    listener = Listener(target, auth, base, broken, statuses.append, **FAST)
    with pytest.raises(ValueError, match="consumer bug"):
        asyncio.run(asyncio.wait_for(listener.run(), 5))
    assert statuses[-1] == "stopped"


# -- backoff ------------------------------------------------------------------------------


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.close()


def attempts_in(
    target: Target, auth: Auth, stub: StubServer, seconds: float, **kw: Any
) -> Recorder:
    moved = dataclasses.replace(target, database_url=stub.url)

    async def main() -> Recorder:
        rec = Recorder()
        listener, task = start(moved, auth, "x", rec, **{"backoff_max": 5.0, **kw})
        await asyncio.sleep(seconds)
        await finish(listener, task)
        return rec

    return asyncio.run(main())


def test_failed_connections_back_off_exponentially(
    target: Target, auth: Auth, stub: StubServer
) -> None:
    stub.script = [Step(503, {"error": "busy"})]
    attempts_in(target, auth, stub, 1.5, backoff_initial=0.05)
    # sleeps of 0.05*2**n*[0.5..1]: at most 6 fit in 1.5 s (a fixed 0.05 s would allow 30+)
    assert 3 <= len(stub.seen) <= 7


def test_backoff_returns_to_its_floor_when_a_connection_delivers(
    target: Target, auth: Auth, stub: StubServer
) -> None:
    """A connection that delivered its first event resets the backoff: a view comes back as
    soon as the network does, not after a long, grown wait."""
    flapping = Step(stream=b'event: put\ndata: {"path":"/","data":1}\n\n')  # live, then gone
    stub.script = [flapping]
    rec = attempts_in(target, auth, stub, 1.5, backoff_initial=0.05)
    assert rec.statuses[:4] == ["connecting", "live", "reconnecting", "live"]
    assert len(stub.seen) >= 12  # 0.05 s (x 0.5..1) every time, never doubling
    stub.seen.clear()
    stub.script = [Step(503, {"error": "busy"})]  # never delivers: it keeps doubling
    attempts_in(target, auth, stub, 1.5, backoff_initial=0.05)
    assert len(stub.seen) <= 7


def test_the_default_backoff_is_capped_near_two_seconds(
    target: Target, auth: Auth, stub: StubServer
) -> None:
    listener = Listener(target, auth, "x", lambda u: None)
    assert max(listener._backoff(n) for n in range(20) for _ in range(20)) <= 2.0


def test_backoff_grows_while_no_token_can_be_had_after_a_live_period(
    target: Target, auth: Auth, base: str, fb_emulator: ThreadedEmulator, monkeypatch: Any
) -> None:
    calls: list[float] = []

    def sign_in_down(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        raise NetworkError("can't reach the sign-in service")

    async def main() -> Recorder:
        rec = Recorder()
        listener, task = start(target, auth, base, rec, backoff_initial=0.05)
        await until(lambda: rec.statuses[-1:] == ["live"])
        monkeypatch.setattr(auth, "current", sign_in_down)
        monkeypatch.setattr(auth, "refresh", sign_in_down)
        drop_streams(fb_emulator)
        await asyncio.sleep(1.5)
        await finish(listener, task)
        return rec

    rec = asyncio.run(main())
    assert rec.statuses == ["connecting", "live", "reconnecting", "stopped"]
    assert 3 <= len(calls) <= 7  # 0.05 s, 0.1 s, 0.2 s... not 0.05 s forever


def test_a_burst_of_held_keep_alives_does_not_shrink_the_silence_limit(
    target: Target, auth: Auth
) -> None:
    listener = Listener(target, auth, "x", lambda u: None, keep_alive=30.0)
    listener._learn_keep_alive(1.0)
    assert listener.silence_limit == 2.5
    for _ in range(10):  # a stall's held keep-alives, delivered at once
        listener._learn_keep_alive(0.001)
    assert listener.silence_limit == 2.5
    for stall in (1.8, 2.6, 3.4):  # each stall's first held keep-alive: one long gap each
        listener._learn_keep_alive(stall)
        listener._learn_keep_alive(1.0)
    assert listener.silence_limit == 2.5  # so the next stall is still noticed in 2.5 s
