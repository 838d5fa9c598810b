"""Turn a JavaScript regex literal from a rule into a compiled Python pattern."""

from __future__ import annotations

import re

from .errors import ExpressionError

_FLAGS = {"i": re.IGNORECASE}


def compile_regex(pattern: str, flags: str) -> re.Pattern[str]:
    """Compile ``/pattern/flags`` with JavaScript meaning; raises ExpressionError.

    Only the ``i`` flag exists in rules. ``$`` means end of input as in JS
    (Python's ``$`` also matches before a final newline), and ``\\d``/``\\w``
    stay ASCII-only as in JS.
    """
    py_flags = re.ASCII
    for flag in flags:
        if flag not in _FLAGS:
            raise ExpressionError(f"Unsupported regular expression flag '{flag}'")
        py_flags |= _FLAGS[flag]
    try:
        return re.compile(_translate(pattern), py_flags)
    except re.error as exc:
        raise ExpressionError(f"Invalid regular expression /{pattern}/: {exc}") from None


def _translate(pattern: str) -> str:
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])  # JS "\/" is also a plain "/" to Python
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            # a leading ']' is literal in Python but closes the class in JS
            if pattern.startswith("]", i + 1) or pattern.startswith("^]", i + 1):
                raise ExpressionError(f"Invalid regular expression /{pattern}/: empty class")
        elif ch == "$":
            ch = r"\Z"
        out.append(ch)
        i += 1
    return "".join(out)
