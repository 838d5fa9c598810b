"""The product's suites run against an emulator someone else started (``--emulator=external``):
here, ours in another process, found through the standard environment variables only."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_rules_suite_runs_against_an_external_emulator(tmp_path: Path) -> None:
    db, auth = free_port(), free_port()
    (tmp_path / "firebase.json").write_text(
        json.dumps(
            {
                "database": {"rules": str(REPO / "rules" / "database.rules.json")},
                "emulators": {
                    "database": {"host": "127.0.0.1", "port": db},
                    "auth": {"host": "127.0.0.1", "port": auth},
                },
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    server = subprocess.Popen(
        [sys.executable, "-m", "emdash_fb.cli.main", "emulators", "start",
         "--config", str(tmp_path / "firebase.json")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", db)) == 0:
                    break
            assert time.monotonic() < deadline, "the emulator never listened"
            time.sleep(0.1)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             "--emulator=external", "tests/rules/test_send.py", "tests/rules/test_approvals.py"],
            cwd=REPO,
            env={
                **env,
                "FIREBASE_DATABASE_EMULATOR_HOST": f"127.0.0.1:{db}",
                "FIREBASE_AUTH_EMULATOR_HOST": f"127.0.0.1:{auth}",
            },
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(15)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
    # without the variables the mode says what it needs, in one line
    bare = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--emulator=external",
         "tests/rules/test_send.py", "-x"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bare.returncode != 0
    assert "needs FIREBASE_DATABASE_EMULATOR_HOST" in bare.stdout + bare.stderr
