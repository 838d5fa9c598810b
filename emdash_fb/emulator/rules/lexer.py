"""Split a rule expression into tokens.

Regex literals (``/^a+$/i``) are told apart from division the way JavaScript
does it: a ``/`` that follows something that ends a value divides, any other
``/`` starts a regex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .errors import ExpressionError


class Kind(Enum):
    NAME = "name"
    NUMBER = "number"
    STRING = "string"
    REGEX = "regex"
    PUNCT = "punct"
    END = "end"


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str  # the exact source text of the token
    value: object  # number, decoded string, or (pattern, flags) for a regex
    pos: int  # offset of the token in the expression


_PUNCTUATORS = (
    "===",
    "!==",
    "==",
    "!=",
    "<=",
    ">=",
    "&&",
    "||",
    "<",
    ">",
    "!",
    "+",
    "-",
    "*",
    "/",
    "%",
    "?",
    ":",
    ".",
    ",",
    "(",
    ")",
    "[",
    "]",
)
_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_STRING_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "0": "\0",
}
_VALUE_ENDS = {Kind.NAME, Kind.NUMBER, Kind.STRING, Kind.REGEX}


def tokenize(source: str) -> list[Token]:
    """All tokens of ``source``, ending with an END token."""
    tokens: list[Token] = []
    pos = 0
    n = len(source)
    while True:
        while pos < n and source[pos].isspace():
            pos += 1
        if pos >= n:
            tokens.append(Token(Kind.END, "", None, pos))
            return tokens
        ch = source[pos]
        if ch == "/" and not _ends_value(tokens):
            token = _regex(source, pos)
        elif ch in "'\"":
            token = _string(source, pos)
        elif ch.isdigit() or (ch == "." and source[pos + 1 : pos + 2].isdigit()):
            match = _NUMBER.match(source, pos)
            assert match is not None
            text = match.group()
            try:
                value: float | int = float(text) if any(c in text for c in ".eE") else int(text)
            except ValueError:  # more digits than Python converts
                raise ExpressionError("Number too long", pos) from None
            token = Token(Kind.NUMBER, text, value, pos)
        elif match := _NAME.match(source, pos):
            token = Token(Kind.NAME, match.group(), match.group(), pos)
        else:
            punct = next((p for p in _PUNCTUATORS if source.startswith(p, pos)), None)
            if punct is None:
                raise ExpressionError(f"Unexpected token '{ch}'", pos)
            token = Token(Kind.PUNCT, punct, punct, pos)
        tokens.append(token)
        pos = token.pos + len(token.text)


def _ends_value(tokens: list[Token]) -> bool:
    if not tokens:
        return False
    last = tokens[-1]
    return last.kind in _VALUE_ENDS or (last.kind is Kind.PUNCT and last.text in (")", "]"))


def _string(source: str, start: int) -> Token:
    quote = source[start]
    pos = start + 1
    parts: list[str] = []
    while True:
        if pos >= len(source):
            raise ExpressionError("Unterminated string", start)
        ch = source[pos]
        if ch == quote:
            return Token(Kind.STRING, source[start : pos + 1], "".join(parts), start)
        if ch != "\\":
            parts.append(ch)
            pos += 1
            continue
        code = source[pos + 1 : pos + 2]
        if not code:
            raise ExpressionError("Unterminated string", start)
        if code in ("u", "x"):
            width = 4 if code == "u" else 2
            digits = source[pos + 2 : pos + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ExpressionError(f"Invalid \\{code} escape in string", pos)
            parts.append(chr(int(digits, 16)))
            pos += 2 + width
        else:
            # JavaScript: an unknown escape is the character itself (\' \" \\ \/ ...)
            parts.append(_STRING_ESCAPES.get(code, code))
            pos += 2


def _regex(source: str, start: int) -> Token:
    pos = start + 1
    in_class = False
    while True:
        if pos >= len(source):
            raise ExpressionError("Unterminated regular expression", start)
        ch = source[pos]
        if ch == "\\":
            pos += 2
            continue
        if ch == "[":
            in_class = True
        elif ch == "]":
            in_class = False
        elif ch == "/" and not in_class:
            break
        pos += 1
    flags_match = _NAME.match(source, pos + 1)
    flags = flags_match.group() if flags_match else ""
    end = pos + 1 + len(flags)
    body = source[start + 1 : pos]
    if not body:
        raise ExpressionError("Empty regular expression", start)
    return Token(Kind.REGEX, source[start:end], (body, flags), start)
