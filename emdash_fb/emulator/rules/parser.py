"""Parse a rule expression into a syntax tree (a Pratt parser with JS precedence).

Methods may be called by name (``data.exists()``) or through brackets with a
string literal (``data["exists"]()``), as in Firebase; a computed name can't
be called.
"""

from __future__ import annotations

from .errors import ExpressionError
from .lexer import Kind, Token, tokenize
from .nodes import (
    ArrayLiteral,
    Binary,
    Call,
    Conditional,
    Index,
    Literal,
    Logical,
    Member,
    Name,
    Node,
    RegexLiteral,
    Unary,
)

# Binding power of each infix operator; higher binds tighter (JavaScript's order).
_CONDITIONAL = 1
_INFIX = {
    "||": 2,
    "&&": 3,
    "==": 4,
    "!=": 4,
    "===": 4,
    "!==": 4,
    "<": 5,
    "<=": 5,
    ">": 5,
    ">=": 5,
    "+": 6,
    "-": 6,
    "*": 7,
    "/": 7,
    "%": 7,
}
_UNARY = 8
_KEYWORDS = {"true": True, "false": False, "null": None}


def parse(source: str) -> Node:
    """The syntax tree of ``source``; raises ExpressionError on bad syntax."""
    parser = _Parser(tokenize(source))
    if parser.peek().kind is Kind.END:
        raise ExpressionError("Empty expression", 0)
    node = parser.expression(0)
    parser.expect_end()
    return node


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not Kind.END:
            self.index += 1
        return token

    def is_punct(self, text: str) -> bool:
        token = self.peek()
        return token.kind is Kind.PUNCT and token.text == text

    def expect(self, text: str) -> None:
        if not self.is_punct(text):
            raise self.unexpected()
        self.advance()

    def expect_end(self) -> None:
        if self.peek().kind is not Kind.END:
            raise self.unexpected()

    def unexpected(self) -> ExpressionError:
        token = self.peek()
        if token.kind is Kind.END:
            return ExpressionError("Unexpected end of expression", token.pos)
        return ExpressionError(f"Unexpected token '{token.text}'", token.pos)

    def expression(self, min_power: int) -> Node:
        left = self.postfix(self.prefix())
        while True:
            token = self.peek()
            if token.kind is not Kind.PUNCT:
                return left
            op = token.text
            if op == "?" and min_power < _CONDITIONAL:
                self.advance()
                then = self.expression(0)
                self.expect(":")
                # right-associative: a ? b : c ? d : e
                otherwise = self.expression(_CONDITIONAL - 1)
                left = Conditional(left, then, otherwise, pos=token.pos)
                continue
            power = _INFIX.get(op)
            if power is None or power <= min_power:
                return left
            self.advance()
            right = self.expression(power)
            kind = Logical if op in ("&&", "||") else Binary
            left = kind(op, left, right, pos=token.pos)

    def prefix(self) -> Node:
        token = self.peek()
        if token.kind is Kind.END or (token.kind is Kind.PUNCT and token.text not in "([!-"):
            raise self.unexpected()
        self.advance()
        at = token.pos
        if token.kind in (Kind.NUMBER, Kind.STRING):
            return Literal(token.value, pos=at)
        if token.kind is Kind.REGEX:
            pattern, flags = token.value  # type: ignore[misc]
            return RegexLiteral(pattern, flags, pos=at)
        if token.kind is Kind.NAME:
            if token.text in _KEYWORDS:
                return Literal(_KEYWORDS[token.text], pos=at)
            return Name(token.text, pos=at)
        if token.text == "(":
            inner = self.expression(0)
            self.expect(")")
            return inner
        if token.text == "[":
            return ArrayLiteral(self.list_until("]"), pos=at)
        return Unary(token.text, self.expression(_UNARY), pos=at)

    def postfix(self, node: Node) -> Node:
        while True:
            if self.is_punct("."):
                self.advance()
                name = self.peek()
                if name.kind is not Kind.NAME:
                    raise self.unexpected()
                self.advance()
                if self.is_punct("("):
                    self.advance()
                    node = Call(node, name.text, self.list_until(")"), pos=name.pos)
                else:
                    node = Member(node, name.text, pos=name.pos)
            elif self.is_punct("["):
                self.advance()
                key = self.expression(0)
                self.expect("]")
                node = Index(node, key, pos=key.pos)
            elif self.is_punct("("):
                node = self.bracket_call(node)
            else:
                return node

    def bracket_call(self, callee: Node) -> Call:
        """``obj["method"](args)``: the name must be a string literal, as in Firebase."""
        at = self.peek().pos
        if not (isinstance(callee, Index) and isinstance(callee.key, Literal)):
            raise ExpressionError("Only methods can be called, as in data.val()", at)
        if type(callee.key.value) is not str:
            raise ExpressionError("A method name in brackets must be a string", callee.pos)
        self.advance()
        return Call(callee.obj, callee.key.value, self.list_until(")"), pos=callee.pos)

    def list_until(self, closer: str) -> tuple[Node, ...]:
        items: list[Node] = []
        if self.is_punct(closer):
            self.advance()
            return ()
        while True:
            items.append(self.expression(0))
            if self.is_punct(","):
                self.advance()
                continue
            self.expect(closer)
            return tuple(items)
