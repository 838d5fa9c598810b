"""Which sessions a runner serves: allowed owners only, its --serve filter, fair turns.

Real runners (a background thread, and the CLI as a process) against the
emulator with the real rules; owners are allowed with the product's admin
path, as `emdash-fb admin allow` does.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.firebase.admin import AdminDatabase
from emdash_fb.runner.agents import load_agent
from emdash_fb.session import allowlist
from emdash_fb.session.allowlist import ServeSpec
from tests.runner.test_runner import owner_get, replies, wait_for
from tests.support.runner import BackgroundRunner

MakeUser = Callable[..., AppContext]


def revoke(emu: ThreadedEmulator, uid: str) -> None:
    db = AdminDatabase(project_id=emu.project_id, env=emu.env())
    try:
        assert allowlist.revoke(db, "uid", uid)
    finally:
        db.close()


def answered(app: AppContext, sid: str, mid: str) -> bool:
    return mid in replies(app.sessions.state(sid))


def test_a_revoked_owner_is_no_longer_served(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    sid = alice.sessions.share().session
    other = bob.sessions.share().session
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "0"})):
        first = alice.sessions.send(sid, "hello").message
        wait_for(lambda: answered(alice, sid, first))
        revoke(rules_emu, alice.auth.current().uid)
        time.sleep(6)  # the runner trusts its read of the allowlist for 5 s
        second = alice.sessions.send(sid, "still there?").message
        control = bob.sessions.send(other, "and me?").message
        wait_for(lambda: answered(bob, other, control))  # the runner is alive and serving
        time.sleep(1.5)
        assert not answered(alice, sid, second)
        assert owner_get(rules_emu, f"sessions/{sid}/lock") is None  # never even claimed
        assert owner_get(rules_emu, f"sessions/{sid}/turns/{second}") is None


def test_serve_names_the_owners_a_runner_works_for(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    mine = alice.sessions.share().session
    theirs = bob.sessions.share().session
    spec = ServeSpec.parse([f"uid:{alice.auth.current().uid}"])
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "0"}), serve=spec):
        a = alice.sessions.send(mine, "for my runner").message
        b = bob.sessions.send(theirs, "for someone else's").message
        wait_for(lambda: answered(alice, mine, a))
        time.sleep(1.5)
        assert not answered(bob, theirs, b)
    # bob's own runner picks it up
    with BackgroundRunner(
        rules_emu,
        load_agent("echo", {"rate": "0"}),
        serve=ServeSpec.parse([f"uid:{bob.auth.current().uid}"]),
    ):
        wait_for(lambda: answered(bob, theirs, b))


def test_a_busy_session_does_not_starve_another(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    """One turn at a time (concurrency 1): after each turn the runner goes to the session
    it served longest ago, so bob's one message doesn't wait behind all of alice's."""
    alice, bob = make_user("alice"), make_user("bob")
    busy = alice.sessions.share().session
    quiet = bob.sessions.share().session
    words = " ".join(["busy"] * 20)
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "100"}), concurrency=1):
        flood = [alice.sessions.send(busy, f"{i} {words}").message for i in range(5)]
        wait_for(lambda: owner_get(rules_emu, f"sessions/{busy}/turns/{flood[0]}"))
        mine = bob.sessions.send(quiet, "just one").message
        wait_for(lambda: all(answered(alice, busy, m) for m in flood), timeout=60)
        wait_for(lambda: answered(bob, quiet, mine))
    ended = {m: owner_get(rules_emu, f"sessions/{busy}/turns/{m}/endedAt") for m in flood}
    bob_ended = owner_get(rules_emu, f"sessions/{quiet}/turns/{mine}/endedAt")
    after_bob = [m for m in flood if ended[m] > bob_ended]
    assert len(after_bob) >= 3, (ended, bob_ended)  # bob went second, not sixth


def test_the_runner_cli_names_itself_without_the_host(
    make_user: MakeUser, rules_emu: ThreadedEmulator
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    before = set(owner_get(rules_emu, "runners") or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "emdash_fb.cli.main", "runner", "--serve", "allowlist"],
        env={**env, **rules_emu.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        mine = wait_for(lambda: set(owner_get(rules_emu, "runners") or {}) - before, timeout=30)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    host = socket.gethostname()
    (rid,) = mine
    assert re.fullmatch(r"runner:r-[0-9a-f]{8}", rid), rid  # random: nothing of the host
    assert host not in rid
    assert "every owner on the project's allowlist" in out
    assert host not in out.split("ready", 1)[1].splitlines()[0]


def test_a_bad_serve_spec_is_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    done = subprocess.run(
        [sys.executable, "-m", "emdash_fb.cli.main", "runner", "--serve", "nobody@"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--serve" in done.stderr, done.stderr


def test_admin_commands_manage_the_allowlist(rules_emu: ThreadedEmulator, tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    env = {**env, **rules_emu.env(), "XDG_CONFIG_HOME": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "emdash_fb.cli.main", "admin", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    done = cli("allow", "email:Ada@Example.com", "domain:corp.example", "uid:u-1", "--json")
    assert done.returncode == 0, done.stderr
    listed = json.loads(cli("list", "--json").stdout)
    assert {"kind": "email", "value": "ada@example.com"} in listed
    assert {"kind": "domain", "value": "corp.example"} in listed
    assert {"kind": "uid", "value": "u-1"} in listed
    assert owner_get(rules_emu, "allow/email/ada@example,com") is True
    assert "revoked uid:u-1" in cli("revoke", "uid:u-1").stdout
    assert "was not on the allowlist" in cli("revoke", "uid:u-1").stdout
    bad = cli("allow", "email:@nope")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    for kind, value in [("email", "ada@example.com"), ("domain", "corp.example")]:
        assert cli("revoke", f"{kind}:{value}").returncode == 0


def test_a_bad_runner_id_is_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    done = subprocess.run(
        [sys.executable, "-m", "emdash_fb.cli.main", "runner", "--id", "my.host/1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--id" in done.stderr
