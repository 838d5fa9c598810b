"""The two failures of the rules engine: a bad rules file, and a rule that errors."""

from __future__ import annotations


class RulesError(ValueError):
    """The rules file can't be used; the message is one readable line.

    The emulator sends it as the ``{"error": ...}`` body of a 400, e.g.
    ``Line 3, column 28: Unexpected token '}' in .read at /rules/a``.
    """


class EvalError(Exception):
    """A rule expression failed while running; that rule counts as false."""


class ExpressionError(RulesError):
    """A problem inside one expression; the rule loader prefixes line, column and location.

    ``pos`` is the offset in the expression the problem points at (None when
    the whole expression is meant).
    """

    def __init__(self, message: str, pos: int | None = None) -> None:
        super().__init__(message)
        self.pos = pos
