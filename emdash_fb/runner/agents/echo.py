"""The ``echo`` agent: offline and deterministic, for the demo and for tests.

It answers every message with::

    <author> asked: <their message>

    [a sentence about each tool it ran]

    I have seen <N> earlier message(s) in this conversation (<who>). Mode: <mode>.

(``<author>`` and ``<who>`` are names on one line; ``<who>`` lists each person once,
by uid, with their uid tag when two of them share a name.)

streamed word by word (each word with the whitespace after it is one
:class:`TextDelta`) at ``rate`` words per second (option ``rate``, default 30;
``rate=0`` streams instantly).

Triggers (case-insensitive, anywhere in the new message) run a real read-only
tool inside the turn's ``workdir`` and stream its ToolStart/ToolResult:

* the word ``ls``, or ``list files`` / ``list the files`` -> tool ``list_files``:
  lists the working folder (sorted, folders with a trailing ``/``, at most
  100 names), then says how many entries there are.
* ``read <path>`` -> tool ``read_file``: reads that file, relative to the working
  folder, and says how many lines it has and what its first line is. Paths that
  escape the working folder (``..``, absolute paths elsewhere, symlinks pointing
  out) are refused with a failed ToolResult, as are missing files and folders.
  Output is cut to 4000 characters.

* ``run: <command>`` (the rest of that line) -> asks permission for tool ``Bash``
  (an :class:`ApprovalNeeded` the runner puts to the session). Allowed, it runs
  the command with ``sh -c`` in the working folder (30 s at most; output cut to
  4000 characters) and says its exit status; denied, it says who said no and
  why, and runs nothing.

Triggers may be combined in one message; the listing comes first, then the
read, then the command. Attached files are named in a sentence of their own
("You attached shot.png (image, 180 KB)."), before the summary.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from pathlib import Path

from emdash_fb.runner.agents.base import (
    AgentEvent,
    ApprovalNeeded,
    ChatMessage,
    Decision,
    Options,
    TextDelta,
    ToolResult,
    ToolStart,
    TurnInput,
    speaker,
    truncate,
)
from emdash_fb.runner.agents.process import read_lines, settle, spawn, stop
from emdash_fb.session.attachments import human_size
from emdash_fb.session.text import one_line

DEFAULT_RATE = 30.0
MAX_LISTING = 100
MAX_READ_BYTES = 256 * 1024

_LS = re.compile(r"(?<![\w./-])ls(?![\w-]|\.\w)|\blist\s+(?:the\s+)?files\b", re.IGNORECASE)
_READ = re.compile(r"\bread\s+(\S+)", re.IGNORECASE)
_WORD = re.compile(r"\s*\S+\s*")
_RUN = re.compile(r"\brun:[ \t]*([^\n]+)", re.IGNORECASE)
RUN_TIMEOUT = 30.0


class EchoAgent:
    name = "echo"

    def __init__(self, rate: float = DEFAULT_RATE) -> None:
        self.rate = rate

    @classmethod
    def from_options(cls, options: Mapping[str, str] | None) -> EchoAgent:
        opts = Options("echo", options, ("rate",))
        return cls(rate=opts.number("rate", DEFAULT_RATE))

    async def run(self, turn: TurnInput) -> AsyncGenerator[AgentEvent, Decision | None]:
        author = one_line(turn.message.author).strip() or "someone"
        async for event in self._say(f"{author} asked: {turn.message.text}\n\n"):
            yield event

        tool_number = 0
        if _LS.search(turn.message.text):
            tool_number += 1
            tool_id = f"echo-{tool_number}"
            yield ToolStart(id=tool_id, name="list_files", input=".")
            ok, output, sentence = await asyncio.to_thread(list_folder, turn.workdir)
            yield ToolResult(id=tool_id, output=output, ok=ok)
            async for event in self._say(sentence + "\n\n"):
                yield event

        match = _READ.search(turn.message.text)
        if match:
            tool_number += 1
            tool_id = f"echo-{tool_number}"
            raw = match.group(1)
            yield ToolStart(id=tool_id, name="read_file", input=clean_path(raw))
            ok, output, sentence = await asyncio.to_thread(read_file, turn.workdir, raw)
            yield ToolResult(id=tool_id, output=output, ok=ok)
            async for event in self._say(sentence + "\n\n"):
                yield event

        match = _RUN.search(turn.message.text)
        if match:
            tool_number += 1
            tool_id = f"echo-{tool_number}"
            command = match.group(1).strip()
            decision = yield ApprovalNeeded(id=tool_id, tool="Bash", summary=command)
            if isinstance(decision, Decision) and decision.allow:
                yield ToolStart(id=tool_id, name="Bash", input=command)
                ok, output, sentence = await run_command(turn.workdir, command)
                yield ToolResult(id=tool_id, output=output, ok=ok)
            else:
                sentence = denied_sentence(command, decision)
            async for event in self._say(sentence + "\n\n"):
                yield event

        if turn.attachments:
            named = ", ".join(
                f"{one_line(a.name)} ({'image' if a.is_image else 'text'}, {human_size(len(a.data))})"
                for a in turn.attachments
            )
            async for event in self._say(f"You attached {named}.\n\n"):
                yield event

        async for event in self._say(summary_line(turn)):
            yield event

    async def _say(self, text: str) -> AsyncIterator[TextDelta]:
        delay = 1.0 / self.rate if self.rate > 0 else 0.0
        for word in _WORD.findall(text):
            if delay:
                await asyncio.sleep(delay)
            yield TextDelta(word)


def denied_sentence(command: str, decision: Decision | None) -> str:
    shown = one_line(command)
    if decision is None:
        return f"I did not run {shown}: nobody decided."
    who = {"timeout": "nobody answered in time", "policy": "the policy refuses it"}.get(
        decision.by, f"{one_line(decision.by)} said no" if decision.by else "it was denied"
    )
    reason = f" ({one_line(decision.reason)})" if decision.reason else ""
    return f"I did not run {shown}: {who}{reason}."


async def run_command(workdir: Path, command: str) -> tuple[bool, str, str]:
    """(ok, tool output, sentence) for running ``command`` with ``sh -c`` in ``workdir``."""
    shown = one_line(command)
    proc = await spawn(
        ["sh", "-c", "exec 2>&1\n" + command], Path(workdir), with_stdin=False, what="sh"
    )
    lines: list[str] = []

    async def collect() -> None:
        assert proc.stdout is not None
        async for line in read_lines(proc.stdout):
            lines.append(line)

    reader = asyncio.create_task(collect())
    try:
        async with asyncio.timeout(RUN_TIMEOUT):
            await reader
            await proc.wait()
    except TimeoutError:
        return False, truncate("\n".join(lines)), f"I stopped {shown} after {RUN_TIMEOUT:g} s."
    finally:
        reader.cancel()
        await stop(proc)
        await settle([reader])
    output = truncate("\n".join(lines)) or "(no output)"
    status = proc.returncode
    if status == 0:
        return True, output, f"I ran {shown}: it finished with status 0."
    return False, output, f"I ran {shown}: it failed with status {status}."


def summary_line(turn: TurnInput) -> str:
    count = len(turn.history)
    noun = "message" if count == 1 else "messages"
    people: dict[str, ChatMessage] = {}  # one message per person, by uid (or name)
    for message in turn.history:
        key = "" if message.role == "assistant" else message.uid or f"name:{message.author}"
        people.setdefault(key, message)
    names = [_who(m) for m in people.values()]
    # Two people with the same name are told apart by their labels (name and uid tag).
    shown = [
        speaker(m) if names.count(n) > 1 else n for m, n in zip(people.values(), names, strict=True)
    ]
    whom = f" ({', '.join(shown)})" if shown else ""
    return f"I have seen {count} earlier {noun} in this conversation{whom}. Mode: {turn.mode}."


def _who(message: ChatMessage) -> str:
    if message.role == "assistant":
        return "the agent"
    return one_line(message.author).strip() or "someone"


def list_folder(workdir: Path) -> tuple[bool, str, str]:
    """(ok, tool output, sentence for the reply) for listing ``workdir``."""
    try:
        entries = sorted(os.scandir(workdir), key=lambda e: e.name)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return (
            False,
            f"cannot list the working folder: {reason}",
            (f"I could not list the working folder: {reason}."),
        )
    names = [e.name + ("/" if _is_dir(e) else "") for e in entries]
    shown = names[:MAX_LISTING]
    output = "\n".join(shown)
    if len(names) > len(shown):
        output += f"\n… ({len(names) - len(shown)} more)"
    output = truncate(output)
    if not names:
        return True, "(empty)", "The working folder is empty."
    noun = "entry" if len(names) == 1 else "entries"
    preview = ", ".join(shown[:5]) + (", …" if len(names) > 5 else "")
    return True, output, f"The working folder has {len(names)} {noun}: {preview}."


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def clean_path(raw: str) -> str:
    """The path named after ``read``, without surrounding quotes or sentence punctuation."""
    path = raw.strip("\"'`(").rstrip(",;:!?)\"'`")
    if path.endswith(".") and not path.endswith("..") and path.rstrip("/") == path:
        path = path[:-1]  # "read notes.txt." - the full stop ends the sentence
    return path or raw


def resolve_inside(workdir: Path, raw: str) -> Path | None:
    """``raw`` resolved against ``workdir``, or None if it points outside it."""
    root = Path(workdir).resolve()
    target = (root / clean_path(raw)).resolve()
    if target != root and root not in target.parents:
        return None
    return target


def read_file(workdir: Path, raw: str) -> tuple[bool, str, str]:
    """(ok, tool output, sentence for the reply) for reading ``raw`` inside ``workdir``."""
    shown = clean_path(raw)
    target = resolve_inside(workdir, raw)
    if target is None:
        return (
            False,
            f"refused: {shown} is outside the working folder",
            (f"I did not read {shown}: it is outside the working folder."),
        )
    if target.is_dir():
        return False, f"{shown} is a folder, not a file", f"I did not read {shown}: it is a folder."
    try:
        with open(target, "rb") as handle:
            data = handle.read(MAX_READ_BYTES + 1)
    except FileNotFoundError:
        return False, f"no such file: {shown}", f"I could not read {shown}: there is no such file."
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return False, f"cannot read {shown}: {reason}", f"I could not read {shown}: {reason}."
    text = data[:MAX_READ_BYTES].decode("utf-8", errors="replace")
    lines = text.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    if len(first) > 80:
        first = first[:79] + "…"
    counted = f"{len(lines)}+" if len(data) > MAX_READ_BYTES else str(len(lines))
    noun = "line" if counted == "1" else "lines"
    sentence = f"{shown} has {counted} {noun}"
    sentence += f'; it starts with "{first}".' if first else " and nothing but blank space."
    if not lines:
        sentence = f"{shown} is empty."
    return True, truncate(text) if text else "(empty file)", sentence
