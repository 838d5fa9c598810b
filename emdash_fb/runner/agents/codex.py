"""The ``codex`` agent: OpenAI's Codex CLI, one ``codex exec --json`` process per turn.

Each turn runs::

    codex exec --json --skip-git-repo-check [--image=FILE ...] --sandbox=S [--model=M] -
    codex exec --json --skip-git-repo-check [--image=FILE ...] --sandbox=S [--model=M] resume THREAD -

in the turn's working folder, with the prompt written to stdin (``-``). Every
flag goes before ``resume``: the exec options are accepted there and apply to
the resumed thread too. The first turn sends the whole conversation
(:func:`~emdash_fb.runner.agents.base.build_prompt`); the thread id Codex
reports (``thread.started``) is yielded as an :class:`AgentSession`, and the
next turn (on any runner) resumes that thread and sends only the mode line and
the new message -- Codex remembers the rest. A thread Codex no longer has
(another machine, deleted sessions) is not an error: the turn starts a new
thread with the whole conversation (and logs it).

Options (all strings):

* ``bin``: the command line that starts the CLI (shlex-split); default
  ``codex``, or ``$EMDASH_FB_CODEX_BIN``.
* ``model``: passed as ``--model``; default: Codex's own configuration.
* ``sandbox``: ``workspace-write`` (default), ``read-only`` or
  ``danger-full-access`` -- for the OWNER's messages only.
* ``timeout``: seconds for a whole turn (default 1800).
* ``interrupt_grace``: seconds a cancelled turn's CLI may take to stop after
  SIGINT before it is killed (default 3).

Who may do what. ``codex exec`` never asks for approvals (it runs with approval
policy "never"), so there is no hook through which people could approve a
tool. The sandbox is therefore the whole policy: a message from anyone but the
session's owner always runs with ``--sandbox=read-only`` (Codex may read files
and run commands that only read; it can't write files or use the network),
whatever the ``sandbox`` option or the owner's approval policy says -- the
policy can't widen it, since nothing would ask. Plan-mode turns are read-only
too. ``--dangerously-bypass-approvals-and-sandbox`` / ``--yolo`` /
``--full-auto`` are never passed.

Events (``codex exec --json``, one JSON object per line): ``thread.started``
-> AgentSession; ``item.*`` with item ``type`` (older releases:
``item_type``) ``agent_message`` -> text, once per item (a blank line between
messages); ``command_execution`` -> a ``shell`` tool with the command, its
result the aggregated output (ok when it completed with exit code 0);
``file_change`` -> a ``file_change`` tool listing ``kind path`` of each change
(ok when completed); ``mcp_tool_call`` -> a ``server.tool`` tool with its
arguments and its result text or error; ``web_search`` -> a ``web_search``
tool with the query; ``reasoning``, ``todo_list`` and unknown items are
skipped; an ``error`` item (a warning) is logged. ``turn.completed`` ends the
turn; ``turn.failed`` fails it with its message; a top-level ``error`` event is
remembered (Codex also reports errors it retries that way) and fails the turn
only if the turn doesn't complete. Lines that are not JSON are skipped (logged
at debug), malformed events are skipped (logged as warnings). Tool ids are
made key-safe (:func:`~emdash_fb.runner.agents.base.safe_id`).

Attachments: images are written to a private temporary folder, passed with
``--image`` and removed after the turn; text files are added to the new
message as ``name:`` and their text (behind the message's gutter, so no line
of a file can pass for a message).

Cancelling a turn sends SIGINT to the CLI's process group, as Ctrl+C in a
terminal would: ``codex exec`` then interrupts the turn and keeps the thread
(its rollout file), so the next turn resumes it. Whatever hasn't stopped
after a few seconds is killed.

Failures are one line: the CLI not installed ("Codex CLI not found: codex;
install it with npm install -g @openai/codex"), too old to know
``exec --json`` / ``exec resume`` (one line saying to upgrade), the CLI
exiting mid-turn ("Codex CLI exited with status N: <its last stderr line>"),
a failed turn ("Codex failed: <message>"), a timeout.

Needs a Codex CLI from October 2025 or later (0.45+): ``codex exec --json``
printing ``thread.started`` / ``item.*`` events, and ``codex exec resume``.

Sources this module was checked against (openai/codex):
``codex-rs/exec/src/exec_events.rs`` (event and item shapes),
``codex-rs/exec/src/event_processor_with_jsonl_output.rs`` (which items start,
update and complete; ``error`` events are not final; agent messages only
complete), ``codex-rs/exec/src/cli.rs`` and
``codex-rs/utils/cli/src/shared_options.rs`` (flags; ``resume SESSION_ID
PROMPT``; ``-`` reads stdin; root options are inherited by ``resume``;
``--image`` takes a comma-separated list), ``codex-rs/exec/src/lib.rs``
(approval policy forced to "never"; Ctrl+C sends ``turn/interrupt``; an
interrupted or failed turn exits 1; resuming an unknown thread fails with "no
rollout found for thread id" in current releases and silently starts a new
thread in older ones), PR openai/codex#4525 (the ``--json`` event format,
``item_type`` in its first release), and the "Non-interactive mode" page of
the Codex docs (``codex exec`` defaults to a read-only sandbox; flags go
between ``exec`` and ``resume``).

The process plumbing shared with the ``gemini`` agent (starting a CLI with
one-line errors, reading its JSON lines under a deadline, interrupting it) is
:func:`run_json_cli` and the helpers next to it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from emdash_fb.runner.agents.base import (
    AgentError,
    AgentEvent,
    AgentSession,
    Options,
    TextDelta,
    ToolResult,
    ToolStart,
    TurnInput,
    build_prompt,
    safe_id,
    summarize_input,
    truncate,
)
from emdash_fb.runner.agents.json_cli import (
    DEFAULT_TIMEOUT,
    INTERRUPT_GRACE,
    CliExit,
    StaleSession,
    attachment_name,
    cli_argv,
    continued_prompt,
    is_too_old,
    parse_json,
    run_json_cli,
    text_field,
    valid_session_id,
    with_text_files,
)
from emdash_fb.runner.agents.process import (
    check_installed,
    exit_error,
)
from emdash_fb.session.text import for_log, one_line

log = logging.getLogger(__name__)

BIN_ENV = "EMDASH_FB_CODEX_BIN"
WHAT = "Codex CLI"
INSTALL = "npm install -g @openai/codex"
UPGRADE = (
    "Codex CLI is too old for the codex agent (it needs `codex exec --json` with thread "
    "events and `codex exec resume`, 0.45 or newer); upgrade it with "
    "npm install -g @openai/codex@latest"
)
SANDBOXES = ("workspace-write", "read-only", "danger-full-access")
# How Codex says it has no such thread (current releases; older ones start a new thread).
STALE_THREAD = re.compile(
    r"no rollout found|thread not found|conversation not found|no (?:saved )?session found",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- codex events


class CodexStream:
    """Codex ``exec --json`` lines -> events (see the module docstring)."""

    def __init__(self, *, resume: str | None, model: str | None) -> None:
        self.resume = resume
        self.model = model
        self.finished = False
        self.completed = False  # turn.completed seen
        self.failure: str | None = None  # turn.failed's message
        self.last_error: str | None = None  # the latest top-level error event
        self.thread_id: str | None = None
        self.seen_events = False
        self.legacy = False  # the pre-October-2025 {"id", "msg"} format
        self.emitted = False  # any event yielded yet
        self._texts: set[str] = set()
        self._started: set[str] = set()
        self._finished_tools: set[str] = set()
        self._text_so_far = ""
        self._count = 0

    def feed_line(self, line: str) -> list[AgentEvent]:
        obj = parse_json(line, WHAT)
        if obj is None:
            return []
        kind = obj.get("type")
        if not isinstance(kind, str):
            if isinstance(obj.get("msg"), dict):  # the {"id", "msg"} format before Oct 2025
                self.legacy = self.finished = True
            else:
                log.warning("Codex CLI sent an event without a type: %s", for_log(line))
            return []
        self.seen_events = True
        events = self._event(kind, obj)
        self.emitted = self.emitted or bool(events)
        return events

    def _event(self, kind: str, obj: dict[str, Any]) -> list[AgentEvent]:
        if kind == "thread.started":
            return self._thread_started(obj)
        if kind in ("item.started", "item.updated", "item.completed"):
            item = obj.get("item")
            if isinstance(item, dict):
                return self._item(item, done=kind == "item.completed")
            log.warning("Codex CLI sent %s without an item", kind)
        elif kind == "turn.completed":
            self.completed = self.finished = True
            log.debug("codex usage: %s", for_log(obj.get("usage")))
        elif kind == "turn.failed":
            self.failure = _error_message(obj.get("error")) or "the turn failed"
            self.finished = True
        elif kind == "error":
            self.last_error = _error_message(obj) or "error"
            log.warning("Codex CLI reported: %s", for_log(self.last_error))
        return []

    def _thread_started(self, obj: dict[str, Any]) -> list[AgentEvent]:
        thread_id = text_field(obj.get("thread_id")).strip()
        if not thread_id:
            log.warning("Codex CLI sent thread.started without a thread_id")
            return []
        if self.resume and thread_id != self.resume and not self.emitted:
            # An older Codex starts a new thread when it doesn't have the one asked for:
            # it got only the new message, so this turn starts over with the whole prompt.
            raise StaleSession(thread_id)
        self.thread_id = thread_id
        return [AgentSession(session_id=thread_id, model=self.model)]

    def _item(self, item: dict[str, Any], *, done: bool) -> list[AgentEvent]:
        kind = item.get("type") or item.get("item_type")
        self._count += 1
        item_id = safe_id(item.get("id"), f"item-{self._count}")
        if kind in ("agent_message", "assistant_message", "plan"):
            return self._text(item_id, text_field(item.get("text"))) if done else []
        if kind == "command_execution":
            return self._tool(
                item_id,
                "shell",
                summarize_input(text_field(item.get("command"))),
                _command_result(item) if done else None,
            )
        if kind == "file_change":
            changes = _changes(item.get("changes"))
            ok = item.get("status") == "completed"
            result = ("\n".join(changes) or ("applied" if ok else "failed"), ok)
            return self._tool(
                item_id,
                "file_change",
                summarize_input(", ".join(changes)),
                result if done else None,
            )
        if kind == "mcp_tool_call":
            name = f"{text_field(item.get('server')) or 'mcp'}.{text_field(item.get('tool')) or 'tool'}"
            return self._tool(
                item_id,
                name,
                summarize_input(item.get("arguments")),
                _mcp_result(item) if done else None,
            )
        if kind == "web_search":
            query = text_field(item.get("query"))
            return self._tool(
                item_id, "web_search", summarize_input(query), ("", True) if done else None
            )
        if kind == "error":
            log.warning("Codex CLI warning: %s", for_log(item.get("message")))
        else:
            log.debug("skipping a codex %s item", for_log(kind))
        return []

    def _text(self, item_id: str, text: str) -> list[AgentEvent]:
        if item_id in self._texts or not text:
            return []
        self._texts.add(item_id)
        events: list[AgentEvent] = []
        if self._text_so_far and not self._text_so_far.endswith("\n"):
            events.append(TextDelta("\n\n"))
        events.append(TextDelta(text))
        self._text_so_far = text
        return events

    def _tool(
        self, item_id: str, name: str, summary: str, result: tuple[str, bool] | None
    ) -> list[AgentEvent]:
        events: list[AgentEvent] = []
        if item_id not in self._started:
            self._started.add(item_id)
            events.append(ToolStart(id=item_id, name=name, input=summary))
        if result is not None and item_id not in self._finished_tools:
            self._finished_tools.add(item_id)
            events.append(ToolResult(id=item_id, output=truncate(result[0]), ok=result[1]))
        return events


def _error_message(value: object) -> str:
    if isinstance(value, dict):
        message = value.get("message")
        if isinstance(message, str):
            return one_line(message).strip()
        if isinstance(value.get("error"), dict):
            return _error_message(value["error"])
    if isinstance(value, str):
        return one_line(value).strip()
    return ""


def _command_result(item: dict[str, Any]) -> tuple[str, bool]:
    output = text_field(item.get("aggregated_output"))
    code = item.get("exit_code")
    status = item.get("status")
    ok = status == "completed" and code in (0, None)
    if not ok and not output.strip():
        output = f"({status or 'failed'}, exit code {code})" if code is not None else f"({status})"
    return output, ok


def _changes(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [
        f"{text_field(c.get('kind')) or 'change'} {text_field(c.get('path'))}".strip()
        for c in value
        if isinstance(c, dict)
    ]


def _mcp_result(item: dict[str, Any]) -> tuple[str, bool]:
    error = item.get("error")
    if isinstance(error, dict) and error.get("message"):
        return text_field(error.get("message")), False
    result = item.get("result")
    parts: list[str] = []
    if isinstance(result, dict):
        for block in result.get("content") or []:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(text_field(block.get("text")))
            elif isinstance(block, dict):
                parts.append(f"[{text_field(block.get('type')) or 'content'}]")
        if not parts and result.get("structured_content") is not None:
            parts.append(json.dumps(result["structured_content"], ensure_ascii=False))
    return "\n".join(parts), item.get("status") == "completed"


# --------------------------------------------------------------------------- the agent


class CodexAgent:
    name = "codex"

    def __init__(
        self,
        argv: Sequence[str],
        *,
        model: str | None = None,
        sandbox: str = "workspace-write",
        timeout: float = DEFAULT_TIMEOUT,
        interrupt_grace: float = INTERRUPT_GRACE,
    ) -> None:
        if not argv:
            raise AgentError("the codex agent needs a command to run")
        if sandbox not in SANDBOXES:
            raise AgentError(f"sandbox={sandbox!r} must be one of {', '.join(SANDBOXES)}")
        self.argv = list(argv)
        self.model = model or None
        self.sandbox = sandbox
        self.timeout = timeout
        self.interrupt_grace = interrupt_grace

    @classmethod
    def from_options(
        cls, options: Mapping[str, str] | None, env: Mapping[str, str] = os.environ
    ) -> CodexAgent:
        opts = Options("codex", options, ("bin", "model", "sandbox", "timeout", "interrupt_grace"))
        timeout = opts.number("timeout", DEFAULT_TIMEOUT)
        if timeout <= 0:
            raise AgentError("option timeout for the codex agent must be more than 0")
        return cls(
            cli_argv("codex", opts, env, BIN_ENV, "codex"),
            model=(opts.get("model") or "").strip() or None,
            sandbox=opts.choice("sandbox", SANDBOXES),
            timeout=timeout,
            interrupt_grace=opts.number("interrupt_grace", INTERRUPT_GRACE),
        )

    def sandbox_for(self, turn: TurnInput) -> str:
        """The owner's sandbox; read-only for anyone else's message and for plan mode."""
        if not turn.by_owner or turn.mode == "plan":
            return "read-only"
        return self.sandbox

    def command(self, turn: TurnInput, resume: str | None, images: Sequence[Path]) -> list[str]:
        argv = [*self.argv, "exec", "--json", "--skip-git-repo-check"]
        # --image takes several values (comma-separated, or following words): a flag must
        # follow the last one, and the file names (attachment_name) have no commas.
        argv += [f"--image={path}" for path in images]
        argv.append(f"--sandbox={self.sandbox_for(turn)}")
        if self.model:
            argv.append(f"--model={self.model}")
        if resume:
            argv += ["resume", resume]
        argv.append("-")
        return argv

    def preflight(self) -> None:
        """Fail at start-up, in one line, when the CLI isn't installed."""
        check_installed(self.argv, WHAT, INSTALL)

    async def run(self, turn: TurnInput) -> AsyncIterator[AgentEvent]:
        resume = valid_session_id(turn.resume, "codex")
        with tempfile.TemporaryDirectory(prefix="emdash-codex-") as folder:
            images: list[Path] = []
            texts: list[tuple[str, str]] = []
            for i, attachment in enumerate(turn.attachments, 1):
                if attachment.is_image:
                    path = Path(folder) / attachment_name(i, attachment)
                    path.write_bytes(attachment.data)
                    images.append(path)
                else:
                    texts.append((attachment.name, attachment.text()))
            prompted = with_text_files(turn, texts)
            while True:
                prompt = continued_prompt(prompted) if resume else build_prompt(prompted)
                stream = CodexStream(resume=resume, model=self.model)
                result = CliExit()
                try:
                    async with contextlib.aclosing(
                        run_json_cli(
                            self.command(turn, resume, images),
                            Path(turn.workdir),
                            stdin=prompt,
                            translator=stream,
                            result=result,
                            what=WHAT,
                            install=INSTALL,
                            timeout=self.timeout,
                            grace=self.interrupt_grace,
                        )
                    ) as events:
                        async for event in events:
                            yield event
                    self._outcome(stream, result, resume)
                    return
                except StaleSession:
                    if resume is None:
                        raise AgentError(
                            "Codex CLI started a thread it was not asked for"
                        ) from None
                    log.warning(
                        "Codex has no thread %s (here); starting a new one with the whole "
                        "conversation",
                        resume,
                    )
                    resume = None

    def _outcome(self, stream: CodexStream, result: CliExit, resume: str | None) -> None:
        """Raise what the finished process means: nothing for a completed turn."""
        code, tail = result.returncode, result.stderr
        if stream.legacy or is_too_old(code, tail, stream.seen_events):
            raise AgentError(UPGRADE, tail)
        if resume and not stream.emitted and code not in (0, None) and STALE_THREAD.search(tail):
            raise StaleSession(resume)
        if stream.failure:
            raise AgentError(f"Codex failed: {stream.failure}", tail)
        if stream.completed:
            return
        if code not in (0, None):
            if stream.last_error:
                raise AgentError(f"Codex failed: {stream.last_error}", tail)
            raise exit_error(code, tail, what=WHAT)
        if stream.last_error:
            raise AgentError(f"Codex failed: {stream.last_error}", tail)
