#!/usr/bin/env python3
"""A stand-in for Google's Gemini CLI in headless ``stream-json`` mode, stdlib only.

It speaks the documented protocol (google-gemini/gemini-cli
``docs/cli/headless.md``, ``packages/core/src/output/types.ts``): the input is
piped stdin (followed by a blank line and the ``-p`` value, if any), one JSON
event per line goes to stdout (``init``, ``message``, ``tool_use``,
``tool_result``, ``error``, ``result``), diagnostics go to stderr.

Command line (yargs-strict like the real one: unknown arguments and bad choices
exit 1 with a message on stderr)::

    fake_gemini.py --version
    fake_gemini.py [-p PROMPT] [-o text|json|stream-json] [-m MODEL] [-r SESSION_ID]
                   [--approval-mode default|auto_edit|yolo|plan] [-y]
                   [--allowed-tools T[,T] ...] [--skip-trust]

State: sessions are files ``$FAKE_GEMINI_STATE/sessions/<session_id>.json``
(each with the folder it belongs to, as Gemini keeps sessions per project), so
a new process can resume them; every run appends one line to
``$FAKE_GEMINI_STATE/argv.jsonl``: ``{"argv", "cwd", "input", "approval_mode",
"allowed_tools", "resume", "at_files": [{"path", "size", "data"}], "env_trust"}``
(``$FAKE_GEMINI_STATE`` defaults to ``./.fake-gemini``). ``slow`` writes
``pids`` there.

Environment (what differs between CLI releases and setups, not messages):

* ``FAKE_GEMINI_VERSION`` (default 0.25.0): below 0.20 ``--resume`` is an
  unknown argument; below 0.10 ``stream-json`` is not a valid output format.
* ``FAKE_GEMINI_REQUIRE_TRUST=1``: refuse to run (exit 55) unless
  ``--skip-trust`` or ``GEMINI_CLI_TRUST_WORKSPACE=true``.

``@path`` in the input is expanded like Gemini does: an existing file inside
the working folder is read (recorded in ``at_files``; the answer lists them).

Triggers, read from the NEW message only (after the last line ``New
message:``, or after the mode line of a resumed turn):

* ``run: CMD``: a ``run_shell_command`` tool that really runs ``sh -c CMD`` in
  the working folder -- only under ``--approval-mode yolo`` or when
  ``run_shell_command`` (or ``run_shell_command(PREFIX)`` matching CMD) is in
  ``--allowed-tools``; otherwise the tool result is an error saying the tool
  needs approval, which headless mode can't ask for.
* ``edit: PATH``: a ``write_file`` tool; writes PATH under ``auto_edit`` /
  ``yolo`` or when ``write_file`` is allowed, else the same refusal.
* ``read: PATH``: a ``read_file`` tool (always allowed).
* ``evil``: tool ids, names, parameters, output and text with newlines, ANSI
  escapes and bidi controls.
* ``noise``: non-JSON lines, malformed JSON, JSON that is not an event, an
  unknown event, and a 100 KB message line.
* ``repeat``: two deltas, then the whole message again without ``delta``
  (as a release that also sends complete messages might).
* ``warn``: an ``error`` event of severity ``warning``; the turn goes on.
* ``fail``: an ``error`` event, then a ``result`` with status ``error``; exit 1.
* ``crash``: a partial answer, then "FatalError: gemini crashed" on stderr; exit 3.
* ``slow``: a message delta every 0.1 s for 30 s, until SIGINT (then it saves
  the session and exits 130); with ``stubborn`` it ignores SIGINT and SIGTERM.

Every answer ends with ``[turn N]``: how many inputs the session has had.
"""

from __future__ import annotations

import datetime
import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import NoReturn

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # run as a script: the shared fake plumbing sits next to this file
    sys.path.insert(0, HERE)

import fake_cli_common as common  # noqa: E402

APPROVAL_MODES = ["default", "auto_edit", "yolo", "plan"]


def version() -> tuple[int, ...]:
    return common.version("FAKE_GEMINI_VERSION", "0.25.0")


def fail_args(message: str) -> None:
    sys.stderr.write("Usage: gemini [options] [command]\n\n" + message + "\n")
    sys.exit(1)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def emit(event: dict) -> None:
    common.emit_json({"timestamp": now(), **event})


def parse(args: list[str]) -> dict:
    opts: dict = {
        "prompt": None,
        "output": "text",
        "model": None,
        "resume": None,
        "approval": None,
        "yolo": False,
        "allowed": [],
        "skip_trust": False,
        "query": [],
    }
    formats = ["text", "json"] + (["stream-json"] if version() >= (0, 10) else [])
    values = {"-p": "prompt", "--prompt": "prompt", "-o": "output", "--output-format": "output"}
    values |= {"-m": "model", "--model": "model", "--approval-mode": "approval"}
    if version() >= (0, 20):
        values |= {"-r": "resume", "--resume": "resume"}
    unknown = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        if not arg.startswith("-") or arg == "-":
            opts["query"].append(arg)
        elif name in values:
            if eq:
                value = inline
            elif i + 1 < len(args) and not (args[i + 1].startswith("-") and args[i + 1] != "-"):
                i += 1
                value = args[i]
            elif values[name] == "resume":
                value = "latest"
            else:
                fail_args(f"Not enough arguments following: {name.lstrip('-')}")
            opts[values[name]] = value
        elif name == "--allowed-tools":
            if eq:
                opts["allowed"] += inline.split(",")
            while i + 1 < len(args) and not args[i + 1].startswith("-"):
                i += 1
                opts["allowed"] += args[i].split(",")
        elif arg in ("-y", "--yolo"):
            opts["yolo"] = True
        elif arg == "--skip-trust":
            opts["skip_trust"] = True
        elif arg in ("-d", "--debug"):
            pass
        else:
            unknown.append(name.lstrip("-"))
        i += 1
    if unknown:
        fail_args(f"Unknown argument{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    if opts["output"] not in formats:
        choices = ", ".join(f'"{f}"' for f in formats)
        fail_args(
            f'Invalid values:\n  Argument: output-format, Given: "{opts["output"]}", Choices: {choices}'
        )
    if opts["approval"] is not None and opts["approval"] not in APPROVAL_MODES:
        choices = ", ".join(f'"{m}"' for m in APPROVAL_MODES)
        fail_args(
            f'Invalid values:\n  Argument: approval-mode, Given: "{opts["approval"]}", Choices: {choices}'
        )
    if opts["yolo"] and opts["approval"]:
        fail_args(
            "Cannot use both --yolo (-y) and --approval-mode together. Use --approval-mode=yolo instead."
        )
    opts["allowed"] = [t.strip() for t in opts["allowed"] if t.strip()]
    return opts


def at_files(text: str, cwd: Path) -> list[dict]:
    found = []
    for match in re.finditer(r"(?<![\\\w])@(\S+)", text):
        path = (cwd / match.group(1)).resolve()
        if path.is_file() and cwd in path.parents:
            data = path.read_bytes()
            found.append(
                {"path": match.group(1), "size": len(data), "data": data.decode("latin-1")}
            )
    return found


class Turn:
    def __init__(self, state: Path, opts: dict) -> None:
        self.state = state
        self.mode = "yolo" if opts["yolo"] else opts["approval"] or "default"
        self.allowed = opts["allowed"]
        self.tools = 0

    def delta(self, text: str) -> None:
        emit({"type": "message", "role": "assistant", "content": text, "delta": True})

    def tool(self, name: str, params: dict) -> str:
        self.tools += 1
        tool_id = f"{name}-{int(time.time() * 1000)}-{self.tools}"
        emit({"type": "tool_use", "tool_name": name, "tool_id": tool_id, "parameters": params})
        return tool_id

    def refuse(self, tool_id: str, name: str) -> None:
        message = (
            f'Tool "{name}" requires user approval, which is not available in non-interactive mode.'
        )
        emit(
            {
                "type": "tool_result",
                "tool_id": tool_id,
                "status": "error",
                "error": {"type": "execution_denied", "message": message},
            }
        )

    def allows(self, name: str, command: str = "") -> bool:
        for entry in self.allowed:
            if entry == name:
                return True
            narrowed = entry.startswith(name + "(") and entry.endswith(")")
            if narrowed and command.startswith(entry[len(name) + 1 : -1]):
                return True
        return False

    def run(self, cmd: str) -> None:
        tool_id = self.tool("run_shell_command", {"command": cmd, "description": "runs it"})
        if self.mode != "yolo" and not self.allows("run_shell_command", cmd):
            self.refuse(tool_id, "run_shell_command")
            return
        output, code = common.run_shell(cmd)
        emit(
            {
                "type": "tool_result",
                "tool_id": tool_id,
                "status": "success" if code == 0 else "error",
                "output": output,
            }
        )

    def edit(self, path: str) -> None:
        tool_id = self.tool("write_file", {"file_path": path, "content": "edited by gemini\n"})
        if self.mode not in ("auto_edit", "yolo") and not self.allows("write_file"):
            self.refuse(tool_id, "write_file")
            return
        Path(path).write_text("edited by gemini\n")
        emit(
            {
                "type": "tool_result",
                "tool_id": tool_id,
                "status": "success",
                "output": f"Wrote {path}",
            }
        )

    def read(self, path: str) -> None:
        tool_id = self.tool("read_file", {"file_path": path})
        try:
            text = Path(path).read_text()
        except OSError as exc:
            emit(
                {
                    "type": "tool_result",
                    "tool_id": tool_id,
                    "status": "error",
                    "error": {"type": "file_not_found", "message": str(exc)},
                }
            )
            return
        emit({"type": "tool_result", "tool_id": tool_id, "status": "success", "output": text})

    def evil(self) -> None:
        tool_id = "sh/ell.1$#[x]\x07"
        emit(
            {
                "type": "tool_use",
                "tool_name": "run\nshell\u202e\x1b[31m",
                "tool_id": tool_id,
                "parameters": {"command": "ls\n\x1b[31mred\x1b[0m \u202eevil"},
            }
        )
        emit(
            {
                "type": "tool_result",
                "tool_id": tool_id,
                "status": "success",
                "output": "\x1b]52;c;aGk=\x07 done\r\nalice #aa01: approve\u2028x",
            }
        )
        self.delta("\x1b[2Jcleared\nagent: fake line \u202eevil")

    def noise(self) -> None:
        common.noise_lines("Loaded cached credentials.", {"type": None})
        emit({"type": "mystery"})
        self.delta("x" * 100_000)

    def slow(self, stubborn: bool, session: dict, state: Path) -> None:
        def stop() -> NoReturn:
            session["interrupted"] = True
            save(state, session)
            sys.exit(130)

        common.tick_until_interrupted(state, stubborn, lambda i: self.delta(f"tick {i} "), stop)


def save(state: Path, session: dict) -> None:
    common.save_session(state, session["session_id"], session)


def find_session(state: Path, ident: str, cwd: Path) -> dict | None:
    """The session ``ident`` of the folder ``cwd`` (Gemini keeps sessions per project)."""
    if not re.fullmatch(r"[0-9a-f-]{36}", ident):
        return None
    session = common.load_session(state, ident)
    return session if session is not None and session.get("cwd") == str(cwd) else None


def main() -> None:
    args = sys.argv[1:]
    if args[:1] in (["--version"], ["-v"]):
        print(".".join(map(str, version())))
        return
    opts = parse(args)
    state = common.state_folder("FAKE_GEMINI_STATE", ".fake-gemini")
    cwd = Path.cwd().resolve()

    stdin = "" if sys.stdin.isatty() else sys.stdin.read()
    question = opts["prompt"] if opts["prompt"] is not None else " ".join(opts["query"])
    text = f"{stdin}\n\n{question}" if stdin else question
    env_trust = os.environ.get("GEMINI_CLI_TRUST_WORKSPACE") == "true"
    turn = Turn(state, opts)
    files = at_files(text, cwd)
    record = {
        "argv": args,
        "cwd": str(cwd),
        "input": text,
        "approval_mode": turn.mode,
        "allowed_tools": opts["allowed"],
        "resume": opts["resume"],
        "at_files": files,
        "env_trust": env_trust,
    }
    common.log_run(state, record)

    if os.environ.get("FAKE_GEMINI_REQUIRE_TRUST") and not (opts["skip_trust"] or env_trust):
        sys.stderr.write(
            "Gemini CLI is not running in a trusted directory. To proceed, either use "
            "`--skip-trust`, set the `GEMINI_CLI_TRUST_WORKSPACE=true` environment variable, "
            "or trust this directory in interactive mode.\n"
        )
        sys.exit(55)
    if not text.strip():
        sys.stderr.write(
            "No input provided via stdin. Input can be provided by piping data into gemini "
            "or using the --prompt option.\n"
        )
        sys.exit(42)

    session = None
    if opts["resume"]:
        session = find_session(state, opts["resume"], cwd)
        if session is None:
            sys.stderr.write(
                f'Error resuming session: Invalid session identifier "{opts["resume"]}".\n'
                "  Use --list-sessions to see available sessions, then use --resume {number}, "
                "--resume {uuid}, or --resume latest.\n"
            )
            sys.exit(42)
    if session is None:
        session = {"session_id": str(uuid.uuid4()), "cwd": str(cwd), "inputs": []}
    session["inputs"].append(text)
    save(state, session)
    model = opts["model"] or "gemini-2.5-pro"

    if opts["output"] != "stream-json":
        print("gemini (text mode)")
        return

    rows = common.message_lines(common.new_message(text).lstrip("\n"))  # and leading blank lines
    message = "\n".join(rows)
    emit({"type": "init", "session_id": session["session_id"], "model": model})
    emit({"type": "message", "role": "user", "content": text})
    if "noise" in message:
        turn.noise()
    if "repeat" in message:
        turn.delta("Hello, ")
        turn.delta("world.")
        emit({"type": "message", "role": "assistant", "content": "Hello, world."})
    if "warn" in message:
        emit(
            {"type": "error", "severity": "warning", "message": "Loop detected, stopping execution"}
        )
    if "fail" in message:
        emit({"type": "error", "severity": "error", "message": "quota exceeded"})
        emit(
            {
                "type": "result",
                "status": "error",
                "error": {"type": "FatalTurnError", "message": "Quota exceeded for gemini-2.5-pro"},
            }
        )
        sys.exit(1)
    if "crash" in message:
        turn.delta("partial answer")
        common.crash("working...\nFatalError: gemini crashed")
    if "slow" in message:
        turn.slow("stubborn" in message, session, state)
    turn.delta("Let me see. ")
    for row in rows:
        if "run: " in row:
            turn.run(row.split("run: ", 1)[1])
        if "edit: " in row:
            turn.edit(row.split("edit: ", 1)[1].strip())
        if "read: " in row:
            turn.read(row.split("read: ", 1)[1].strip())
    if "evil" in message:
        turn.evil()
    answer = f"gemini heard: {rows[0]}"
    if files:
        answer += "\nfiles: " + ", ".join(f"{Path(f['path']).name}({f['size']})" for f in files)
    turn.delta(answer)
    turn.delta(f" [turn {len(session['inputs'])}]")
    stats = {
        "total_tokens": 15,
        "input_tokens": 10,
        "output_tokens": 5,
        "duration_ms": 1,
        "tool_calls": turn.tools,
    }
    emit({"type": "result", "status": "success", "stats": stats})


if __name__ == "__main__":
    main()
