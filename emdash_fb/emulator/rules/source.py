"""Load rules file text: JSON that may carry ``//`` and ``/* */`` comments.

A small recursive-descent reader instead of ``json.loads`` so that every value
keeps the line and column it starts on; expression errors found later can then
point at the right place in the file, even through escapes in the string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import RulesError

JsonPath = tuple[str, ...]

_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_LITERALS = {"true": True, "false": False, "null": None}


@dataclass
class LoadedSource:
    """The parsed JSON value and, for every value in it, where it starts."""

    value: Any
    lines: dict[JsonPath, int] = field(default_factory=dict)
    columns: dict[JsonPath, int] = field(default_factory=dict)  # 1-based
    # For each string value, the raw offset (after the opening quote) of each decoded character.
    string_offsets: dict[JsonPath, list[int]] = field(default_factory=dict)

    def line_of(self, path: JsonPath) -> int:
        """The line of the value at ``path`` (or of its nearest located ancestor)."""
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)

    def column_of(self, path: JsonPath, offset: int | None) -> int | None:
        """The file column of character ``offset`` inside the string value at ``path``."""
        offsets = self.string_offsets.get(path)
        if offset is None or offsets is None or path not in self.columns:
            return None
        return self.columns[path] + 1 + offsets[min(offset, len(offsets) - 1)]


def load_source(text: str) -> LoadedSource:
    """Parse ``text``; raise RulesError naming the line of the first problem."""
    loaded = LoadedSource(None)
    reader = _Reader(text, loaded)
    reader.skip_space()
    loaded.value = reader.value(())
    reader.skip_space()
    if reader.pos < len(text):
        reader.fail("Unexpected text after the end of the JSON value")
    return loaded


class _Reader:
    def __init__(self, text: str, loaded: LoadedSource) -> None:
        self.text = text
        self.pos = 0
        self.loaded = loaded

    def line(self, pos: int | None = None) -> int:
        return self.text.count("\n", 0, self.pos if pos is None else pos) + 1

    def fail(self, message: str, pos: int | None = None) -> None:
        raise RulesError(f"Line {self.line(pos)}: {message}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_space(self) -> None:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in " \t\r\n\ufeff":
                self.pos += 1
            elif text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    self.fail("Unterminated /* comment")
                self.pos = end + 2
            else:
                return

    def expect(self, ch: str, what: str) -> None:
        self.skip_space()
        if self.peek() != ch:
            self.fail(f"Expected {what} but found {self.describe()}")
        self.pos += 1

    def describe(self) -> str:
        ch = self.peek()
        return "end of file" if not ch else repr(ch)

    def value(self, path: JsonPath) -> Any:
        self.skip_space()
        self.loaded.lines[path] = self.line()
        self.loaded.columns[path] = self.pos - (self.text.rfind("\n", 0, self.pos) + 1) + 1
        ch = self.peek()
        if ch == "{":
            return self.object(path)
        if ch == "[":
            return self.array(path)
        if ch == '"':
            offsets: list[int] = []
            value = self.string(offsets)
            self.loaded.string_offsets[path] = offsets
            return value
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            token = match.group()
            try:
                return float(token) if match.group(1) or match.group(2) else int(token)
            except ValueError:  # more digits than Python converts
                self.fail("Number too long")
        for word, literal in _LITERALS.items():
            if self.text.startswith(word, self.pos):
                self.pos += len(word)
                return literal
        self.fail(f"Expected a JSON value but found {self.describe()}")

    def object(self, path: JsonPath) -> dict[str, Any]:
        self.pos += 1
        out: dict[str, Any] = {}
        self.skip_space()
        if self.peek() == "}":
            self.pos += 1
            return out
        while True:
            self.skip_space()
            if self.peek() != '"':
                self.fail(f"Expected a quoted key but found {self.describe()}")
            key_pos = self.pos
            key = self.string()
            if key in out:
                self.fail(f"Duplicate key {key!r}", key_pos)
            self.expect(":", "':'")
            out[key] = self.value((*path, key))
            self.skip_space()
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect("}", "',' or '}'")
            return out

    def array(self, path: JsonPath) -> list[Any]:
        self.pos += 1
        out: list[Any] = []
        self.skip_space()
        if self.peek() == "]":
            self.pos += 1
            return out
        while True:
            out.append(self.value((*path, str(len(out)))))
            self.skip_space()
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect("]", "',' or ']'")
            return out

    def string(self, offsets: list[int] | None = None) -> str:
        """A string; ``offsets`` (if given) gets each decoded character's raw offset."""
        text = self.text
        start = self.pos
        self.pos += 1
        parts: list[str] = []
        while True:
            if self.pos >= len(text):
                self.fail("Unterminated string", start)
            ch = text[self.pos]
            if offsets is not None:
                offsets.append(self.pos - start - 1)
            if ch == '"':  # its offset stays in ``offsets``: where the end of the text points
                self.pos += 1
                return "".join(parts)
            if ch == "\\":
                parts.append(self.escape())
            elif ch < " ":
                self.fail("Control character in string")
            else:
                parts.append(ch)
                self.pos += 1

    def escape(self) -> str:
        code = self.text[self.pos + 1 : self.pos + 2]
        if code in _ESCAPES:
            self.pos += 2
            return _ESCAPES[code]
        if code == "u":
            point = self.hex4(self.pos + 2)
            self.pos += 6
            if 0xD800 <= point < 0xDC00 and self.text.startswith("\\u", self.pos):
                low = self.hex4(self.pos + 2)
                if 0xDC00 <= low < 0xE000:
                    self.pos += 6
                    return chr(0x10000 + ((point - 0xD800) << 10) + (low - 0xDC00))
            return chr(point)
        self.fail(f"Invalid escape '\\{code}' in string")
        return ""

    def hex4(self, at: int) -> int:
        digits = self.text[at : at + 4]
        if len(digits) != 4 or not all(c in "0123456789abcdefABCDEF" for c in digits):
            self.fail("Invalid \\u escape in string")
        return int(digits, 16)
