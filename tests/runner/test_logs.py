"""What the runner's operator reads: one clean line per turn, whatever people and agents wrote."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from tests.runner.test_runner import _runner_process, owner_get, wait_for

MakeUser = Callable[..., AppContext]

OSC52 = "\x1b]52;c;cm0gLXJmIH4=\x07"


def test_agent_errors_reach_the_log_as_one_clean_line(
    make_user: MakeUser, rules_emu: ThreadedEmulator, tmp_path: Path
) -> None:
    script = tmp_path / "evil_agent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.stdin.read()
            sys.stderr.write("2024-01-01 fake\\rlog line\\nboom {OSC52!r} \\x1b[2Jcleared\\n")
            sys.exit(3)
            """
        ).replace(repr(OSC52), OSC52.encode("unicode_escape").decode())
    )
    alice = make_user("alice")
    sid = alice.sessions.share().session
    proc = _runner_process(
        rules_emu, "--agent", "command", "--agent-opt", f"cmd={sys.executable} {script}"
    )
    try:
        mid = alice.sessions.send(sid, "make it fail").message
        wait_for(
            lambda: owner_get(rules_emu, f"sessions/{sid}/turns/{mid}/state") == "failed",
            timeout=40,
        )
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out, repr(out)
    turn_lines = [line for line in out.splitlines() if f"/{mid}" in line]
    assert len(turn_lines) == 1, out  # one line per turn, the fake log line inside it
    assert "failed" in turn_lines[0] and "^[]52;c;" in turn_lines[0]
    assert not any(line.startswith("2024-01-01 fake") for line in out.splitlines())
