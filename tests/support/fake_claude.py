#!/usr/bin/env python3
"""A stand-in for Claude Code's ``claude`` CLI in stream-json mode (stdlib only).

It speaks the protocol the ``claude`` agent uses -- the same one the Agent SDKs
use -- so tests (and end-to-end runs) can drive a real subprocess:

    fake_claude.py -p --input-format stream-json --output-format stream-json --verbose
        --include-partial-messages --permission-prompt-tool stdio
        [--resume=ID | --resume ID] [--model M] [--permission-mode M]
        [--append-system-prompt TEXT]
    fake_claude.py --version        -> "2.1.30 (Claude Code)" (FAKE_CLAUDE_VERSION)

stdin: one JSON object per line -- ``{"type": "user", "message": {"role": "user",
"content": [blocks]}}`` (text and base64 image blocks), ``control_request``
(``interrupt``, ``set_permission_mode``, ``set_model``, ``initialize``) and
``control_response`` (answers to its ``can_use_tool`` requests).

stdout: ``system``/``init`` (session id, model, permissionMode, cwd) before the
first turn and again after a mode or model change; ``stream_event`` partial
messages (with ``--include-partial-messages``) and whole ``assistant``
messages; ``user`` tool results; ``control_request`` ``can_use_tool``; and one
``result`` per turn.

State: sessions live in ``$FAKE_CLAUDE_STATE/<session id>.json`` with the
prompts they have seen, so a new process can ``--resume`` one; resuming an
unknown id prints the real CLI's "No conversation found with session ID: ID"
on stderr and exits 1. Each start (argv, cwd), the session it then holds, and
every message received on stdin are appended to ``$FAKE_CLAUDE_STATE/log.jsonl``
(``"kind"``: ``start``, ``session``, ``received``, ``bad_input``).

Flags are checked like the real CLI: an unknown option prints ``error: unknown
option '--x'`` and exits 1; with ``FAKE_CLAUDE_VERSION`` below 2.0.0 the
options ``--permission-prompt-tool`` and ``--include-partial-messages`` are
unknown (a CLI too old for the agent).

Every turn answers::

    claude heard <label>: <first line of the new message>
    turn <N> of <session id>

(plus ``I see N image(s): ...`` / ``I read <file>: <first line>`` for
attachments). Triggers, in the new message only (history is ignored):

* ``run: CMD`` (a line of the message) -> tool_use ``Bash`` ``{"command": CMD}``
  and, unless the permission mode allows it, a ``can_use_tool`` request. On
  allow it runs the *returned* ``updatedInput.command`` with ``sh -c`` in its
  cwd and returns the output as the tool_result; on deny the tool_result is an
  error with the deny message and the text says ``I was told no: <message>``.
* ``edit: FILE`` -> an ``Edit`` of FILE (its first line gets `` (edited)``).
* ``write: FILE`` -> a ``Write`` of FILE with 30 numbered lines.
* ``error: TEXT`` -> the turn ends with an error result whose text is TEXT.
* ``attack`` -> a Bash tool_use and can_use_tool request whose tool name, ids
  and command hold ANSI escapes, bidi controls, newlines and key-unsafe
  characters (never run, even on allow).
* ``slow`` -> streams a word every 0.1 s for 30 s unless interrupted.
* ``stubborn`` -> like ``slow`` but ignores interrupt requests.
* ``crash`` -> prints a little, then ``Error: simulated crash`` on stderr and
  exits with status 3 mid-turn.
* ``fork`` -> the session continues under a new id (as a resume that forks
  does): the turn's ``result`` carries the new ``session_id``, no new init.
* ``noise`` -> non-JSON lines, a malformed ``{`` line and a 100 KB text line
  among valid events.

Permission modes: ``default`` asks for every tool; ``acceptEdits`` runs Edit
and Write without asking; ``bypassPermissions`` runs everything (only when the
process was started in that mode; ``set_permission_mode`` to it fails
otherwise, as in the real CLI); ``plan`` and ``dontAsk`` refuse tools without
asking. An interrupt ends the turn with a ``[Request interrupted by user]``
user message and an ``error_during_execution`` result without ``result``.
"""

from __future__ import annotations

import base64
import collections
import json
import os
import queue
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:  # run as a script: the shared fake plumbing sits next to this file
    sys.path.insert(0, HERE)

import fake_cli_common as common  # noqa: E402

VERSION = os.environ.get("FAKE_CLAUDE_VERSION", "2.1.30")
MODES = ("acceptEdits", "bypassPermissions", "default", "dontAsk", "plan")
VALUE_FLAGS = {
    "--input-format",
    "--output-format",
    "--permission-prompt-tool",
    "--resume",
    "-r",
    "--model",
    "--permission-mode",
    "--append-system-prompt",
    "--system-prompt",
}
BOOL_FLAGS = {"-p", "--print", "--verbose", "--include-partial-messages"}
NEW_FLAGS = {"--permission-prompt-tool", "--include-partial-messages"}  # unknown before 2.0
STATE = os.environ.get("FAKE_CLAUDE_STATE") or os.path.join(tempfile.gettempdir(), "fake_claude")
LOG_LOCK = threading.Lock()
emit = common.emit_json  # one JSON object a line


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def fail(message: str, code: int = 1) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    sys.exit(code)


def log(entry: dict) -> None:
    os.makedirs(STATE, exist_ok=True)
    entry = {"pid": os.getpid(), "time": time.time(), **entry}
    with LOG_LOCK, open(os.path.join(STATE, "log.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def parse_args(argv: list[str]) -> dict:
    opts: dict = {"flags": set()}
    old = version_tuple(VERSION) < (2, 0, 0)
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in ("--version", "-v"):
            print(f"{VERSION} (Claude Code)")
            sys.exit(0)
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if old and name in NEW_FLAGS:
            fail(f"error: unknown option '{name}'")
        if name in VALUE_FLAGS:
            if not eq:
                if i >= len(argv):
                    fail(f"error: option '{name} <value>' argument missing")
                value = argv[i]
                i += 1
            opts[name.lstrip("-").replace("-", "_") if name != "-r" else "resume"] = value
        elif name in BOOL_FLAGS and not eq:
            opts["flags"].add(name)
        else:
            fail(f"error: unknown option '{arg}'")
    if opts.get("input_format") != "stream-json":
        fail("Error: fake_claude only speaks --input-format stream-json")
    if opts.get("output_format") != "stream-json":
        fail("Error: --input-format=stream-json requires output-format=stream-json.")
    if opts["flags"] & {"-p", "--print"} and "--verbose" not in opts["flags"]:
        fail("Error: When using --print, --output-format=stream-json requires --verbose")
    mode = opts.get("permission_mode", "default")
    if mode not in MODES:
        fail(
            f"error: option '--permission-mode <mode>' argument '{mode}' is invalid. "
            f"Allowed choices are {', '.join(MODES)}."
        )
    return opts


class Interrupted(Exception):
    pass


class Fake:
    def __init__(self, opts: dict) -> None:
        self.opts = opts
        self.partial = "--include-partial-messages" in opts["flags"]
        self.mode = opts.get("permission_mode", "default")
        self.bypass_available = self.mode == "bypassPermissions"
        self.model = opts.get("model") or "claude-fake-1"
        self.cwd = os.getcwd()
        self.inbox: queue.Queue = queue.Queue()
        self.later: collections.deque = collections.deque()  # user messages sent mid-turn
        self.eof = False
        self.need_init = True
        self.interrupted = False
        self.stubborn = False
        self.count = 0
        self.last_text = ""
        resume = opts.get("resume")
        log({"kind": "start", "argv": sys.argv[1:], "cwd": self.cwd, "session_id": resume})
        if resume is not None:
            path = self.path(resume)
            if path is None or not os.path.exists(path):
                fail(f"No conversation found with session ID: {resume}")
            with open(path, encoding="utf-8") as f:
                self.session = json.load(f)
        else:
            self.session = {"session_id": str(uuid.uuid4()), "cwd": self.cwd, "turns": []}
        self.sid = self.session["session_id"]
        log({"kind": "session", "session_id": self.sid})

    # ------------------------------------------------------------------ plumbing

    @staticmethod
    def path(session_id: str) -> str | None:
        if not re.fullmatch(r"[A-Za-z0-9-]{1,100}", session_id):
            return None
        return os.path.join(STATE, f"{session_id}.json")

    def save(self) -> None:
        path = self.path(self.sid)
        assert path is not None
        os.makedirs(STATE, exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.session, f)
        os.replace(tmp, path)

    def read_stdin(self) -> None:
        for raw in sys.stdin.buffer:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                log({"kind": "bad_input", "line": line[:300]})
                continue
            log({"kind": "received", "message": obj})
            self.inbox.put(obj)
        self.inbox.put(None)

    def respond(self, request_id: object, body: dict | None = None, error: str = "") -> None:
        if error:
            response = {"subtype": "error", "request_id": request_id, "error": error}
        else:
            response = {"subtype": "success", "request_id": request_id, "response": body or {}}
        emit({"type": "control_response", "response": response})

    def control(self, msg: dict) -> None:
        """Answer a control request from the agent (at any time)."""
        rid = msg.get("request_id")
        request = msg.get("request") if isinstance(msg.get("request"), dict) else {}
        subtype = request.get("subtype")
        if subtype == "interrupt":
            if not self.stubborn:
                self.interrupted = True
                self.respond(rid)
        elif subtype == "set_permission_mode":
            mode = request.get("mode")
            if mode not in MODES:
                self.respond(rid, error=f"Invalid permission mode: {mode}")
            elif mode == "bypassPermissions" and not self.bypass_available:
                self.respond(
                    rid,
                    error="Cannot set permission mode to bypassPermissions because the "
                    "session was not launched with --dangerously-skip-permissions",
                )
            else:
                self.mode = mode
                self.need_init = True
                self.respond(rid, {"mode": mode})
        elif subtype == "set_model":
            self.model = request.get("model") or "claude-fake-1"
            self.need_init = True
            self.respond(rid)
        elif subtype == "initialize":
            self.respond(rid, {"commands": [], "output_style": "default"})
        else:
            self.respond(rid, error=f"Unsupported control request subtype: {subtype}")

    def poll(self, timeout: float | None) -> dict | None:
        """Handle what arrived on stdin; return a control_response, if one came."""
        try:
            msg = self.inbox.get(timeout=timeout) if timeout else self.inbox.get_nowait()
        except queue.Empty:
            return None
        if msg is None:
            self.eof = True
            self.interrupted = True  # stdin closed: the caller is gone
            return None
        kind = msg.get("type")
        if kind == "control_request":
            self.control(msg)
        elif kind == "user":
            self.later.append(msg)
        elif kind == "control_response":
            return msg
        return None

    def check(self) -> None:
        while not self.inbox.empty():
            self.poll(None)
        if self.interrupted:
            raise Interrupted

    # ------------------------------------------------------------------ events

    def base(self) -> dict:
        return {"session_id": self.sid, "uuid": str(uuid.uuid4())}

    def stream(self, event: dict) -> None:
        if self.partial:
            emit(
                {"type": "stream_event", "event": event, "parent_tool_use_id": None, **self.base()}
            )

    def assistant(self, content: list) -> None:
        self.count += 1
        message = {
            "id": f"msg_{self.count:04}",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
        emit({"type": "assistant", "message": message, "parent_tool_use_id": None, **self.base()})

    def say(self, text: str, *, delay: float = 0.0, words: int = 0) -> None:
        """One assistant text block, streamed word by word as partial messages."""
        self.stream(
            {"type": "message_start", "message": {"id": f"msg_{self.count + 1:04}", "content": []}}
        )
        self.stream(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        )
        pieces = re.findall(r"\S+\s*|\s+", text)
        for n in range(words):
            pieces.append(f"word{n} ")
        sent = []
        try:
            for piece in pieces:
                if delay:
                    time.sleep(delay)
                    self.check()
                sent.append(piece)
                self.stream(
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    }
                )
        finally:
            self.stream({"type": "content_block_stop", "index": 0})
            self.stream({"type": "message_stop"})
            self.last_text = "".join(sent)
            self.assistant([{"type": "text", "text": self.last_text}])

    def tool_result(self, tool_id: str, content: str, is_error: bool) -> None:
        block = {
            "type": "tool_result",
            "tool_use_id": tool_id,
            "content": content,
            "is_error": is_error,
        }
        emit(
            {
                "type": "user",
                "message": {"role": "user", "content": [block]},
                "parent_tool_use_id": None,
                **self.base(),
            }
        )

    def result(self, text: str | None, *, subtype: str = "success", is_error: bool = False) -> None:
        obj = {
            "type": "result",
            "subtype": subtype,
            "is_error": is_error,
            "duration_ms": 1,
            "duration_api_ms": 1,
            "num_turns": len(self.session["turns"]),
            "session_id": self.sid,
            "total_cost_usd": 0,
            "usage": {},
            "permission_denials": [],
            "uuid": str(uuid.uuid4()),
        }
        if text is not None:
            obj["result"] = text
        emit(obj)

    def init(self) -> None:
        emit(
            {
                "type": "system",
                "subtype": "init",
                "cwd": self.cwd,
                "session_id": self.sid,
                "tools": ["Bash", "Edit", "Glob", "Grep", "Read", "Write"],
                "mcp_servers": [],
                "model": self.model,
                "permissionMode": self.mode,
                "slash_commands": [],
                "apiKeySource": "none",
                "claude_code_version": VERSION,
                "output_style": "default",
                "uuid": str(uuid.uuid4()),
            }
        )
        self.need_init = False

    # ------------------------------------------------------------------ tools

    def ask(self, name: str, tool_id: str, tool_input: object, request_id: str = "") -> tuple:
        """The permission for one tool use: ("allow", input) or ("deny", message)."""
        edits = name in ("Edit", "MultiEdit", "Write")
        if self.mode == "bypassPermissions" or (self.mode == "acceptEdits" and edits):
            return ("allow", tool_input)
        if self.mode == "plan":
            return ("deny", f"Plan mode is active: {name} was not run")
        if self.mode == "dontAsk":
            return ("deny", f"Permission to use {name} was not granted")
        rid = request_id or str(uuid.uuid4())
        request = {
            "subtype": "can_use_tool",
            "tool_name": name,
            "input": tool_input,
            "tool_use_id": tool_id,
            "permission_suggestions": [],
        }
        emit({"type": "control_request", "request_id": rid, "request": request})
        while True:
            if self.interrupted:
                raise Interrupted
            msg = self.poll(0.05)
            if msg is None:
                continue
            response = msg.get("response") if isinstance(msg.get("response"), dict) else {}
            if response.get("request_id") != rid:
                continue
            if response.get("subtype") == "error":
                return ("deny", f"Permission check failed: {response.get('error')}")
            body = response.get("response") if isinstance(response.get("response"), dict) else {}
            if body.get("behavior") == "allow" and isinstance(body.get("updatedInput"), dict):
                return ("allow", body["updatedInput"])
            if body.get("behavior") == "deny" and isinstance(body.get("message"), str):
                return ("deny", body["message"])
            return ("deny", f"Invalid permission response: {json.dumps(body)[:200]}")

    def use(
        self, name: str, tool_input: dict, run, *, tool_id: str = "", request_id: str = ""
    ) -> None:
        tool_id = tool_id or f"toolu_{uuid.uuid4().hex[:16]}"
        self.assistant([{"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}])
        try:
            verdict, value = self.ask(name, tool_id, tool_input, request_id)
        except Interrupted:
            self.tool_result(tool_id, "The user doesn't want to proceed with this tool use.", True)
            raise
        if verdict == "allow":
            output, ok = run(value)
            self.tool_result(tool_id, output, not ok)
            self.say(f"{name} done.")
        else:
            self.tool_result(tool_id, value, True)
            self.say(f"I was told no: {value}")

    def run_bash(self, tool_input: dict) -> tuple[str, bool]:
        command = tool_input.get("command")
        if not isinstance(command, str):
            return ("no command", False)
        done = subprocess.run(
            ["sh", "-c", command], cwd=self.cwd, capture_output=True, text=True, timeout=20
        )
        return ((done.stdout + done.stderr).rstrip("\n") or "(no output)", done.returncode == 0)

    def run_edit(self, tool_input: dict) -> tuple[str, bool]:
        path = tool_input.get("file_path", "")
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            return ("File does not exist.", False)
        old, new = tool_input.get("old_string", ""), tool_input.get("new_string", "")
        if not old or old not in text:
            return ("String to replace not found in file.", False)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text.replace(old, new, 1))
        return (f"The file {path} has been updated.", True)

    def run_write(self, tool_input: dict) -> tuple[str, bool]:
        path = tool_input.get("file_path", "")
        with open(path, "w", encoding="utf-8") as f:
            f.write(tool_input.get("content", ""))
        return (f"File created successfully at: {path}", True)

    # ------------------------------------------------------------------ turns

    def turn(self, msg: dict) -> None:
        content = (msg.get("message") or {}).get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        texts = [
            b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text"
        ]
        images = [b for b in blocks if isinstance(b, dict) and b.get("type") == "image"]
        prompt = texts[0] if texts else ""
        self.session["turns"].append(prompt)
        self.save()
        self.interrupted = False
        if self.need_init:
            self.init()
        label, body = heard(prompt)
        lines = [f"claude heard {label}: {body[0] if body else ''}"]
        lines.append(f"turn {len(self.session['turns'])} of {self.sid}")
        if images:
            kinds = ", ".join(
                f"{(i.get('source') or {}).get('media_type')} "
                f"({len(base64.b64decode((i.get('source') or {}).get('data', '')))} bytes)"
                for i in images
            )
            lines.append(f"I see {len(images)} image(s): {kinds}")
        for extra in texts[1:]:
            name, _, rest = extra.partition(":\n")
            lines.append(f"I read {name}: {rest.splitlines()[0] if rest else ''}")
        text = "\n".join(lines)
        message = "\n".join(body)
        try:
            self.say(text)
            self.triggers(body, message)
        except Interrupted:
            emit(
                {
                    "type": "user",
                    "message": {
                        "role": "user",
                        "content": [{"type": "text", "text": "[Request interrupted by user]"}],
                    },
                    "parent_tool_use_id": None,
                    **self.base(),
                }
            )
            self.result(None, subtype="error_during_execution", is_error=True)
            return
        error = next((ln[len("error: ") :] for ln in body if ln.startswith("error: ")), None)
        if error is not None:
            self.result(error, is_error=True)
        else:
            self.result(self.last_text)

    def triggers(self, body: list[str], message: str) -> None:
        for line in body:
            if line.startswith("run: "):
                self.use(
                    "Bash", {"command": line[5:], "description": "Run a command"}, self.run_bash
                )
            elif line.startswith("edit: "):
                path = os.path.join(self.cwd, line[6:].strip())
                try:
                    with open(path, encoding="utf-8") as f:
                        old = f.readline().rstrip("\n")
                except OSError:
                    old = "(missing)"
                tool_input = {"file_path": path, "old_string": old, "new_string": old + " (edited)"}
                self.use("Edit", tool_input, self.run_edit)
            elif line.startswith("write: "):
                path = os.path.join(self.cwd, line[7:].strip())
                content = "".join(f"line {n}\n" for n in range(1, 31))
                self.use("Write", {"file_path": path, "content": content}, self.run_write)
        words = set(re.findall(r"[a-z]+", message.lower()))
        if "attack" in words:
            self.use(
                "Ba\x1b[31msh\u202e",
                {"command": "echo one\necho two\u2028\x1b[2J", "description": "x\u2066y"},
                lambda _input: ("attack fixture: not run", True),
                tool_id="toolu_a.b/c$d#[e]\x07",
                request_id="req.1/2$#[x]\x1b",
            )
        if "fork" in words:
            self.sid = str(uuid.uuid4())
            self.session = {**self.session, "session_id": self.sid}
            self.save()
            log({"kind": "session", "session_id": self.sid})
        if "noise" in words:
            common.write_line("[SandboxDebug] this line is not JSON")
            common.write_line('{"type": "assistant", "message": {"content": [')
            common.write_line("")
            common.write_line("[1, 2, 3]")
            self.assistant([{"type": "text", "text": "N" * 100_000}])
            common.write_line("warning: plain text between events")
            self.say("noise done.")
        if "crash" in words:
            self.say("about to crash")
            common.crash("Error: simulated crash", hard=True)
        if "stubborn" in words:
            self.stubborn = True
            try:
                self.say("", delay=0.1, words=300)
            finally:
                self.stubborn = False
        if "slow" in words:
            self.say("", delay=0.1, words=300)

    def main(self) -> None:
        threading.Thread(target=self.read_stdin, daemon=True).start()
        while True:
            msg = self.later.popleft() if self.later else self.inbox.get()
            if msg is None or self.eof:
                break
            kind = msg.get("type")
            if kind == "control_request":
                self.control(msg)
            elif kind == "user":
                self.turn(msg)
                if self.eof:
                    break


def heard(prompt: str) -> tuple[str, list[str]]:
    """The new message's label and lines: after "New message:", else after the mode line."""
    if "\nNew message:\n" in prompt:
        part = prompt.rsplit("\nNew message:\n", 1)[1]
    else:
        part = prompt.split("\n\n", 1)[1] if "\n\n" in prompt else prompt
    rows = part.rstrip("\n").split("\n")
    label, sep, first = rows[0].partition(": ")
    if not sep:
        label, first = "someone", rows[0]
    rest = [r[len(common.GUTTER) :] if r.startswith(common.GUTTER) else r for r in rows[1:]]
    return label, [first, *rest]


if __name__ == "__main__":
    Fake(parse_args(sys.argv[1:])).main()
