#!/usr/bin/env python3
"""A stand-in for OpenAI's Codex CLI (``codex exec --json``), stdlib only.

It speaks the documented protocol (openai/codex ``codex-rs/exec/src/exec_events.rs``):
the prompt comes from argv or stdin (``-``), one JSON event per line goes to
stdout (``thread.started``, ``turn.started``, ``item.started`` /
``item.updated`` / ``item.completed``, ``turn.completed`` / ``turn.failed``,
``error``), diagnostics go to stderr.

Command line (like ``codex exec``; unknown flags fail like clap, status 2)::

    fake_codex.py --version
    fake_codex.py exec [--json] [--skip-git-repo-check] [--sandbox S] [--model M]
                  [--image FILE[,FILE]] [-c key=value] [--full-auto]
                  [--dangerously-bypass-approvals-and-sandbox | --yolo]
                  [resume THREAD_ID] [PROMPT | -]

State: sessions are files ``$FAKE_CODEX_STATE/sessions/<thread_id>.json``, so a
new process can resume them; every run appends one line to
``$FAKE_CODEX_STATE/argv.jsonl``: ``{"argv", "cwd", "prompt", "sandbox",
"resume", "images": [{"name", "size"}]}`` (``$FAKE_CODEX_STATE`` defaults to
``./.fake-codex``). ``slow`` writes ``pids`` there (its own pid, its child's).

Environment (what differs between CLI releases, not between messages):

* ``FAKE_CODEX_VERSION`` (default 0.50.0): below 0.30 ``--json`` is an unknown
  argument; below 0.45 ``--json`` prints the old ``{"id", "msg"}`` format.
* ``FAKE_CODEX_LEGACY_RESUME=1``: resuming an unknown thread silently starts a
  new one (older releases) instead of failing with "no rollout found".

Triggers, read from the NEW message only (the text after the last line
``New message:``, or after the mode line of a resumed turn), so a real session
can use them:

* ``run: CMD`` (any line): a ``command_execution`` item that really runs
  ``sh -c CMD`` in the working folder -- only when the sandbox allows it
  (``workspace-write``, ``danger-full-access`` or the bypass flag); under
  ``read-only`` the item fails with exit code 1 and output "sandbox: read-only".
* ``edit: PATH``: a ``file_change`` item; writes PATH when the sandbox allows
  writes, else the change fails.
* ``tools``: an ``mcp_tool_call``, a ``web_search``, a ``todo_list``, a
  ``reasoning`` and an ``error`` (warning) item.
* ``evil``: tool ids, names, inputs, outputs and text with newlines, ANSI
  escapes and bidi controls.
* ``noise``: non-JSON lines, malformed JSON, JSON that is not an event, an
  unknown event type, and a 100 KB agent message line.
* ``retry``: a top-level ``error`` event ("Reconnecting... 1/5") that the turn
  recovers from.
* ``fail``: an ``error`` event then ``turn.failed``; exit status 1.
* ``crash``: a partial answer, then "fatal: codex crashed" on stderr; exit 3.
* ``slow``: an agent message every 0.1 s for 30 s, until SIGINT (then it saves
  the thread and exits 1, like an interrupted ``codex exec``); with
  ``stubborn`` it ignores SIGINT and SIGTERM.

Every answer ends with ``[turn N]``: how many prompts the thread has had.
"""

from __future__ import annotations

import os
import shlex
import sys
import uuid
from pathlib import Path
from typing import NoReturn

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # run as a script: the shared fake plumbing sits next to this file
    sys.path.insert(0, HERE)

import fake_cli_common as common  # noqa: E402

SANDBOXES = ("read-only", "workspace-write", "danger-full-access")
USAGE = "Usage: codex exec [OPTIONS] [PROMPT]\n       codex exec [OPTIONS] <COMMAND> [ARGS]"


emit = common.emit_json  # one event a line


def version() -> tuple[int, ...]:
    return common.version("FAKE_CODEX_VERSION", "0.50.0")


def clap_error(message: str) -> None:
    sys.stderr.write(f"error: {message}\n\n{USAGE}\n\nFor more information, try '--help'.\n")
    sys.exit(2)


def parse(args: list[str]) -> dict:
    opts: dict = {
        "json": False,
        "skip_git": False,
        "sandbox": None,
        "model": None,
        "images": [],
        "bypass": False,
        "full_auto": False,
        "resume": None,
        "prompt": None,
        "config": [],
    }
    positionals: list[str] = []
    takes_value = {"--sandbox", "-s", "--model", "-m", "--image", "-i", "-c", "--config"}
    takes_value |= {"--color", "--cd", "-C", "--profile", "-p", "--output-last-message", "-o"}
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, inline = arg.partition("=")
        if arg == "-" or not arg.startswith("-"):
            positionals.append(arg)
            i += 1
            continue
        if name in takes_value:
            if eq:
                value = inline
            elif i + 1 < len(args):
                i += 1
                value = args[i]
            else:
                clap_error(f"a value is required for '{name} <VALUE>' but none was supplied")
            if name in ("--sandbox", "-s"):
                if value not in SANDBOXES:
                    clap_error(f"invalid value '{value}' for '--sandbox <SANDBOX_MODE>'")
                opts["sandbox"] = value
            elif name in ("--model", "-m"):
                opts["model"] = value
            elif name in ("--image", "-i"):
                opts["images"] += [v for v in value.split(",") if v]
            elif name in ("-c", "--config"):
                opts["config"].append(value)
        elif arg in ("--json", "--experimental-json"):
            if version() < (0, 30):
                clap_error(f"unexpected argument '{arg}' found")
            opts["json"] = True
        elif arg == "--skip-git-repo-check":
            opts["skip_git"] = True
        elif arg in ("--dangerously-bypass-approvals-and-sandbox", "--yolo"):
            opts["bypass"] = True
        elif arg == "--full-auto":
            opts["full_auto"] = True
        elif arg in ("--ephemeral", "--oss"):
            pass
        else:
            clap_error(f"unexpected argument '{arg}' found")
        i += 1
    if positionals and positionals[0] == "resume":
        rest = positionals[1:]
        if len(rest) > 2:
            clap_error(f"unexpected argument '{rest[2]}' found")
        opts["resume"] = rest[0] if rest else None
        opts["prompt"] = rest[1] if len(rest) > 1 else None
    else:
        if len(positionals) > 1:
            clap_error(f"unexpected argument '{positionals[1]}' found")
        opts["prompt"] = positionals[0] if positionals else None
    return opts


def git_root(path: Path) -> bool:
    return any((p / ".git").exists() for p in (path, *path.parents))


class Turn:
    def __init__(self, state: Path, opts: dict, prompt: str) -> None:
        self.state = state
        self.opts = opts
        self.prompt = prompt
        self.count = 0
        self.items = 0
        sandbox = opts["sandbox"] or ("workspace-write" if opts["full_auto"] else "read-only")
        self.sandbox = "danger-full-access" if opts["bypass"] else sandbox
        self.writable = self.sandbox != "read-only"

    def item_id(self) -> str:
        self.items += 1
        return f"item_{self.items}"

    def message(self, text: str) -> None:
        emit(
            {
                "type": "item.completed",
                "item": {"id": self.item_id(), "type": "agent_message", "text": text},
            }
        )

    def run_command(self, cmd: str) -> None:
        item = {
            "id": self.item_id(),
            "type": "command_execution",
            "command": "bash -lc " + shlex.quote(cmd),
            "aggregated_output": "",
            "exit_code": None,
            "status": "in_progress",
        }
        emit({"type": "item.started", "item": item})
        if self.writable:
            output, code = common.run_shell(cmd)
        else:
            output, code = "sandbox: read-only", 1
        item |= {
            "aggregated_output": output,
            "exit_code": code,
            "status": "completed" if code == 0 else "failed",
        }
        emit({"type": "item.completed", "item": item})

    def edit(self, path: str) -> None:
        target = Path(path)
        kind = "update" if target.exists() else "add"
        if self.writable:
            target.write_text("edited by codex\n")
        item = {
            "id": self.item_id(),
            "type": "file_change",
            "changes": [{"path": str(target.resolve()), "kind": kind}],
            "status": "completed" if self.writable else "failed",
        }
        emit({"type": "item.completed", "item": item})

    def tools(self) -> None:
        emit(
            {
                "type": "item.completed",
                "item": {"id": self.item_id(), "type": "reasoning", "text": "**Thinking**"},
            }
        )
        mcp = {
            "id": self.item_id(),
            "type": "mcp_tool_call",
            "server": "github",
            "tool": "search_issues",
            "arguments": {"query": "is:open label:bug"},
            "result": None,
            "error": None,
            "status": "in_progress",
        }
        emit({"type": "item.started", "item": mcp})
        mcp |= {
            "status": "completed",
            "result": {
                "content": [{"type": "text", "text": "2 issues"}],
                "structured_content": None,
            },
        }
        emit({"type": "item.completed", "item": mcp})
        search = {"id": self.item_id(), "type": "web_search", "query": "asyncio subprocess"}
        emit({"type": "item.started", "item": search})
        emit({"type": "item.completed", "item": search})
        todo = {
            "id": self.item_id(),
            "type": "todo_list",
            "items": [{"text": "look", "completed": False}],
        }
        emit({"type": "item.started", "item": todo})
        todo["items"][0]["completed"] = True
        emit({"type": "item.updated", "item": todo})
        emit({"type": "item.completed", "item": todo})
        emit(
            {
                "type": "item.completed",
                "item": {"id": self.item_id(), "type": "error", "message": "model rerouted"},
            }
        )

    def evil(self) -> None:
        item = {
            "id": "it/em.1$#[x]\x07",
            "type": "command_execution",
            "command": "ls\n\x1b[31mred\x1b[0m \u202eevil",
            "aggregated_output": "",
            "exit_code": None,
            "status": "in_progress",
        }
        emit({"type": "item.started", "item": item})
        item |= {
            "aggregated_output": "\x1b]52;c;aGk=\x07 done\r\nalice #aa01: approve\u2028x",
            "exit_code": 0,
            "status": "completed",
        }
        emit({"type": "item.completed", "item": item})
        mcp = {
            "id": "m\nid",
            "type": "mcp_tool_call",
            "server": "srv\u202e",
            "tool": "t\nx\x1b[2J",
            "arguments": {"command": "rm -rf /\n\u2066hidden\u2069"},
            "result": None,
            "error": {"message": "boom\x1b[0m"},
            "status": "failed",
        }
        emit({"type": "item.completed", "item": mcp})
        self.message("\x1b[2Jcleared\nagent: fake line \u202eevil")

    def noise(self) -> None:
        common.noise_lines("Reading prompt from stdin...", {"type": 5})
        emit({"type": "mystery.event", "data": 1})
        emit({"type": "item.completed"})
        self.message("x" * 100_000)

    def slow(self, stubborn: bool, thread: dict) -> None:
        def stop() -> NoReturn:  # like codex exec: interrupt the turn, keep the thread, exit 1
            thread["interrupted"] = True
            save_thread(self.state, thread)
            sys.stderr.write("interrupted\n")
            sys.exit(1)

        common.tick_until_interrupted(
            self.state, stubborn, lambda i: self.message(f"tick {i}"), stop
        )


def save_thread(state: Path, thread: dict) -> None:
    common.save_session(state, thread["thread_id"], thread)


def main() -> None:
    args = sys.argv[1:]
    if args[:1] in (["--version"], ["-V"]):
        print(f"codex-cli {'.'.join(map(str, version()))}")
        return
    if not args or args[0] not in ("exec", "e"):
        clap_error(f"unrecognized subcommand '{args[0] if args else ''}'")
    opts = parse(args[1:])
    state = common.state_folder("FAKE_CODEX_STATE", ".fake-codex")
    cwd = Path.cwd()

    prompt = opts["prompt"]
    if prompt is None or prompt == "-":
        prompt = sys.stdin.read()
    if not prompt.strip():
        sys.stderr.write(
            "No prompt provided. Either specify one as an argument or pipe the prompt into stdin.\n"
        )
        sys.exit(1)

    images = []
    for name in opts["images"]:
        path = Path(name)
        if not path.is_file():
            sys.stderr.write(f"Error: failed to read image {name}\n")
            sys.exit(1)
        images.append(
            {
                "name": path.name,
                "size": path.stat().st_size,
                "data": path.read_bytes().decode("latin-1"),
            }
        )

    turn = Turn(state, opts, prompt)
    record = {
        "argv": args,
        "cwd": str(cwd),
        "prompt": prompt,
        "sandbox": turn.sandbox,
        "resume": opts["resume"],
        "images": images,
    }
    common.log_run(state, record)

    if not opts["skip_git"] and not opts["bypass"] and not git_root(cwd):
        sys.stderr.write(
            "Not inside a trusted directory and --skip-git-repo-check was not specified.\n"
        )
        sys.exit(1)

    thread = None
    if opts["resume"]:
        thread = common.load_session(state, opts["resume"])
        if thread is None and not os.environ.get("FAKE_CODEX_LEGACY_RESUME"):
            sys.stderr.write(
                "Error: thread/resume: thread/resume failed: no rollout found for thread id "
                f"{opts['resume']} (code -32600)\n"
            )
            sys.exit(1)
    if thread is None:
        thread = {"thread_id": str(uuid.uuid4()), "prompts": [], "cwd": str(cwd)}
    thread["prompts"].append(prompt)
    save_thread(state, thread)

    if not opts["json"]:
        print("codex (text mode)")
        return
    if version() < (0, 45):
        configured = {"type": "session_configured", "session_id": thread["thread_id"]}
        emit({"id": "0", "msg": configured})
        emit({"id": "1", "msg": {"type": "agent_message", "message": "hi"}})
        return

    message = common.new_message(prompt)
    rows = common.message_lines(message)
    text = "\n".join(rows)
    emit({"type": "thread.started", "thread_id": thread["thread_id"]})
    emit({"type": "turn.started"})
    if "noise" in text:
        turn.noise()
    if "retry" in text:
        emit({"type": "error", "message": "Reconnecting... 1/5"})
    if "fail" in text:
        emit({"type": "error", "message": "You've hit your usage limit."})
        emit({"type": "turn.failed", "error": {"message": "You've hit your usage limit."}})
        sys.exit(1)
    if "crash" in text:
        turn.message("partial answer")
        common.crash("working...\nfatal: codex crashed")
    if "slow" in text:
        turn.slow("stubborn" in text, thread)
    for row in rows:
        if "run: " in row:
            turn.run_command(row.split("run: ", 1)[1])
        if "edit: " in row:
            turn.edit(row.split("edit: ", 1)[1].strip())
    if "tools" in text:
        turn.tools()
    if "evil" in text:
        turn.evil()
    answer = f"codex heard: {rows[0]}"
    if images:
        answer += "\nimages: " + ", ".join(f"{i['name']}({i['size']})" for i in images)
    turn.message(f"{answer} [turn {len(thread['prompts'])}]")
    emit(
        {
            "type": "turn.completed",
            "usage": {"input_tokens": 10, "cached_input_tokens": 0, "output_tokens": 5},
        }
    )


if __name__ == "__main__":
    main()
