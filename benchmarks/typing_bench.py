"""Typing-indicator cost: database writes per minute of continuous typing in the REPL.

Runs the real ``emdash-fb chat`` in a pseudo-terminal against the bundled
emulator (real rules), types at a steady pace, and counts the presence writes
that reach the database by following the member's presence node as the
emulator owner over SSE. Prints the figures and writes
benchmarks/results/typing.json.

    python benchmarks/typing_bench.py [--seconds 30] [--cps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import pexpect
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from emdash_fb.cli.context import AppContext  # noqa: E402
from tests.conftest import rules_emulator  # noqa: E402
from tests.support.allow import allow_owner  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "typing.json"


def count_presence_writes(url: str, stop: threading.Event, counter: list[int]) -> None:
    with requests.get(
        url,
        headers={"Accept": "text/event-stream", "Authorization": "Bearer owner"},
        stream=True,
        timeout=(5, 60),
    ) as resp:
        first = True
        for raw in resp.iter_lines():
            if stop.is_set():
                return
            line = raw.decode()
            if line.startswith("data:") and line != "data: null":
                if first:
                    first = False  # the initial snapshot
                    continue
                counter[0] += 1


def _drain(child: pexpect.spawn) -> None:
    """Keep reading the REPL's output so it never blocks on a full pty."""
    while True:
        try:
            child.read_nonblocking(65536, timeout=0.5)
        except pexpect.TIMEOUT:
            continue
        except (pexpect.EOF, OSError):
            return


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--cps", type=float, default=6.0, help="characters typed per second")
    args = ap.parse_args()
    with rules_emulator() as emu, tempfile.TemporaryDirectory() as cfg:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
        env.update(emu.env(), XDG_CONFIG_HOME=cfg, TERM="xterm")
        alice = AppContext(profile="alice", env=env)
        allow_owner(emu.project_id, env, alice.auth.sign_in_anonymous("alice").uid)
        sid = alice.sessions.share().session
        uid = alice.auth.current().uid
        url = f"http://{emu.database_host}/sessions/{sid}/presence/{uid}.json"
        counter, stop = [0], threading.Event()
        watcher = threading.Thread(
            target=count_presence_writes, args=(url, stop, counter), daemon=True
        )
        watcher.start()
        child = pexpect.spawn(
            sys.executable,
            ["-m", "emdash_fb.cli.main", "--profile", "alice", "--session", sid, "chat"],
            env=env,
            dimensions=(30, 120),
            timeout=30,
        )
        child.expect(r"\[code\]")
        drain = threading.Thread(target=_drain, args=(child,), daemon=True)
        drain.start()
        time.sleep(2.0)
        counter[0] = 0  # ignore the start-up heartbeat
        typed = 0
        start = time.monotonic()
        text = "the quick brown fox jumps over the lazy dog "
        while (elapsed := time.monotonic() - start) < args.seconds:
            child.send(text[typed % len(text)])
            typed += 1
            if typed % 120 == 0:
                child.send("\x03")  # clear the line now and then, as people do
            time.sleep(max(0.0, typed / args.cps - (time.monotonic() - start)))
        time.sleep(0.5)
        writes = counter[0]
        stop.set()
        child.sendcontrol("d")
        drain.join(15)
        child.close()
    minutes = elapsed / 60
    result = {
        "seconds": round(elapsed, 1),
        "keystrokes": typed,
        "keystrokes_per_minute": round(typed / minutes),
        "typing_writes": writes,
        "typing_writes_per_minute": round(writes / minutes, 1),
        "note": "presence writes seen at the database while typing continuously; the REPL throttles "
        "typing signals to one per 3 s",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "date": time.strftime("%Y-%m-%d"),
    }
    print(
        f"typed {typed} keys in {elapsed:.0f} s ({result['keystrokes_per_minute']}/min): "
        f"{writes} typing writes = {result['typing_writes_per_minute']} writes/min"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
