"""What the fake agent CLIs (fake_codex.py, fake_gemini.py, fake_claude.py) share, stdlib only.

The fakes are run as scripts (``sys.executable fake_x.py ...``) and import this
module from their own folder, so it must stay importable without the project
installed: the standard library only, no ``tests`` package imports.

It owns:

* writing to stdout: one line (``write_line``), one JSON object a line
  (``emit_json``), and the non-event lines of a ``noise`` trigger (``noise_lines``);
* ``crash``: the last stderr lines and exit status 3 of a ``crash`` trigger;
* for the one-process-per-turn fakes (codex, gemini): the release number from
  the environment (``version``), the state folder (``state_folder``), the run
  log ``argv.jsonl`` (``log_run``), the session files ``sessions/<id>.json``
  (``save_session``, ``load_session``), the new message of a prompt
  (``new_message``, ``message_lines``), a ``run:`` command (``run_shell``) and
  the ``slow`` trigger's ticks until SIGINT (``tick_until_interrupted``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

GUTTER = "  \u2502 "


def write_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def emit_json(obj: dict) -> None:
    write_line(json.dumps(obj))


def noise_lines(first: str, not_an_event: dict) -> None:
    """What a noisy CLI prints between its events: a plain line, malformed JSON,
    JSON that is not an object, and an object that is not an event."""
    for line in (first, "{not json", "[1, 2, 3]", json.dumps(not_an_event)):
        write_line(line)


def crash(stderr: str, *, hard: bool = False) -> NoReturn:
    """End the process with status 3 after ``stderr`` (its last line names the crash).

    ``hard`` exits at once (``os._exit``), not waiting for the process's other threads.
    """
    sys.stderr.write(stderr + "\n")
    sys.stderr.flush()
    if hard:
        os._exit(3)
    sys.exit(3)


# --------------------------------------------------------------------------- one process a turn


def version(variable: str, default: str) -> tuple[int, ...]:
    """The release the fake plays, from ``$variable`` (``default`` when unset)."""
    raw = os.environ.get(variable, default)
    return tuple(int(p) for p in raw.split(".") if p.isdigit())


def state_folder(variable: str, default: str) -> Path:
    """The folder of ``$variable`` (``default`` when unset or empty), created."""
    state = Path(os.environ.get(variable) or default).resolve()
    state.mkdir(parents=True, exist_ok=True)
    return state


def log_run(state: Path, record: dict) -> None:
    """Append what one run was given to ``argv.jsonl``, one JSON line a run."""
    with open(state / "argv.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def save_session(state: Path, ident: str, session: dict) -> None:
    folder = state / "sessions"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{ident}.json").write_text(json.dumps(session))


def load_session(state: Path, ident: str) -> dict | None:
    path = state / "sessions" / f"{ident}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def new_message(prompt: str) -> str:
    """The message this turn answers: after the last "New message:" line, or after the
    mode line of a resumed turn."""
    marker = "\nNew message:\n"
    at = prompt.rfind(marker)
    if at >= 0:
        return prompt[at + len(marker) :]
    return prompt.split("\n\n", 1)[1] if "\n\n" in prompt else prompt


def message_lines(message: str) -> list[str]:
    """The message's lines without its label and gutter."""
    rows = message.rstrip("\n").split("\n")
    first = rows[0].partition(": ")[2] if ": " in rows[0] else rows[0]
    rest = [r[len(GUTTER) :] if r.startswith(GUTTER) else r.lstrip() for r in rows[1:]]
    return [first, *rest]


def run_shell(cmd: str) -> tuple[str, int]:
    """Run ``sh -c cmd`` in the current folder: its output (stderr folded in) and status."""
    done = subprocess.run(
        ["sh", "-c", cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    return done.stdout.decode("utf-8", "replace"), done.returncode


def tick_until_interrupted(
    state: Path, stubborn: bool, tick: Callable[[int], None], stop: Callable[[], NoReturn]
) -> None:
    """The ``slow`` trigger: ``tick(i)`` every 0.1 s for 30 s, with a child process.

    Both pids go to ``state/pids``. On SIGINT the child is killed and ``stop()`` ends
    the process; ``stubborn`` ignores SIGINT and SIGTERM.
    """
    interrupted = []
    if stubborn:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    child = subprocess.Popen(["sleep", "60"])
    (state / "pids").write_text(f"{os.getpid()} {child.pid}")
    for i in range(300):
        if interrupted:
            child.kill()
            stop()
        tick(i)
        time.sleep(0.1)
