"""Turn an agent CLI's JSON-lines output into agent events (``command`` agent, ``format=jsonl``).

One JSON object per line. Understood shapes (anything else is ignored, so new
event types in a CLI's stream do no harm):

Claude Code (``claude -p --output-format stream-json --verbose``, optionally
with ``--include-partial-messages``):

* ``{"type": "system", ...}`` (``init`` and friends): ignored.
* ``{"type": "assistant", "message": {"content": [...]}}``: each content block
  in order -- ``{"type": "text", "text": ...}`` becomes text;
  ``{"type": "tool_use", "id", "name", "input": {...}}`` becomes a ToolStart
  whose input is a one-line summary (the ``command``, ``file_path``, ``path``,
  ``pattern``, ``url``, ``query`` or ``description`` field, else compact
  JSON); ``thinking`` blocks are skipped. A plain string ``content`` is text.
  Consecutive text blocks are joined with a blank line.
* ``{"type": "user", "message": {"content": [{"type": "tool_result",
  "tool_use_id", "content": str | [{"type": "text", "text"}, ...],
  "is_error": bool}]}}``: a ToolResult (``ok = not is_error``, output cut to
  4000 characters). User messages with plain string content (a replayed
  prompt) are ignored.
* ``{"type": "stream_event", "event": {...}}`` (partial messages): text from
  ``content_block_delta`` events with a ``text_delta`` streams as it comes;
  once it has, the text blocks of the matching ``assistant`` message are not
  repeated (tool_use blocks still come from the ``assistant`` message). A
  ``message_start`` event starts a new message.
* ``{"type": "result", "subtype", "is_error", "result"}``: if ``is_error`` is
  true or the subtype starts with ``error``, the turn fails with the result
  text (or the ``errors`` list, or the subtype). On success its ``result``
  text is used only when no text was streamed before (so a CLI that prints
  only the final result still shows an answer).

Generic shape, for any CLI or wrapper script:

* ``{"type": "text", "text": "..."}``: text, streamed as is (no separators).
* ``{"type": "tool_start", "id", "name", "input"}``: a ToolStart (``input`` a
  string or any JSON value, summarised as above; a missing id is generated as
  ``tool-N``).
* ``{"type": "tool_result", "id", "output", "ok"}``: a ToolResult (``ok``
  defaults to true; ``tool_use_id``/``content``/``is_error`` are accepted too;
  without an id it belongs to the latest tool that has no result yet).

In both shapes tool ids are made key-safe (``. $ # [ ] /`` and control
characters become ``_``, at most 100 characters), the same way for a tool's
start and its result.
* ``{"type": "error", "message": "..."}`` (or ``"error": "..."`` /
  ``{"error": {"message": ...}}``): the turn fails with that message.

Lines that are not JSON at all are passed through as text (with their
newline), so a CLI's plain warnings are not lost; blank lines, JSON that is not
an object and unknown ``type`` values are ignored.
"""

from __future__ import annotations

import json
from typing import Any

from emdash_fb.runner.agents.base import (
    AgentEvent,
    TextDelta,
    ToolResult,
    ToolStart,
    safe_id,
    summarize_input,
    truncate,
)


class JsonlTranslator:
    """Feed it lines; it returns the events each line stands for."""

    def __init__(self) -> None:
        self.text_seen = False  # any text emitted this turn
        self.ends_with_newline = True
        self.partial_text = False  # text of the current message came as stream_event deltas
        self.error: str | None = None  # the failure the CLI reported, if any
        self._tool_count = 0
        self._open_tools: list[str] = []  # started, no result yet

    # -------------------------------------------------------------- dispatch

    def feed_line(self, line: str) -> list[AgentEvent]:
        stripped = line.strip()
        if not stripped:
            return []
        try:
            obj = json.loads(stripped)
        except ValueError:
            return self._text(line + "\n")
        if not isinstance(obj, dict):
            return []
        kind = obj.get("type")
        handler = {
            "assistant": self._assistant,
            "user": self._user,
            "stream_event": self._stream_event,
            "result": self._result,
            "text": self._generic_text,
            "tool_start": self._generic_tool_start,
            "tool_result": self._generic_tool_result,
            "error": self._error,
        }.get(kind if isinstance(kind, str) else "")
        return handler(obj) if handler else []

    # -------------------------------------------------------------- Claude Code

    def _assistant(self, obj: dict[str, Any]) -> list[AgentEvent]:
        message = obj.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            return [] if self.partial_text else self._block_text(content)
        if not isinstance(content, list):
            return []
        events: list[AgentEvent] = []
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and not self.partial_text:
                events += self._block_text(_as_text(block.get("text")))
            elif kind == "tool_use":
                events.append(self._start(block.get("id"), block.get("name"), block.get("input")))
        return events

    def _user(self, obj: dict[str, Any]) -> list[AgentEvent]:
        message = obj.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            return []
        events: list[AgentEvent] = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                tool_id = block.get("tool_use_id") or block.get("id")
                events.append(
                    self._finish(tool_id, block.get("content"), not block.get("is_error"))
                )
        return events

    def _stream_event(self, obj: dict[str, Any]) -> list[AgentEvent]:
        event = obj.get("event")
        if not isinstance(event, dict):
            return []
        kind = event.get("type")
        if kind == "message_start":
            self.partial_text = False
        elif kind == "content_block_start":
            block = event.get("content_block")
            if isinstance(block, dict) and block.get("type") == "text":
                self.partial_text = True
                return self._separator()
        elif kind == "content_block_delta":
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                self.partial_text = True
                return self._text(_as_text(delta.get("text")))
        return []

    def _result(self, obj: dict[str, Any]) -> list[AgentEvent]:
        subtype = str(obj.get("subtype") or "")
        result = obj.get("result")
        if obj.get("is_error") or subtype.startswith("error"):
            errors = obj.get("errors")
            if isinstance(result, str) and result.strip():
                self.error = result.strip()
            elif isinstance(errors, list) and errors:
                self.error = "; ".join(str(e) for e in errors)
            else:
                self.error = subtype.replace("_", " ") or "the agent reported an error"
            return []
        if not self.text_seen and isinstance(result, str) and result:
            return self._text(result)
        return []

    # -------------------------------------------------------------- generic

    def _generic_text(self, obj: dict[str, Any]) -> list[AgentEvent]:
        return self._text(_as_text(obj.get("text")))

    def _generic_tool_start(self, obj: dict[str, Any]) -> list[AgentEvent]:
        return [self._start(obj.get("id"), obj.get("name"), obj.get("input"))]

    def _generic_tool_result(self, obj: dict[str, Any]) -> list[AgentEvent]:
        output = obj["output"] if "output" in obj else obj.get("content")
        ok = bool(obj["ok"]) if "ok" in obj else not obj.get("is_error")
        return [self._finish(obj.get("id") or obj.get("tool_use_id"), output, ok)]

    def _error(self, obj: dict[str, Any]) -> list[AgentEvent]:
        error = obj.get("error")
        message = obj.get("message")
        if isinstance(error, dict):
            message = error.get("message") or message
        elif isinstance(error, str) and not message:
            message = error
        self.error = str(message or "the agent reported an error")
        return []

    # -------------------------------------------------------------- helpers

    def _start(self, raw_id: object, name: object, tool_input: object) -> ToolStart:
        self._tool_count += 1
        tool_id = safe_id(raw_id, f"tool-{self._tool_count}")
        self._open_tools.append(tool_id)
        return ToolStart(id=tool_id, name=str(name or "tool"), input=summarize_input(tool_input))

    def _finish(self, raw_id: object, content: object, ok: bool) -> ToolResult:
        """A ToolResult; without an id it belongs to the latest tool still running."""
        fallback = self._open_tools[-1] if self._open_tools else f"tool-{self._tool_count + 1}"
        tool_id = safe_id(raw_id, fallback)
        if tool_id in self._open_tools:
            self._open_tools.remove(tool_id)
        return ToolResult(id=tool_id, output=truncate(_content_text(content)), ok=ok)

    def _text(self, text: str) -> list[AgentEvent]:
        if not text:
            return []
        self.text_seen = True
        self.ends_with_newline = text.endswith("\n")
        return [TextDelta(text)]

    def _separator(self) -> list[AgentEvent]:
        if self.text_seen and not self.ends_with_newline:
            return self._text("\n\n")
        return []

    def _block_text(self, text: str) -> list[AgentEvent]:
        if not text:
            return []
        return self._separator() + self._text(text)


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _content_text(content: object) -> str:
    """Tool result content as text: a string, a list of blocks, or any JSON value."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for item in content:
            if isinstance(item, dict) and item.get("type") == "text":
                parts.append(_as_text(item.get("text")))
            elif isinstance(item, dict) and item.get("type") == "image":
                parts.append("[image]")
            elif isinstance(item, str):
                parts.append(item)
            else:
                parts.append(json.dumps(item, ensure_ascii=False))
        return "\n".join(parts)
    return json.dumps(content, ensure_ascii=False)
