"""The ``gemini`` agent: Google's Gemini CLI, one headless ``stream-json`` process per turn.

Each turn runs::

    gemini --output-format stream-json --approval-mode=MODE [--model=M]
           [--resume=SESSION_ID] [--allowed-tools=T1,T2,...]

in the turn's working folder with the prompt on stdin (a piped stdin makes the
CLI headless and is its input; no ``-p`` needed). The first turn sends the
whole conversation (:func:`~emdash_fb.runner.agents.base.build_prompt`); the
``session_id`` of the ``init`` event is yielded as an :class:`AgentSession`,
and the next turn (on any runner, in the same folder: Gemini keeps sessions per
project) resumes it and sends only the mode line and the new message. A session
Gemini doesn't have ("Invalid session identifier") is not an error: the turn
starts a new session with the whole conversation (and logs it).

Options (all strings):

* ``bin``: the command line that starts the CLI (shlex-split); default
  ``gemini``, or ``$EMDASH_FB_GEMINI_BIN``.
* ``model``: passed as ``--model``; default: Gemini's own choice.
* ``approval_mode``: ``auto_edit`` (default), ``default``, ``yolo`` or
  ``plan`` -- for the OWNER's messages only.
* ``trust``: ``yes`` sets ``GEMINI_CLI_TRUST_WORKSPACE=true`` for the CLI, for
  releases that refuse to run headless in a folder the user hasn't trusted
  (that also lets the folder's own ``.gemini`` settings apply); default ``no``:
  trust the folder in Gemini yourself.
* ``timeout``: seconds for a whole turn (default 1800).
* ``interrupt_grace``: seconds a cancelled turn's CLI may take to stop after
  SIGINT before it is killed (default 3).

Who may do what. Headless Gemini can't ask anyone to approve a tool: a tool
that needs confirmation under the approval mode is refused by the CLI itself.
So a message from anyone but the session's owner always runs with
``--approval-mode=default`` and ``--allowed-tools`` set to exactly the tools
the owner's policy pre-approves (``TurnInput.preapproved``) that Gemini knows
(its read-only tools need no approval anyway): a guest can make Gemini read
and search, never edit files or run commands unless the owner's policy
pre-approves ``write_file`` / ``replace`` / ``run_shell_command``. ``--yolo``
is never passed for a guest. The owner's messages run with ``approval_mode``
(and the same ``--allowed-tools``); plan-mode turns use ``default`` for
everyone. The user's own Gemini settings and policy files still apply on top.

Events (``--output-format stream-json``, one JSON object per line): ``init``
-> AgentSession(session_id, model); ``message`` with role ``assistant`` -> its
``content`` as text (deltas stream as they come; a whole message that repeats
the deltas before it is skipped; a blank line separates text before and after
tool calls); ``tool_use`` -> ToolStart(tool_id, tool_name,
parameters summarised); ``tool_result`` -> ToolResult (ok when status is
``success``; output, or the error's message); ``error`` events are logged
(``warning``) or remembered (``error``); ``result`` ends the turn, failing it
when its status is ``error``. User messages (the CLI echoes the prompt) and
unknown events are skipped; lines that are not JSON are skipped (logged at
debug), malformed ones logged as warnings. Tool ids are made key-safe.

Attachments (images and text files) are written to
``<workdir>/.emdash-attachments/<message id>/`` and named in the new message
with Gemini's ``@path`` syntax (the CLI reads them into the prompt itself); the
folder is removed after the turn. Note that Gemini expands ``@path`` anywhere
in its input, so a message mentioning ``@some/file`` of the working folder
inlines that file (read-only, within the workspace).

Cancelling sends SIGINT to the CLI's process group (Ctrl+C): Gemini records
the session as it goes (every message is written to its session file), exits
130, and the next turn resumes the session. Whatever hasn't stopped after a
few seconds is killed.

Failures are one line: the CLI not installed ("Gemini CLI not found: gemini;
install it with npm install -g @google/gemini-cli"), too old (no
``stream-json`` or ``--resume``: one line saying to upgrade), an untrusted
folder, the CLI exiting mid-turn ("Gemini CLI exited with status N: <its last
stderr line>"), a failed turn ("Gemini failed: <message>"), a timeout.

Needs Gemini CLI 0.20 or newer (``--output-format stream-json`` and session
``--resume``).

Sources this module was checked against (google-gemini/gemini-cli):
``docs/cli/headless.md`` (stream-json event types, piped stdin is the input,
exit codes: 42 input error, 130 cancelled), ``docs/cli/cli-reference.md``
(``--resume`` by id, ``--approval-mode`` choices, ``--allowed-tools``,
``--output-format``), ``docs/cli/non-interactive-automation.md`` (tools that
need approval are denied headless; ``auto_edit`` allows edits, not shell),
``docs/cli/session-management.md`` (sessions are saved automatically, per
project), ``packages/core/src/output/types.ts`` (event shapes),
``packages/cli/src/nonInteractiveCli.ts`` (init after resume, assistant deltas,
``@`` processing of the input), ``packages/cli/src/config/config.ts``
(comma-separated ``--allowed-tools``, strict argument parsing),
``packages/core/src/tools/tool-names.ts`` (tool names, ``search_file_content``
now ``grep_search``), ``packages/core/src/services/chatRecordingService.ts``
(the session file is rewritten on each message); the "Invalid session
identifier" and trusted-folder (exit 55, ``GEMINI_CLI_TRUST_WORKSPACE``) messages
from issues google-gemini/gemini-cli#18776 and reports quoting the CLI.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
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
)
from emdash_fb.runner.agents.process import check_installed, exit_error
from emdash_fb.session.text import for_log, one_line

log = logging.getLogger(__name__)

BIN_ENV = "EMDASH_FB_GEMINI_BIN"
WHAT = "Gemini CLI"
INSTALL = "npm install -g @google/gemini-cli"
UPGRADE = (
    "Gemini CLI is too old for the gemini agent (it needs --output-format stream-json and "
    "--resume, 0.20 or newer); upgrade it with npm install -g @google/gemini-cli@latest"
)
APPROVAL_MODES = ("auto_edit", "default", "yolo", "plan")
ATTACHMENTS = ".emdash-attachments"
#: Built-in tools of Gemini CLI (tool-names.ts), the names ``--allowed-tools`` takes.
GEMINI_TOOLS = frozenset(
    {
        "read_file", "read_many_files", "list_directory", "glob", "grep_search",
        "search_file_content", "google_web_search", "web_fetch", "write_file", "replace",
        "run_shell_command", "save_memory", "write_todos", "activate_skill", "get_internal_docs",
    }
)  # fmt: skip
# A shell tool narrowed to a command prefix, as Gemini accepts it: run_shell_command(git status)
SHELL_PREFIX = re.compile(r"^run_shell_command\([^,()\x00-\x1f\x7f]+\)$")
STALE_SESSION = re.compile(
    r"invalid session identifier|no previous sessions found|session not found", re.IGNORECASE
)
UNTRUSTED = re.compile(r"not running in a trusted directory", re.IGNORECASE)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")


def allowed_tools(preapproved: frozenset[str]) -> list[str]:
    """The pre-approved tools Gemini knows, as ``--allowed-tools`` takes them (sorted)."""
    return sorted(t for t in preapproved if t in GEMINI_TOOLS or SHELL_PREFIX.match(t))


def _flag(options: Options, key: str) -> bool:
    raw = (options.get(key) or "").strip().lower()
    if raw in ("", "0", "no", "false", "off"):
        return False
    if raw in ("1", "yes", "true", "on"):
        return True
    raise AgentError(f"option {key}={raw!r} for the gemini agent must be yes or no")


class GeminiStream:
    """Gemini ``stream-json`` lines -> events (see the module docstring)."""

    def __init__(self) -> None:
        self.finished = False
        self.completed = False  # a successful result
        self.failure: str | None = None  # a failed result's message
        self.last_error: str | None = None  # the latest error event of severity "error"
        self.session_id: str | None = None
        self.seen_events = False
        self.emitted = False
        self._count = 0
        self._text_so_far = ""
        self._tool_since_text = False
        self._streamed = False  # assistant deltas since the last tool event

    def feed_line(self, line: str) -> list[AgentEvent]:
        obj = parse_json(line, WHAT, log)
        if obj is None:
            return []
        kind = obj.get("type")
        if not isinstance(kind, str):
            log.warning("Gemini CLI sent an event without a type: %s", for_log(line))
            return []
        self.seen_events = True
        events = self._event(kind, obj)
        self.emitted = self.emitted or bool(events)
        return events

    def _event(self, kind: str, obj: dict[str, Any]) -> list[AgentEvent]:
        if kind == "init":
            session_id = text_field(obj.get("session_id")).strip()
            if not session_id:
                log.warning("Gemini CLI sent init without a session_id")
                return []
            self.session_id = session_id
            model = text_field(obj.get("model")).strip() or None
            return [AgentSession(session_id=session_id, model=model)]
        if kind == "message":
            if obj.get("role") != "assistant":
                return []
            if obj.get("delta") is not True and self._streamed:
                return []  # a whole message repeating the deltas just streamed
            self._streamed = obj.get("delta") is True
            return self._text(text_field(obj.get("content")))
        if kind == "tool_use":
            self._count += 1
            self._tool_since_text = True
            self._streamed = False
            tool_id = safe_id(obj.get("tool_id"), f"tool-{self._count}")
            name = text_field(obj.get("tool_name")) or "tool"
            return [ToolStart(id=tool_id, name=name, input=summarize_input(obj.get("parameters")))]
        if kind == "tool_result":
            self._tool_since_text = True
            self._streamed = False
            tool_id = safe_id(obj.get("tool_id"), f"tool-{self._count}")
            ok = obj.get("status") == "success"
            output = obj.get("output")
            if not isinstance(output, str) or (not ok and not output):
                output = _message(obj.get("error")) or text_field(output)
            return [ToolResult(id=tool_id, output=truncate(output), ok=ok)]
        if kind == "error":
            message = _message(obj) or "error"
            if obj.get("severity") == "warning":
                log.warning("Gemini CLI warning: %s", for_log(message))
            else:
                self.last_error = message
                log.warning("Gemini CLI reported: %s", for_log(message))
        elif kind == "result":
            self.finished = True
            log.debug("gemini stats: %s", for_log(obj.get("stats")))
            if obj.get("status") == "success":
                self.completed = True
            else:
                self.failure = _message(obj.get("error")) or self.last_error or "the turn failed"
        return []

    def _text(self, text: str) -> list[AgentEvent]:
        if not text:
            return []
        events: list[AgentEvent] = []
        if self._tool_since_text and self._text_so_far and not self._text_so_far.endswith("\n"):
            events.append(TextDelta("\n\n"))
        self._tool_since_text = False
        events.append(TextDelta(text))
        self._text_so_far = text
        return events


def _message(value: object) -> str:
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return one_line(value["message"]).strip()
    return ""


class GeminiAgent:
    name = "gemini"

    def __init__(
        self,
        argv: Sequence[str],
        *,
        model: str | None = None,
        approval_mode: str = "auto_edit",
        trust: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        interrupt_grace: float = INTERRUPT_GRACE,
    ) -> None:
        if not argv:
            raise AgentError("the gemini agent needs a command to run")
        if approval_mode not in APPROVAL_MODES:
            raise AgentError(
                f"approval_mode={approval_mode!r} must be one of {', '.join(APPROVAL_MODES)}"
            )
        self.argv = list(argv)
        self.model = model or None
        self.approval_mode = approval_mode
        self.trust = trust
        self.timeout = timeout
        self.interrupt_grace = interrupt_grace

    @classmethod
    def from_options(
        cls, options: Mapping[str, str] | None, env: Mapping[str, str] = os.environ
    ) -> GeminiAgent:
        opts = Options(
            "gemini",
            options,
            ("bin", "model", "approval_mode", "trust", "timeout", "interrupt_grace"),
        )
        timeout = opts.number("timeout", DEFAULT_TIMEOUT)
        if timeout <= 0:
            raise AgentError("option timeout for the gemini agent must be more than 0")
        return cls(
            cli_argv("gemini", opts, env, BIN_ENV, "gemini"),
            model=(opts.get("model") or "").strip() or None,
            approval_mode=opts.choice("approval_mode", APPROVAL_MODES),
            trust=_flag(opts, "trust"),
            timeout=timeout,
            interrupt_grace=opts.number("interrupt_grace", INTERRUPT_GRACE),
        )

    def approval_for(self, turn: TurnInput) -> str:
        """The owner's approval mode; ``default`` for anyone else's message and plan mode."""
        if not turn.by_owner or turn.mode == "plan":
            return "default"
        return self.approval_mode

    def command(self, turn: TurnInput, resume: str | None) -> list[str]:
        argv = [*self.argv, "--output-format", "stream-json"]
        argv.append(f"--approval-mode={self.approval_for(turn)}")
        if self.model:
            argv.append(f"--model={self.model}")
        if resume:
            argv.append(f"--resume={resume}")
        tools = allowed_tools(turn.preapproved)
        if tools:
            argv.append("--allowed-tools=" + ",".join(tools))
        return argv

    def preflight(self) -> None:
        """Fail at start-up, in one line, when the CLI isn't installed."""
        check_installed(self.argv, WHAT, INSTALL)

    async def run(self, turn: TurnInput) -> AsyncIterator[AgentEvent]:
        resume = valid_session_id(turn.resume, "gemini", log)
        workdir = Path(turn.workdir)
        env = {**os.environ, "GEMINI_CLI_TRUST_WORKSPACE": "true"} if self.trust else None
        folder: Path | None = None
        try:
            prompted = turn
            if turn.attachments and workdir.is_dir():
                folder, prompted = self._attach(turn, workdir)
            while True:
                prompt = continued_prompt(prompted) if resume else build_prompt(prompted)
                stream = GeminiStream()
                result = CliExit()
                try:
                    async with contextlib.aclosing(
                        run_json_cli(
                            self.command(turn, resume),
                            workdir,
                            stdin=prompt,
                            translator=stream,
                            result=result,
                            what=WHAT,
                            install=INSTALL,
                            timeout=self.timeout,
                            grace=self.interrupt_grace,
                            env=env,
                        )
                    ) as events:
                        async for event in events:
                            yield event
                    self._outcome(stream, result, resume, workdir)
                    return
                except StaleSession:
                    log.warning(
                        "Gemini has no session %s (in %s); starting a new one with the whole "
                        "conversation",
                        resume,
                        workdir,
                    )
                    resume = None
        finally:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
                with contextlib.suppress(OSError):
                    folder.parent.rmdir()  # only when no other turn's files are in it

    def _attach(self, turn: TurnInput, workdir: Path) -> tuple[Path, TurnInput]:
        """Write the attachments under the workdir; the turn that names them with ``@path``."""
        name = _UNSAFE_NAME.sub("_", turn.message_id)[:80] or "message"
        folder = workdir / ATTACHMENTS / name
        folder.mkdir(parents=True, exist_ok=True)
        refs = []
        for i, attachment in enumerate(turn.attachments, 1):
            file_name = attachment_name(i, attachment)
            (folder / file_name).write_bytes(attachment.data)
            refs.append(f"@{ATTACHMENTS}/{name}/{file_name}")
        text = f"{turn.message.text}\n\nAttached files:\n" + "\n".join(refs)
        message = dataclasses.replace(turn.message, text=text)
        return folder, dataclasses.replace(turn, message=message)

    def _outcome(
        self, stream: GeminiStream, result: CliExit, resume: str | None, workdir: Path
    ) -> None:
        """Raise what the finished process means: nothing for a successful turn."""
        code, tail = result.returncode, result.stderr
        if is_too_old(code, tail, stream.seen_events):
            raise AgentError(UPGRADE, tail)
        if code not in (0, None) and not stream.seen_events and UNTRUSTED.search(tail):
            raise AgentError(
                f"Gemini CLI does not trust the folder {workdir}: trust it in gemini, or set "
                "the gemini agent's option trust=yes",
                tail,
            )
        if resume and not stream.emitted and code not in (0, None) and STALE_SESSION.search(tail):
            raise StaleSession(resume)
        if stream.failure:
            raise AgentError(f"Gemini failed: {stream.failure}", tail)
        if stream.completed:
            return
        if code not in (0, None):
            if stream.last_error:
                raise AgentError(f"Gemini failed: {stream.last_error}", tail)
            raise exit_error(code, tail, what=WHAT)
