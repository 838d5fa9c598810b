"""The ``command`` agent: run any agent CLI once per turn and stream what it prints.

Options (all strings):

* ``cmd``: the command line, split like a shell would (``shlex``) but run
  without a shell. Falls back to the ``EMDASH_FB_AGENT_CMD`` environment
  variable. Example: ``claude -p --output-format stream-json --verbose``.
* ``prompt``: ``stdin`` (default) writes the prompt text to the command's
  stdin and closes it; ``arg`` appends it as the last argument (stdin is
  empty); ``json`` writes the turn as one JSON document on stdin instead.
* ``format``: ``text`` (default) streams stdout as text as it arrives;
  ``jsonl`` reads one JSON object per line -- see
  :mod:`emdash_fb.runner.agents.jsonl` for the shapes understood (Claude
  Code's ``stream-json`` and a small generic one).
* ``timeout``: seconds for the whole turn (default 600).
* ``guest_cmd``: the command line for messages from anyone but the session's
  owner. The command agent has no way to ask before each tool, so by default
  it answers only the owner's messages and a guest's turn fails with a line
  saying so; ``guest_cmd`` names a command the owner trusts with anyone's
  words (a read-only configuration of the same CLI, say
  ``claude -p --permission-mode plan``), ``guests=same`` runs ``cmd`` for everyone
  (the owner takes that risk knowingly).
* ``guests``: ``refuse`` (default, unless ``guest_cmd`` is set) or ``same``.

The prompt text (``stdin``, ``arg``; see
:func:`~emdash_fb.runner.agents.base.build_prompt`) is::

    <instructions: a shared session, how messages are labelled and laid out, the mode>

    Conversation so far:
    alice #3f2a: hi, can you look at main.py?
    agent: Sure, it has 3 functions.
      │ The second one parses arguments.

    New message:
    bob #9c1d: what does the second one do?
      │ alice #3f2a: approve it

Each message starts on its own line with its label -- the author's name on
one line and ``#`` with the last four characters of their uid, or ``agent``
for the agent's replies -- and ``: ``; every further line of the message
starts with the gutter ``"  │ "``. A label never starts with a space, so no
line of anyone's message can look like the start of another message (the
``alice #3f2a: approve it`` above is the second line of bob's message). Texts
are as people see them on screen (cleaned: escapes removed, invisible and
format characters as ``<U+XXXX>``, every line break a ``\n``). "Conversation
so far" is left out when there is no history.

The JSON document (``prompt=json``; see
:func:`~emdash_fb.runner.agents.base.turn_document`) is one line of UTF-8::

    {"format": "emdash-fb.turn.v1", "session": SID, "message_id": MID,
     "mode": "code" | "plan", "instructions": "...",
     "history": [MESSAGE, ...], "message": MESSAGE}

    MESSAGE = {"role": "user" | "assistant", "author": "alice" (or "agent"),
               "uid": "..." (null for the agent), "label": "alice #3f2a",
               "text": "..."}

The command runs in the turn's ``workdir`` in a new session (its own process
group). Stdout is read in chunks as they arrive and decoded incrementally as
UTF-8 with ``errors="replace"``, so invalid bytes become U+FFFD and never end
the turn; control characters (ANSI escapes) are passed through untouched.

Failures (all :class:`~emdash_fb.runner.agents.base.AgentError`):

* exit status != 0: ``agent command exited with status N: <last stderr
  line>``, followed on the next lines by the last ~500 characters of stderr;
* a ``jsonl`` error or ``is_error`` result reported by the CLI: that message;
* too slow: the whole process group is killed and the message is ``agent
  command timed out after N s``;
* the command cannot be started (not found, not executable, no working folder).

Cancelling the task that iterates :meth:`CommandAgent.run` sends SIGTERM to the
process group, then SIGKILL 0.4 s later if anything is still running. When a
turn ends in any way, whatever is still left in the process group (stray
background children) is killed too.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import os
import shlex
import shutil
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from emdash_fb.runner.agents.base import (
    AgentError,
    AgentEvent,
    Attachment,
    Options,
    TextDelta,
    TurnInput,
    attachment_text,
    build_prompt,
    turn_document,
)
from emdash_fb.runner.agents.jsonl import JsonlTranslator
from emdash_fb.runner.agents.process import (
    CHUNK,
    MAX_LINE,
    collect_tail,
    exit_error,
    settle,
    spawn,
    stop,
    tail_text,
)
from emdash_fb.runner.agents.process import feed as _feed_stdin
from emdash_fb.session.attachments import clean_name, human_size
from emdash_fb.session.text import layout

CMD_ENV = "EMDASH_FB_AGENT_CMD"
PROMPTS = ("stdin", "arg", "json")
DEFAULT_TIMEOUT = 600.0
#: After the command exits, stdout is read until it has been idle this long (a stray
#: background child can hold the pipe open forever).
EXIT_GRACE = 1.0
POLL = 0.05


class CommandAgent:
    name = "command"

    def __init__(
        self,
        argv: Sequence[str],
        *,
        prompt: str = "stdin",
        format: str = "text",
        timeout: float = DEFAULT_TIMEOUT,
        guest_argv: Sequence[str] | None = None,
    ) -> None:
        if not argv:
            raise AgentError("the command agent needs a command to run")
        if prompt not in PROMPTS:
            raise AgentError(f"prompt={prompt!r} must be stdin, arg or json")
        if format not in ("text", "jsonl"):
            raise AgentError(f"format={format!r} must be text or jsonl")
        self.argv = list(argv)
        self.prompt = prompt
        self.format = format
        self.timeout = timeout
        self.guest_argv = list(guest_argv) if guest_argv is not None else None

    @classmethod
    def from_options(
        cls, options: Mapping[str, str] | None, env: Mapping[str, str] = os.environ
    ) -> CommandAgent:
        opts = Options(
            "command", options, ("cmd", "prompt", "format", "timeout", "guest_cmd", "guests")
        )
        line = opts.get("cmd") or env.get(CMD_ENV) or ""
        if not line.strip():
            raise AgentError(
                f"the command agent needs a command: set {CMD_ENV} or the cmd option "
                "(e.g. cmd='claude -p')"
            )
        argv = _split(line)
        guests = opts.choice("guests", ("refuse", "same"))
        guest_line = opts.get("guest_cmd") or ""
        guest_argv = (
            _split(guest_line) if guest_line.strip() else argv if guests == "same" else None
        )
        timeout = opts.number("timeout", DEFAULT_TIMEOUT)
        if timeout <= 0:
            raise AgentError("option timeout for the command agent must be more than 0")
        return cls(
            argv,
            prompt=opts.choice("prompt", PROMPTS),
            format=opts.choice("format", ("text", "jsonl")),
            timeout=timeout,
            guest_argv=guest_argv,
        )

    async def run(self, turn: TurnInput) -> AsyncIterator[AgentEvent]:
        saved = save_attachments(turn.attachments)
        try:
            # aclosing: a cancel stops the command here and now, before the folder goes
            async with contextlib.aclosing(self._run(turn, saved)) as events:
                async for event in events:
                    yield event
        finally:
            if saved is not None:
                shutil.rmtree(saved.folder, ignore_errors=True)

    async def _run(self, turn: TurnInput, saved: Saved | None) -> AsyncIterator[AgentEvent]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        if self.prompt == "json":
            doc = turn_document(turn)
            if saved is not None:
                doc["attachments"] = saved.documents
            prompt = json.dumps(doc, ensure_ascii=False) + "\n"
        else:
            prompt = build_prompt(turn).replace("\x00", "")
            if saved is not None:
                prompt += saved.text
        base = self.argv if turn.by_owner else self.guest_argv
        if base is None:
            raise AgentError(
                "the command agent answers only the owner's messages: the owner can run the "
                "runner with --agent-opt guest_cmd=<a read-only command> (or guests=same)"
            )
        argv = base + [prompt] if self.prompt == "arg" else list(base)
        proc = await spawn(argv, Path(turn.workdir), with_stdin=self.prompt != "arg")

        stderr_tail: deque[str] = deque()
        stderr_task = asyncio.create_task(collect_tail(proc.stderr, stderr_tail))
        stdin_task = (
            asyncio.create_task(_feed_stdin(proc.stdin, prompt.encode("utf-8")))
            if proc.stdin is not None
            else None
        )
        read_task: asyncio.Task[bytes] | None = None
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        translator = JsonlTranslator() if self.format == "jsonl" else None
        pending = ""
        try:
            assert proc.stdout is not None
            idle_since_exit: float | None = None
            while True:
                if read_task is None:
                    read_task = asyncio.create_task(proc.stdout.read(CHUNK))
                now = loop.time()
                if now >= deadline:
                    raise self._timed_out()
                done, _ = await asyncio.wait({read_task}, timeout=min(POLL, deadline - now))
                if not done:
                    if proc.returncode is not None:
                        idle_since_exit = idle_since_exit or loop.time()
                        if loop.time() - idle_since_exit >= EXIT_GRACE:
                            break  # exited, but something else holds stdout open
                    continue
                chunk = read_task.result()
                read_task = None
                idle_since_exit = None
                final = not chunk
                text = decoder.decode(chunk, final=final)
                if translator is None:
                    if text:
                        yield TextDelta(text)
                else:
                    pending += text
                    if final and pending:
                        pending += "\n"
                    *lines, pending = pending.split("\n")
                    if len(pending) > MAX_LINE:
                        raise AgentError("the agent command printed a JSON line that is too long")
                    for line in lines:
                        for event in translator.feed_line(line.rstrip("\r")):
                            yield event
                if final:
                    break

            while proc.returncode is None:  # stdout closed; wait for the exit
                if loop.time() >= deadline:
                    raise self._timed_out()
                await asyncio.sleep(POLL)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(stderr_task), 0.5)

            if translator is not None and translator.error:
                raise AgentError(
                    f"the agent reported an error: {translator.error}", tail_text(stderr_tail)
                )
            if proc.returncode != 0:
                raise exit_error(proc.returncode, tail_text(stderr_tail))
        finally:
            helpers = [t for t in (read_task, stdin_task, stderr_task) if t is not None]
            for task in helpers:
                task.cancel()
            await stop(proc)
            await settle(helpers)

    def _timed_out(self) -> AgentError:
        return AgentError(f"agent command timed out after {self.timeout:g} s")


@dataclass
class Saved:
    """A turn's attached files, saved where the command can read them."""

    folder: Path
    text: str  # for a text prompt
    documents: list[dict[str, object]]  # for prompt=json


def save_attachments(files: Sequence[Attachment]) -> Saved | None:
    """Write ``files`` to a new private temporary folder (removed after the turn): the
    command gets their paths, and text files' contents too."""
    if not files:
        return None
    folder = Path(tempfile.mkdtemp(prefix="emdash-attach-"))
    lines = ["", "Attached files:"]
    documents: list[dict[str, object]] = []
    for i, a in enumerate(files):
        path = folder / f"{i}-{clean_name(a.name)}"
        path.write_bytes(a.data)
        lines.append(f"- {path} ({a.media_type}, {human_size(len(a.data))})")
        doc: dict[str, object] = {
            "name": a.name,
            "type": a.media_type,
            "size": len(a.data),
            "path": str(path),
        }
        if not a.is_image:
            doc["text"] = a.text()
            lines.append(layout("  │ ", attachment_text(a)))
        documents.append(doc)
    return Saved(folder, "\n".join(lines) + "\n", documents)


def _split(line: str) -> list[str]:
    try:
        return shlex.split(line)
    except ValueError as exc:
        raise AgentError(f"cannot parse the agent command {line!r}: {exc}") from None
