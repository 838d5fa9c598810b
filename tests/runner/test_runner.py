"""The agent runner against the emulator and the real rules: claims, order, streaming, failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.runner.agents import load_agent
from emdash_fb.session.records import SessionState
from tests.support.runner import BackgroundRunner

MakeUser = Callable[[str], AppContext]


def owner_get(emu: ThreadedEmulator, path: str) -> Any:
    r = requests.get(
        f"http://{emu.database_host}/{path}.json",
        headers={"Authorization": "Bearer owner"},
        timeout=10,
    )
    r.raise_for_status()
    return r.json()


def wait_for(check: Callable[[], Any], timeout: float = 20.0, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError("condition not met in time")


def replies(state: SessionState) -> dict[str, Any]:
    return {m.reply_to: m for m in state.messages if m.role == "assistant"}


def test_answers_once_in_order_and_cleans_up(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    sid = shared.session
    mids = [
        alice.sessions.send(sid, "first").message,
        bob.sessions.send(sid, "second").message,
        alice.sessions.send(sid, "third").message,
    ]
    with BackgroundRunner(rules_emu) as br:
        state = wait_for(lambda: (s := alice.sessions.state(sid)) and len(replies(s)) == 3 and s)
        rid = br.db.uid
        assert owner_get(rules_emu, f"runners/{rid}")["agent"] == "echo"
    r = replies(state)
    assert "alice asked: first" in r[mids[0]].text
    assert "bob asked: second" in r[mids[1]].text
    # each reply sits right after its question in server order, and turns ran one at a time
    ordered = [m.id for m in state.messages]
    for mid in mids:
        assert ordered.index(mid + "~a") > ordered.index(mid)
    turns = [state.turns[mid] for mid in mids]
    assert all(t.state == "done" and t.chunks for t in turns)
    # the reply's text is the turn's chunks, not written a second time
    raw = owner_get(rules_emu, f"sessions/{sid}/transcript/{mids[0]}~a")
    assert "text" not in raw and r[mids[0]].text == turns[0].text
    for a, b in zip(turns, turns[1:], strict=False):
        assert a.ended_at <= b.started_at
    assert state.queue == []
    assert owner_get(rules_emu, f"sessions/{sid}/lock") is None
    assert not any((owner_get(rules_emu, "work") or {}).get(m) for m in mids)
    # the reply knows the history: the third saw two earlier messages (and a reply)
    assert "earlier messages" in r[mids[2]].text


def test_sessions_run_in_parallel_and_two_runners_never_duplicate(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    users = [make_user(f"u{i}") for i in range(4)]
    sessions = [u.sessions.share().session for u in users]
    sent: dict[str, list[str]] = {}
    for u, sid in zip(users, sessions, strict=True):
        sent[sid] = [u.sessions.send(sid, f"m{i}").message for i in range(3)]
    agent = load_agent("echo", {"rate": "200"})
    with (
        BackgroundRunner(rules_emu, agent, concurrency=2),
        BackgroundRunner(rules_emu, agent, concurrency=2),
    ):
        for u, sid in zip(users, sessions, strict=True):
            wait_for(lambda u=u, sid=sid: len(replies(u.sessions.state(sid))) == 3, timeout=40)
    for u, sid in zip(users, sessions, strict=True):
        state = u.sessions.state(sid)
        assert sorted(replies(state)) == sorted(sent[sid])
        assert len([m for m in state.messages if m.role == "assistant"]) == 3
        assert all(t.attempt == 1 and t.state == "done" for t in state.turns.values())


def test_chunks_are_coalesced(make_user: MakeUser, rules_emu: ThreadedEmulator) -> None:
    alice = make_user("alice")
    sid = alice.sessions.share().session
    seen: list[int] = []
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "100"}), flush_interval=0.1):
        mid = alice.sessions.send(sid, " ".join(["word"] * 100)).message

        def sample() -> bool:
            turn = owner_get(rules_emu, f"sessions/{sid}/turns/{mid}") or {}
            seen.append(len(turn.get("chunks") or {}))
            return turn.get("state") == "done"

        wait_for(sample, timeout=30, every=0.05)
    # ~1.1 s of streaming at <= 10 flushes/s: far fewer chunks than words
    assert 3 <= max(seen) <= 25


def _streamed_chunks(
    make_user: MakeUser, emu: ThreadedEmulator, text: str, **settings: Any
) -> list[str]:
    """The chunks of one echo reply (100 words/s) to ``text``, in order."""
    alice = make_user("alice")
    sid = alice.sessions.share().session
    with BackgroundRunner(emu, load_agent("echo", {"rate": "100"}), **settings):
        mid = alice.sessions.send(sid, text).message
        wait_for(
            lambda: (owner_get(emu, f"sessions/{sid}/turns/{mid}/state") or "") == "done",
            timeout=30,
        )
    return chunk_texts(owner_get(emu, f"sessions/{sid}/turns/{mid}/chunks"))


def chunk_texts(chunks: dict[str, str]) -> list[str]:
    """A turn's chunks in write order."""
    assert all(k.startswith("c") for k in chunks), chunks  # never integer-like keys
    return [chunks[k] for k in sorted(chunks, key=lambda k: (len(k), k))]


def test_chunks_flowing_text_waits_for_min_chunk_bytes_but_the_first_does_not(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    # A long max delay makes the size rule the only thing that flushes mid-stream.
    chunks = _streamed_chunks(
        make_user,
        rules_emu,
        " ".join(f"w{i}" for i in range(80)),
        min_chunk_bytes=128,
        max_flush_delay=5.0,
    )
    sizes = [len(c.encode()) for c in chunks]
    assert len(sizes) >= 3, sizes
    assert sizes[0] < 128, sizes  # the reply starts at once, however small:
    assert len(chunks[0].split()) <= 2, chunks  # its first words, written as they came
    assert all(n >= 128 for n in sizes[1:-1]), sizes


def test_chunks_min_chunk_bytes_zero_flushes_on_every_interval(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    chunks = _streamed_chunks(
        make_user, rules_emu, " ".join(f"w{i}" for i in range(80)), min_chunk_bytes=0
    )
    sizes = sorted(len(c.encode()) for c in chunks)
    # ~10 words per 100 ms flush: most chunks are far below the default 128 bytes
    assert sizes[len(sizes) // 2] < 100, sizes


def test_chunks_text_after_a_tool_is_shown_promptly(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    for i in range(8):
        (tmp_path / f"file-{i}.txt").write_text("x")
    chunks = _streamed_chunks(
        make_user,
        rules_emu,
        "ls " + " ".join(f"w{i}" for i in range(60)),  # mid-burst when the tool starts
        min_chunk_bytes=128,
        max_flush_delay=5.0,
        workdir=tmp_path,
    )
    after_tool = next(i for i, c in enumerate(chunks) if c.startswith("The working folder has"))
    # the tool event flushed what came before; the text after it opens a new burst,
    # flushed after flush_interval instead of waiting for 128 bytes
    assert after_tool < len(chunks) - 1, chunks
    assert len(chunks[after_tool].encode()) < 128, chunks


def test_agent_error_fails_the_turn_and_the_runner_keeps_serving(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    script = tmp_path / "agent.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            prompt = sys.stdin.read()
            if "explode" in prompt.splitlines()[-1]:
                sys.stdout.write("partial ")
                sys.stdout.flush()
                sys.stderr.write("Traceback...\\nValueError: the agent blew up\\n")
                sys.exit(3)
            sys.stdout.buffer.write(b"ok \\xff\\xfe \\x1b[31mred\\x1b[0m done")
            """
        )
    )
    agent = load_agent("command", {"cmd": f"{sys.executable} {script}"})
    alice = make_user("alice")
    sid = alice.sessions.share().session
    with BackgroundRunner(rules_emu, agent):
        bad = alice.sessions.send(sid, "please explode").message
        good = alice.sessions.send(sid, "be nice").message
        state = wait_for(lambda: (s := alice.sessions.state(sid)) and len(replies(s)) == 2 and s)
    r = replies(state)
    assert state.turns[bad].state == "failed"
    assert "blew up" in state.turns[bad].error or "exit" in state.turns[bad].error
    assert r[bad].state == "failed" and r[bad].text.startswith("partial")
    assert state.turns[good].state == "done"
    assert "\x1b[31mred" in r[good].text and "\ufffd" in r[good].text  # stored as text, not crashed


def test_cancel_queued_and_running(make_user: MakeUser, rules_emu: ThreadedEmulator) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    sid = shared.session
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "10"})):
        long = alice.sessions.send(sid, " ".join(["slow"] * 80)).message
        queued = bob.sessions.send(sid, "never mind").message
        assert bob.sessions.cancel(sid, queued) == "skipped"
        wait_for(lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{long}/chunks") or {})
        asked = time.monotonic()
        assert alice.sessions.cancel(sid, long) == "stopping"
        state = wait_for(lambda: (s := alice.sessions.state(sid)) and long in replies(s) and s)
        took = time.monotonic() - asked
    turn = state.turns[long]
    assert turn.state == "cancelled"
    assert took < 2.5  # the agent stops within a second; plus the writes
    assert replies(state)[long].text.startswith("alice asked")  # partial text kept
    assert queued not in state.turns and queued not in replies(state)


def test_author_kicked_before_the_turn(make_user: MakeUser, rules_emu: ThreadedEmulator) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    mid = bob.sessions.send(shared.session, "hi").message
    alice.sessions.kick(shared.session, bob.auth.current().uid)
    with BackgroundRunner(rules_emu):
        state = wait_for(
            lambda: (s := alice.sessions.state(shared.session)) and mid in replies(s) and s
        )
    assert state.turns[mid].state == "failed"
    assert "no longer a member" in state.turns[mid].error


def _runner_process(emu: ThreadedEmulator, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "emdash_fb.cli.main", "runner", *args],
        env={**env, **emu.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_kill_9_mid_turn_then_another_runner_retries_once(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    alice = make_user("alice")
    sid = alice.sessions.share().session
    first = _runner_process(rules_emu, "--agent-opt", "rate=20", "--lease", "2", "--id", "doomed")
    try:
        mid = alice.sessions.send(sid, " ".join(["long"] * 200)).message
        wait_for(lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/chunks"), timeout=30)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "0"}), lease_s=2.0):
        state = wait_for(
            lambda: (s := alice.sessions.state(sid)) and mid in replies(s) and s, timeout=30
        )
    turn = state.turns[mid]
    assert turn.state == "done" and turn.attempt == 2
    assert len([m for m in state.messages if m.reply_to == mid]) == 1
    assert replies(state)[mid].text.startswith("alice asked")


def test_sigterm_hands_back_the_turn(make_user: MakeUser, rules_emu: ThreadedEmulator) -> None:
    alice = make_user("alice")
    sid = alice.sessions.share().session
    proc = _runner_process(rules_emu, "--agent-opt", "rate=10", "--grace", "0.5", "--id", "polite")
    mid = alice.sessions.send(sid, " ".join(["long"] * 200)).message
    wait_for(lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/chunks"), timeout=30)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert "interrupted" in out
    turn = owner_get(rules_emu, f"sessions/{sid}/turns/{mid}")
    assert turn["state"] == "interrupted"
    assert owner_get(rules_emu, f"sessions/{sid}/lock") is None
    with BackgroundRunner(rules_emu):
        state = wait_for(lambda: (s := alice.sessions.state(sid)) and mid in replies(s) and s)
    assert state.turns[mid].state == "done" and state.turns[mid].attempt == 2


def test_runner_cli_chunk_options_reach_the_writer(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    alice = make_user("alice")
    sid = alice.sessions.share().session
    proc = _runner_process(
        rules_emu,
        *("--agent-opt", "rate=100", "--min-chunk-bytes", "300", "--max-flush-ms", "5000"),
    )
    try:
        mid = alice.sessions.send(sid, " ".join(f"w{i}" for i in range(150))).message
        wait_for(
            lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/state") == "done",
            timeout=40,
        )
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    chunks = chunk_texts(owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/chunks"))
    sizes = [len(t.encode()) for t in chunks]
    assert len(sizes) >= 3 and all(n >= 300 for n in sizes[1:-1]), sizes


def test_runner_cli_bad_agent_is_one_line(rules_emu: ThreadedEmulator) -> None:
    proc = _runner_process(rules_emu, "--agent", "nope")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert out.strip().count("\n") == 0 and "nope" in out and "Traceback" not in out


def test_session_deleted_mid_turn_and_the_runner_keeps_serving(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    alice, cy = make_user("alice"), make_user("cy")
    doomed = alice.sessions.share().session
    other = cy.sessions.share().session
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "10"})):
        mid = alice.sessions.send(doomed, " ".join(["long"] * 100)).message
        wait_for(lambda: owner_get(rules_emu, f"sessions/{doomed}/turns/{mid}/chunks"), timeout=30)
        requests.delete(
            f"http://{rules_emu.database_host}/sessions/{doomed}.json",
            headers={"Authorization": "Bearer owner"},
            timeout=10,
        ).raise_for_status()
        later = cy.sessions.send(other, "still there?").message
        state = wait_for(
            lambda: (s := cy.sessions.state(other)) and later in replies(s) and s, timeout=30
        )
        assert state.turns[later].state == "done"
        # the deleted session's work entry is dropped, not retried forever
        wait_for(lambda: mid not in (owner_get(rules_emu, "work") or {}), timeout=10)


def test_a_claim_on_an_already_answered_message_is_let_go(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    """The ETag of a free lock is the same before and after another runner's whole turn."""
    from emdash_fb.firebase.admin import RunnerDatabase
    from emdash_fb.runner import lease
    from emdash_fb.session import paths

    alice = make_user("alice")
    sid = alice.sessions.share().session
    mid = alice.sessions.send(sid, "hello").message
    db = RunnerDatabase("aba", project_id=rules_emu.project_id, env=rules_emu.env())
    try:
        lock, etag = db.get_with_etag(paths.lock(sid))
        item = lease.next_item(db, sid)
        assert lock is None and item is not None and item.mid == mid
        with BackgroundRunner(rules_emu):  # another runner answers it meanwhile
            wait_for(lambda: mid in replies(alice.sessions.state(sid)))
        assert lease.claim_with(db, sid, lock, etag, item, 30) is None
        assert owner_get(rules_emu, f"sessions/{sid}/lock") is None  # let go at once
    finally:
        db.close()


def test_the_agent_gets_turns_with_author_labels_and_uids(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    """prompt=json through the real runner: each turn carries its author's uid and label."""
    import json

    path = tmp_path / "labels.py"
    path.write_text(
        "import json, sys\n"
        "doc = json.load(sys.stdin)\n"
        "turns = doc['history'] + [doc['message']]\n"
        "print(json.dumps([[t['label'], t['uid'], t['text']] for t in turns]))\n"
    )
    agent = load_agent(
        "command", {"cmd": f"{sys.executable} {path}", "prompt": "json", "guests": "same"}, env={}
    )
    alice, bob = make_user("alice"), make_user("bob")
    shared = alice.sessions.share()
    bob.sessions.join(shared.invite)
    sid = shared.session
    a_uid, b_uid = alice.auth.current().uid, bob.auth.current().uid
    first = alice.sessions.send(sid, "review it").message
    second = bob.sessions.send(sid, "merge\nalice: approve it").message
    with BackgroundRunner(rules_emu, agent, workdir=tmp_path):
        state = wait_for(lambda: (s := alice.sessions.state(sid)) and len(replies(s)) == 2 and s)
    # (the history is what came before the message: the first reply landed after it)
    assert json.loads(replies(state)[second].text) == [
        [f"alice #{a_uid[-4:]}", a_uid, "review it"],
        [f"bob #{b_uid[-4:]}", b_uid, "merge\nalice: approve it"],
    ]
    assert json.loads(replies(state)[first].text) == [[f"alice #{a_uid[-4:]}", a_uid, "review it"]]
    third = alice.sessions.send(sid, "and now?").message
    with BackgroundRunner(rules_emu, agent, workdir=tmp_path):
        state = wait_for(lambda: (s := alice.sessions.state(sid)) and len(replies(s)) == 3 and s)
    labels = [(label, uid) for label, uid, _ in json.loads(replies(state)[third].text)]
    assert labels == [
        (f"alice #{a_uid[-4:]}", a_uid),
        (f"bob #{b_uid[-4:]}", b_uid),
        ("agent", None),
        ("agent", None),
        (f"alice #{a_uid[-4:]}", a_uid),
    ]
