"""The ``claude`` agent: one long-lived Claude Code process per session, approvals shared.

Each emdash session (``TurnInput.session``) gets its own Claude Code process,
started on the session's first turn in the turn's ``workdir`` and kept for
the turns after it::

    claude -p --input-format stream-json --output-format stream-json --verbose
        --include-partial-messages --permission-prompt-tool stdio
        [--resume=<session id>] [--model M] --permission-mode <mode>
        --append-system-prompt <the shared-session instructions>

Options (all strings):

* ``bin``: the command line that runs Claude Code, split with ``shlex``
  (default ``claude``; env fallback ``EMDASH_FB_CLAUDE_BIN``), e.g.
  ``bin="/usr/bin/python3 tests/support/fake_claude.py"``.
* ``model``: passed as ``--model`` (default: the CLI's own).
* ``permission_mode``: the Claude Code permission mode for the *owner's*
  messages -- ``default`` (the default), ``acceptEdits``, ``plan``,
  ``dontAsk`` or ``bypassPermissions``. Messages from anyone else always run
  in ``default`` mode, so every tool that is not read-only asks first.
* ``interrupt_grace``: seconds a cancelled turn may take to stop after the
  interrupt request before the process is killed (default 5).

What a turn does:

1. Before the message is written, the process is put in the turn's permission
   mode: ``default`` for a non-owner, ``permission_mode`` for the owner. A live
   process in another mode gets a ``set_permission_mode`` control request, and
   the message is written only after the CLI confirmed it; if it refuses (a
   process not started in ``bypassPermissions`` cannot switch to it) the
   process is restarted with ``--resume`` and ``--permission-mode``. The mode
   is always given on the command line, so a ``defaultMode`` in the user's
   settings cannot loosen it. ``--dangerously-skip-permissions`` is never used.
2. One ``{"type": "user", "message": {"role": "user", "content": [...]}}``
   line: a text block with the prompt, then per attachment an ``image`` block
   (``{"type": "base64", "media_type", "data"}``) or a text block
   ``"<file name>:\\n<text>"``. The prompt is ``mode_line`` + a blank line +
   the new message (:func:`~emdash_fb.runner.agents.base.format_message`) when
   the native session already holds the conversation (a live process that
   answered before, or a ``--resume``); otherwise it carries the history too
   (``Conversation so far:`` ... ``New message:`` ..., the layout of
   :func:`~emdash_fb.runner.agents.base.build_prompt`). The instructions of
   :func:`~emdash_fb.runner.agents.base.system_intro` go in
   ``--append-system-prompt``.
3. Events until the turn's ``result``: ``system``/``init`` (and a ``result``)
   give the session id and model -> :class:`AgentSession` whenever they differ
   from what was last reported; ``assistant`` text and ``tool_use`` and
   ``user`` ``tool_result`` blocks, and ``stream_event`` text deltas, become
   TextDelta / ToolStart / ToolResult (:class:`~.jsonl.JsonlTranslator`); a
   ``result`` with ``is_error`` or an ``error*`` subtype fails the turn with
   its text. Lines that are not JSON are skipped (logged at debug), malformed
   JSON lines are skipped and logged as warnings; lines of any length are read.
4. A ``control_request`` ``can_use_tool`` (``tool_name``, ``input``,
   ``tool_use_id``) -> :class:`ApprovalNeeded` with ``id = safe_id(request_id)``,
   a one-line ``summary`` (the command for Bash, ``edit <file>`` /
   ``write <file>`` for Edit, MultiEdit and Write, else
   :func:`~emdash_fb.runner.agents.base.summarize_input`) and a ``detail``
   (a unified diff of at most 20 lines for Edit/MultiEdit, the first 20 lines
   of a Write, the whole command when it is longer than one line or than the
   summary can show). The runner's :class:`Decision` is answered with
   ``{"behavior": "allow", "updatedInput": <the input as asked>}`` or
   ``{"behavior": "deny", "message": <reason, or "denied by <by>">}`` inside a
   ``control_response``; no Decision at all is a deny. While the runner takes
   its time, the process's output keeps being read (nothing blocks; other
   sessions go on).

Resume: the session id the CLI reports is kept. When the process died (or was
killed) the next turn starts a new one with ``--resume`` of that id; when
``TurnInput.resume`` names another session than the live process holds (another
runner moved on), the process is restarted with ``--resume`` of it. If the CLI
no longer knows the id ("No conversation found with session ID"), the turn
starts a fresh session with the full prompt instead, reports the new id and
logs it.

Cancelling (the task driving :meth:`ClaudeAgent.run` is cancelled, or the
generator is closed): a pending approval is denied, an ``interrupt`` control
request is sent, and the turn waits up to ``interrupt_grace`` seconds for its
``result`` (an interrupted turn ends with an ``error_during_execution``
result); the process is kept for the next turn. If it does not stop in time,
its process group is killed and the next turn resumes the session in a new
process. Only CancelledError (or GeneratorExit) leaves a cancelled turn.

Failures are one line: ``Claude Code not found: claude: install it with npm
install -g @anthropic-ai/claude-code``; ``Claude Code is too old ...`` when it
rejects an option (it needs 2.0 or newer); ``Claude Code exited with status N:
<last stderr line>`` when it ends mid-turn; ``Claude Code reported an error:
<text>`` for an error result. Turns of one session never interleave (a lock
per session); sessions run in parallel, each in its own process.
:meth:`ClaudeAgent.close` ends every process (stdin closed, a moment to exit,
then the process group is stopped).

What this relies on (checked against the sources, not guessed):

* Anthropic's Agent SDK for Python, ``anthropics/claude-agent-sdk-python``:
  ``src/claude_agent_sdk/_internal/transport/subprocess_cli.py`` (the command
  line: ``--output-format stream-json --verbose --input-format stream-json``,
  ``--permission-prompt-tool``, ``--permission-mode``, ``--model``,
  ``--append-system-prompt``, ``--include-partial-messages``; ``--resume=ID``
  in one argument so an id can never be read as an option; stdout lines that
  are not JSON are skipped; minimum CLI version 2.0.0; ``-v`` prints
  ``X.Y.Z (Claude Code)``), ``src/claude_agent_sdk/_internal/query.py`` (the
  ``control_request`` / ``control_response`` envelopes with ``request_id``;
  ``can_use_tool`` answered with ``behavior`` ``allow`` + ``updatedInput`` or
  ``deny`` + ``message``; ``interrupt`` and ``set_permission_mode``
  requests; ``control_cancel_request``; error responses),
  ``src/claude_agent_sdk/client.py`` (``--permission-prompt-tool stdio``
  routes permission prompts over this protocol) and
  ``src/claude_agent_sdk/types.py`` (the permission modes).
* The CLI reference, https://docs.anthropic.com/en/docs/claude-code/cli-reference
  (``-p``, ``--input-format``/``--output-format`` for print mode,
  ``--include-partial-messages``, ``--append-system-prompt``, ``--resume``,
  ``--model``, ``--permission-mode``).
* Captures of the real CLI in ``hrntknr/claude-code-protocol``
  (``docs/15_permission_tool.md``: the ``can_use_tool`` request and a denied
  tool's ``is_error`` tool_result; ``docs/14_control_request.md`` and
  ``12_control_request_test.go``: ``set_permission_mode`` answered with
  ``{"mode": ...}`` and followed by a new ``system``/``init``;
  ``utils/harness.go``: the CLI answers ``can_use_tool`` without an
  ``initialize`` request first, so none is sent).
* Issues: anthropics/claude-agent-sdk-typescript#366 (an interrupted turn
  ends with ``[Request interrupted by user]`` and an ``error_during_execution``
  result), anthropics/claude-code#94741 (that result may have no ``result``
  field), meawoppl/rust-code-agent-sdks#218 (``interrupt`` works only inside a
  ``control_request`` envelope, checked with ``--print``), anthropics/claude-code
  #62851 and #1977 (``No conversation found with session ID: <id>`` on a
  failed ``--resume``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import difflib
import json
import logging
import os
import re
import shlex
import signal
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emdash_fb.runner.agents.base import (
    AgentError,
    AgentEvent,
    AgentSession,
    ApprovalNeeded,
    Decision,
    Options,
    TurnInput,
    conversation_lines,
    format_message,
    mode_line,
    safe_id,
    summarize_input,
    system_intro,
)
from emdash_fb.runner.agents.jsonl import JsonlTranslator
from emdash_fb.runner.agents.process import (
    check_installed,
    collect_tail,
    exit_error,
    feed,
    killpg,
    read_lines,
    settle,
    spawn,
    stop,
    tail_text,
)
from emdash_fb.session.text import one_line

log = logging.getLogger(__name__)

BIN_ENV = "EMDASH_FB_CLAUDE_BIN"
DEFAULT_BIN = "claude"
WHAT = "Claude Code"
INSTALL = "install it with npm install -g @anthropic-ai/claude-code"
TOO_OLD = (
    "Claude Code is too old for emdash-fb (it needs 2.0 or newer, with "
    "--permission-prompt-tool stdio): upgrade with npm install -g @anthropic-ai/claude-code"
)
PERMISSION_MODES = ("default", "acceptEdits", "plan", "dontAsk", "bypassPermissions")
#: The mode every message not written by the session's owner runs in.
GUEST_MODE = "default"
DEFAULT_INTERRUPT_GRACE = 5.0
#: How long a control request (set_permission_mode) may wait for its answer.
CONTROL_TIMEOUT = 10.0
#: After stdin is closed (close()), how long the CLI may take to exit by itself.
CLOSE_GRACE = 1.0
#: Lines of an approval's detail (a diff, a file's start, a long command).
DETAIL_LINES = 20
DETAIL_CHARS = 4000

_TOO_OLD = re.compile(r"unknown option|unrecognized option|permission-prompt-tool", re.I)
_NO_SESSION = re.compile(r"no conversation found", re.I)
_EDIT_TOOLS = ("Edit", "MultiEdit")


class _Eof:
    """Put in a process's queue when its stdout ends."""


EOF = _Eof()


@dataclass
class _Process:
    proc: asyncio.subprocess.Process
    workdir: Path
    mode: str  # the permission mode the CLI is in, as far as we know
    resumed: str | None  # the session id it was started to resume
    queue: asyncio.Queue[dict[str, Any] | _Eof] = field(default_factory=asyncio.Queue)
    tail: deque[str] = field(default_factory=deque)
    pending: dict[str, asyncio.Future[tuple[bool, Any]]] = field(default_factory=dict)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    seen_output: bool = False  # printed at least one JSON message
    eof: bool = False
    failure: AgentError | None = None  # why reading stdout stopped, when it was our error

    def alive(self) -> bool:
        return not self.eof and self.proc.returncode is None


@dataclass
class _Session:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    process: _Process | None = None
    session_id: str | None = None  # the CLI's session id, last known
    model: str | None = None
    reported: tuple[str | None, str | None] | None = None
    #: the native session holds the conversation so far (only the new message is sent)
    remembers: bool = False


class ClaudeAgent:
    name = "claude"

    def __init__(
        self,
        argv: Sequence[str] = (DEFAULT_BIN,),
        *,
        model: str | None = None,
        permission_mode: str = "default",
        interrupt_grace: float = DEFAULT_INTERRUPT_GRACE,
    ) -> None:
        if not argv:
            raise AgentError("the claude agent needs a command to run Claude Code")
        if permission_mode not in PERMISSION_MODES:
            raise AgentError(
                f"permission_mode={permission_mode!r} must be one of {', '.join(PERMISSION_MODES)}"
            )
        self.argv = list(argv)
        self.model = model or None
        self.permission_mode = permission_mode
        self.interrupt_grace = interrupt_grace
        self._sessions: dict[str, _Session] = {}

    @classmethod
    def from_options(
        cls, options: Mapping[str, str] | None, env: Mapping[str, str] = os.environ
    ) -> ClaudeAgent:
        opts = Options("claude", options, ("bin", "model", "permission_mode", "interrupt_grace"))
        line = opts.get("bin") or env.get(BIN_ENV) or DEFAULT_BIN
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise AgentError(f"cannot parse the Claude Code command {line!r}: {exc}") from None
        raw_mode = (opts.get("permission_mode") or "").strip()
        modes = {m.lower(): m for m in PERMISSION_MODES}
        mode = modes.get(raw_mode.lower()) if raw_mode else "default"
        if mode is None:
            raise AgentError(
                f"option permission_mode={raw_mode!r} for the claude agent must be one of "
                f"{', '.join(PERMISSION_MODES)}"
            )
        return cls(
            argv,
            model=(opts.get("model") or "").strip() or None,
            permission_mode=mode,
            interrupt_grace=opts.number("interrupt_grace", DEFAULT_INTERRUPT_GRACE),
        )

    # ------------------------------------------------------------------ a turn

    def preflight(self) -> None:
        """Fail at start-up, in one line, when the CLI isn't installed."""
        check_installed(self.argv, WHAT, INSTALL.removeprefix("install it with "))

    async def run(self, turn: TurnInput) -> AsyncIterator[AgentEvent]:
        state = self._sessions.setdefault(turn.session, _Session())
        mode = self.permission_mode if turn.by_owner else GUEST_MODE
        async with state.lock:
            translator = JsonlTranslator()
            streamed: object = None  # id of the message whose text came as stream events
            proc: _Process | None = None
            asking = False  # the runner is deciding an approval ...
            asked: object = None  # ... for this request id (the CLI's own, echoed as it is)
            sent = False  # the message was written: a cancel must interrupt
            fresh = False
            try:
                while True:
                    proc = await self._prepare(state, turn, mode, fresh=fresh)
                    full = not state.remembers
                    sent = True
                    await self._send(proc, _user_message(turn, full=full))
                    retry = False
                    while True:
                        msg = await proc.queue.get()
                        if isinstance(msg, _Eof):
                            await proc.queue.put(msg)  # the process stays dead for everyone
                            error = await self._exit_error(proc)
                            tail = tail_text(proc.tail)
                            if (
                                not fresh
                                and proc.resumed
                                and not proc.seen_output
                                and _NO_SESSION.search(tail)
                            ):
                                log.warning(
                                    "Claude Code no longer knows session %s; starting a new "
                                    "one with the whole conversation",
                                    proc.resumed,
                                )
                                state.session_id = None
                                state.remembers = False
                                fresh = retry = True
                                break
                            raise error
                        kind = msg.get("type")
                        if kind == "control_request":
                            request = msg.get("request")
                            request = request if isinstance(request, dict) else {}
                            rid = msg.get("request_id")
                            if request.get("subtype") != "can_use_tool":
                                await self._send(proc, _control_error(rid, request))
                                continue
                            asking, asked = True, rid
                            decision = yield _approval(request, rid, turn.workdir)
                            asking = False
                            await self._send(proc, _permission_answer(rid, request, decision))
                            continue
                        if kind == "control_cancel_request":
                            continue
                        self._track(state, proc, msg)
                        state.remembers = True  # the CLI took the message
                        update = _session_update(state)
                        if update is not None:
                            yield update
                        if kind == "result":
                            for event in translator.feed_line(json.dumps(msg)):
                                yield event
                            if translator.error:
                                raise AgentError(
                                    f"{WHAT} reported an error: {one_line(translator.error)}"
                                )
                            return
                        streamed = _streamed_message(msg, streamed, translator)
                        for event in translator.feed_line(json.dumps(msg)):
                            yield event
                    if not retry:  # pragma: no cover - the loop above only ends by retrying
                        return
            except (asyncio.CancelledError, GeneratorExit):
                if proc is not None and sent:
                    await self._abort(state, proc, asking, asked)
                raise

    # ------------------------------------------------------------------ processes

    async def _prepare(
        self, state: _Session, turn: TurnInput, mode: str, *, fresh: bool
    ) -> _Process:
        """The session's process, alive, in ``mode``, holding the right native session."""
        workdir = Path(turn.workdir)
        proc = state.process
        if proc is not None:
            self._drain(state, proc)
            moved = turn.resume is not None and turn.resume != state.session_id
            if fresh or not proc.alive() or proc.workdir != workdir or moved:
                await self._discard(state)
                proc = None
        if proc is None:
            resume = None if fresh else turn.resume or state.session_id
            return await self._start(state, turn, mode, resume)
        if proc.mode != mode:
            ok, answer = await self._control(proc, {"subtype": "set_permission_mode", "mode": mode})
            if ok:
                proc.mode = mode
            else:
                log.info(
                    "Claude Code would not switch to %s mode (%s); restarting it in that mode",
                    mode,
                    one_line(str(answer))[:200],
                )
                await self._discard(state)
                return await self._start(state, turn, mode, state.session_id)
        return proc

    async def _start(
        self, state: _Session, turn: TurnInput, mode: str, resume: str | None
    ) -> _Process:
        argv = [
            *self.argv,
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            "--include-partial-messages",
            "--permission-prompt-tool",
            "stdio",
        ]
        if resume:
            argv.append(f"--resume={resume}")
        if self.model:
            argv += ["--model", self.model]
        argv += ["--permission-mode", mode, "--append-system-prompt", _intro(turn.mode)]
        env = {k: v for k, v in os.environ.items() if k != "CLAUDECODE"}
        workdir = Path(turn.workdir)
        child = await spawn(argv, workdir, with_stdin=True, what=WHAT, install=INSTALL, env=env)
        log.debug("started Claude Code (pid %s) for session %s", child.pid, turn.session)
        proc = _Process(proc=child, workdir=workdir, mode=mode, resumed=resume)
        proc.tasks = [
            asyncio.create_task(self._read(proc)),
            asyncio.create_task(collect_tail(child.stderr, proc.tail)),
        ]
        state.process = proc
        state.remembers = resume is not None
        if resume:
            state.session_id = resume
        return proc

    async def _read(self, proc: _Process) -> None:
        """Parse stdout into the queue; control responses go to their waiters."""
        assert proc.proc.stdout is not None
        try:
            async for line in read_lines(proc.proc.stdout, what=WHAT):
                msg = _parse(line)
                if msg is None:
                    continue
                proc.seen_output = True
                if msg.get("type") == "control_response":
                    self._route(proc, msg)
                else:
                    proc.queue.put_nowait(msg)
        except AgentError as exc:
            proc.failure = exc
        except (OSError, ValueError) as exc:
            proc.failure = AgentError(f"could not read from {WHAT}: {exc}")
        finally:
            proc.eof = True
            for waiter in proc.pending.values():
                if not waiter.done():
                    waiter.set_result((False, f"{WHAT} exited"))
            proc.pending.clear()
            proc.queue.put_nowait(EOF)

    @staticmethod
    def _route(proc: _Process, msg: dict[str, Any]) -> None:
        response = msg.get("response")
        response = response if isinstance(response, dict) else {}
        waiter = proc.pending.pop(str(response.get("request_id")), None)
        if waiter is None or waiter.done():
            log.debug("control response nobody waits for: %s", str(msg)[:200])
            return
        if response.get("subtype") == "error":
            waiter.set_result((False, response.get("error") or "error"))
        else:
            waiter.set_result((True, response.get("response")))

    async def _send(self, proc: _Process, obj: dict[str, Any]) -> bool:
        """Write one JSON line; False when the process no longer reads (its exit shows next)."""
        stdin = proc.proc.stdin
        if stdin is None or stdin.is_closing():
            return False
        return await feed(stdin, (json.dumps(obj) + "\n").encode("utf-8"), close=False)

    async def _control(
        self, proc: _Process, request: dict[str, Any], timeout: float = CONTROL_TIMEOUT
    ) -> tuple[bool, Any]:
        """Send a control request and wait for its answer: (ok, response or error)."""
        rid = f"emdash-{uuid.uuid4().hex}"
        waiter: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
        proc.pending[rid] = waiter
        message = {"type": "control_request", "request_id": rid, "request": request}
        if not proc.alive() or not await self._send(proc, message):
            proc.pending.pop(rid, None)
            return False, f"{WHAT} is not running"
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return False, f"no answer in {timeout:g} s"
        finally:
            proc.pending.pop(rid, None)

    def _drain(self, state: _Session, proc: _Process) -> None:
        """Whatever the CLI printed between turns: keep its session facts, drop the rest."""
        while not proc.queue.empty():
            msg = proc.queue.get_nowait()
            if isinstance(msg, _Eof):
                proc.queue.put_nowait(msg)
                return
            self._track(state, proc, msg)
            log.debug("dropped output between turns: %s", str(msg)[:200])

    @staticmethod
    def _track(state: _Session, proc: _Process, msg: dict[str, Any]) -> None:
        """Session id, model and permission mode from init/status/result messages."""
        kind = msg.get("type")
        if kind not in ("system", "result"):
            return
        sid = msg.get("session_id")
        if isinstance(sid, str) and sid:
            state.session_id = sid
        if kind == "system":
            model = msg.get("model")
            if isinstance(model, str) and model:
                state.model = model
            mode = msg.get("permissionMode")
            if isinstance(mode, str) and mode:
                proc.mode = mode

    async def _exit_error(self, proc: _Process) -> AgentError:
        """Why the process's output ended, as one line."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.proc.wait(), 2.0)
        stderr_task = proc.tasks[1] if len(proc.tasks) > 1 else None
        if stderr_task is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(stderr_task), 0.5)
        tail = tail_text(proc.tail)
        if proc.failure is not None:
            return proc.failure
        if not proc.seen_output and _TOO_OLD.search(tail):
            return AgentError(TOO_OLD, tail)
        if proc.proc.returncode is None:
            return AgentError(f"{WHAT} closed its output in the middle of a turn", tail)
        return exit_error(proc.proc.returncode, tail, what=WHAT)

    async def _abort(self, state: _Session, proc: _Process, asking: bool, asked: object) -> None:
        """A cancelled turn: interrupt it and wait for its result, else kill the process."""
        loop = asyncio.get_running_loop()
        try:
            if asking:
                await self._send(proc, _deny(asked, "the turn was cancelled"))
            interrupt = {"subtype": "interrupt"}
            rid = f"emdash-{uuid.uuid4().hex}"
            message = {"type": "control_request", "request_id": rid, "request": interrupt}
            if proc.alive() and await self._send(proc, message):
                give_up = loop.time() + self.interrupt_grace
                while (left := give_up - loop.time()) > 0:
                    try:
                        msg = await asyncio.wait_for(proc.queue.get(), left)
                    except TimeoutError:
                        break
                    if isinstance(msg, _Eof):
                        proc.queue.put_nowait(msg)
                        break
                    kind = msg.get("type")
                    if kind == "control_request":
                        await self._send(
                            proc, _deny(msg.get("request_id"), "the turn was cancelled")
                        )
                        continue
                    self._track(state, proc, msg)
                    if kind == "result":
                        log.debug("Claude Code stopped the cancelled turn of %s", state.session_id)
                        return  # stopped in time: keep the process
            log.info("Claude Code did not stop in time; killing it (the session resumes later)")
            await self._discard(state)
        except (Exception, asyncio.CancelledError):
            # cancelled again while waiting, or the pipe broke: no more waiting. The caller
            # re-raises the cancellation it is handling.
            self._kill_now(state, proc)

    def _kill_now(self, state: _Session, proc: _Process) -> None:
        killpg(proc.proc.pid, signal.SIGKILL)
        for task in proc.tasks:
            task.cancel()
        transport = getattr(proc.proc, "_transport", None)
        if transport is not None:
            transport.close()
        if state.process is proc:
            state.process = None

    async def _discard(self, state: _Session) -> None:
        proc = state.process
        if proc is None:
            return
        state.process = None
        await stop(proc.proc)
        for task in proc.tasks:
            task.cancel()
        await settle(proc.tasks)

    async def close(self) -> None:
        """End every Claude Code process: stdin closed, a moment to exit, then stop()."""
        states = list(self._sessions.values())

        async def end(state: _Session) -> None:
            proc = state.process
            if proc is None:
                return
            stdin = proc.proc.stdin
            if stdin is not None:
                with contextlib.suppress(Exception):
                    stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.proc.wait(), CLOSE_GRACE)
            await self._discard(state)

        await asyncio.gather(*(end(s) for s in states), return_exceptions=True)


# --------------------------------------------------------------------------- messages


def _intro(mode: str) -> str:
    """The standing instructions, without the mode (each message says it)."""
    text = system_intro(mode)
    line = mode_line(mode)
    if text.endswith(line):
        text = text[: -len(line)].rstrip()
    return text + " Each message starts with a line that gives the current mode."


def _prompt(turn: TurnInput, *, full: bool) -> str:
    body = conversation_lines(turn) if full else [format_message(turn.message)]
    return "\n".join([mode_line(turn.mode), "", *body]).replace("\x00", "") + "\n"


def _user_message(turn: TurnInput, *, full: bool) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": _prompt(turn, full=full)}]
    for attachment in turn.attachments:
        if attachment.is_image:
            source = {
                "type": "base64",
                "media_type": attachment.media_type,
                "data": base64.b64encode(attachment.data).decode("ascii"),
            }
            content.append({"type": "image", "source": source})
        else:
            name = one_line(attachment.name).strip() or "file"
            text = attachment.text().replace("\x00", "")
            content.append({"type": "text", "text": f"{name}:\n{text}"})
    return {"type": "user", "message": {"role": "user", "content": content}}


def _parse(line: str) -> dict[str, Any] | None:
    stripped = line.strip()
    if not stripped:
        return None
    if not stripped.startswith("{"):
        log.debug("skipped a line from Claude Code that is not JSON: %s", stripped[:200])
        return None
    try:
        obj = json.loads(stripped)
    except ValueError:
        log.warning("skipped a malformed JSON line from Claude Code: %s", stripped[:200])
        return None
    return obj if isinstance(obj, dict) else None


def _streamed_message(msg: dict[str, Any], streamed: object, translator: JsonlTranslator) -> object:
    """Track which message's text arrived as partial messages.

    An assistant message is shown whole unless its own text was streamed: the CLI
    also prints messages it never streams (an API error's text, for one).
    """
    body = msg.get("event") if msg.get("type") == "stream_event" else msg.get("message")
    if not isinstance(body, dict):
        return streamed
    if msg.get("type") == "stream_event" and body.get("type") == "message_start":
        started = body.get("message")
        return started.get("id") if isinstance(started, dict) else None
    if msg.get("type") == "assistant" and body.get("id") != streamed:
        translator.partial_text = False
    return streamed


def _session_update(state: _Session) -> AgentSession | None:
    now = (state.session_id, state.model)
    if state.session_id is None or now == state.reported:
        return None
    state.reported = now
    return AgentSession(session_id=state.session_id, model=state.model)


def _control_error(rid: object, request: dict[str, Any]) -> dict[str, Any]:
    subtype = request.get("subtype")
    return {
        "type": "control_response",
        "response": {
            "subtype": "error",
            "request_id": rid,
            "error": f"emdash-fb does not handle {str(subtype)[:50]!r} requests",
        },
    }


def _deny(rid: object, message: str) -> dict[str, Any]:
    body = {"behavior": "deny", "message": message}
    return {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": rid, "response": body},
    }


def _permission_answer(
    rid: object, request: dict[str, Any], decision: Decision | None
) -> dict[str, Any]:
    if not isinstance(decision, Decision):
        return _deny(rid, "denied: nobody answered the permission request")
    if not decision.allow:
        reason = decision.reason.strip() or f"denied by {decision.by.strip() or 'the session'}"
        return _deny(rid, reason)
    body = {"behavior": "allow", "updatedInput": request.get("input")}
    return {
        "type": "control_response",
        "response": {"subtype": "success", "request_id": rid, "response": body},
    }


def _approval(request: dict[str, Any], rid: object, workdir: Path) -> ApprovalNeeded:
    tool = request.get("tool_name")
    tool = tool if isinstance(tool, str) and tool else "tool"
    tool_input = request.get("input")
    data = tool_input if isinstance(tool_input, dict) else {}
    summary, detail = summarize_input(tool_input), ""
    path = data.get("file_path") if isinstance(data.get("file_path"), str) else None
    if tool == "Bash" and isinstance(data.get("command"), str):
        command = data["command"]
        summary = summarize_input(command)
        if "\n" in command.strip() or len(summary) < len(" ".join(command.split())):
            detail = _first_lines(command)
    elif tool in _EDIT_TOOLS and path:
        summary = f"edit {summarize_input(path)}"
        edits = data.get("edits") if tool == "MultiEdit" else [data]
        detail = _diff(edits if isinstance(edits, list) else [])
    elif tool == "Write" and path:
        summary = f"write {summarize_input(path)}"
        content = data.get("content")
        detail = _first_lines(content) if isinstance(content, str) else ""
    return ApprovalNeeded(
        id=safe_id(rid, "approval"), tool=tool, summary=summary or tool, detail=detail
    )


def _first_lines(text: str, limit: int = DETAIL_LINES) -> str:
    rows = text.splitlines()
    shown = "\n".join(rows[:limit])[:DETAIL_CHARS]
    more = len(rows) - limit
    return shown + (f"\n… ({more} more lines)" if more > 0 else "")


def _diff(edits: list[Any], limit: int = DETAIL_LINES) -> str:
    rows: list[str] = []
    for edit in edits:
        if not isinstance(edit, dict):
            continue
        old, new = edit.get("old_string"), edit.get("new_string")
        if not isinstance(old, str) or not isinstance(new, str):
            continue
        diff = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1))
        rows += diff[2:]  # without the "---" / "+++" header: the file is in the summary
    shown = "\n".join(rows[:limit])[:DETAIL_CHARS]
    more = len(rows) - limit
    return shown + (f"\n… ({more} more lines)" if more > 0 else "")
