"""How text written by people and agents may be shown: for terminals, for log lines, in lines.

Everything in a session that someone wrote -- names, titles, messages, the
agent's replies, tool names and output, error texts -- is data. This module is
the one place that says how such text may be shown; the terminal UI and the
plain-text commands (``cli``), the agents' prompts and the runner's log lines
(``runner``) all use it.

**Cleaning for terminals** (:func:`clean`): nothing in the text can drive the
terminal or hide from the reader.

* CSI sequences (colours, cursor moves, screen clears -- they carry no text)
  are removed.
* Every other control character is shown visibly, ``^X`` for C0 (``^[`` for
  ESC, ``^G`` for BEL) and ``\\xNN`` for C1. That leaves OSC, DCS, APC and PM
  strings (window titles, OSC 52 clipboard writes, OSC 8 hyperlinks) visible
  and inert: ``^[]52;c;aGk=^G``. Tabs are kept.
* Format and invisible characters are shown as ``<U+XXXX>``: bidi controls
  (U+202A..U+202E, U+2066..U+2069, U+200E/U+200F, U+061C), zero-width
  characters (U+200B..U+200D, U+2060, U+FEFF, U+180E), every other Unicode
  ``Cf`` character, tag characters (U+E0000..U+E0FFF), lone surrogates,
  invisible fillers (U+115F, U+1160, U+3164, U+FFA0, U+2800, U+034F, U+17B4,
  U+17B5, U+180B..U+180F), noncharacters U+FFF0..U+FFF8 and U+FFFE/U+FFFF, and
  variation selectors except U+FE0E/U+FE0F right after a visible character (an
  emoji's text/emoji presentation).
* Line breaks are the ones :meth:`str.splitlines` knows (``\\n``, ``\\r\\n``, a
  lone ``\\r``, VT, FF, FS, GS, RS, NEL U+0085, U+2028, U+2029). :func:`clean`
  turns each into ``\\n``, so a ``\\r`` never returns the cursor.

**One line** (:func:`one_line`, for names, titles and labels) is the same, but
line breaks and tabs are shown visibly too (``^J``, ``^M``, ``^I``,
``\\x85``, ``<U+2028>``). :func:`for_log` is :func:`one_line` cut to a bounded
length, for log lines.

**The multi-line layout** (:func:`layout`): a text's first line follows its head
(``alice: ``); every further line starts with :data:`GUTTER` (``"  │ "``) --
each line break, and each soft wrap when a width is given -- so no line of a
text can pass for a new speaker, a status line, a notice or the toolbar. The
REPL draws the same shape with rich (``cli.render``) and the agents' prompts use
it as well (``runner.agents.base``).
"""

from __future__ import annotations

import functools
import re
import unicodedata

#: What every continuation line of a multi-line text starts with.
GUTTER = "  │ "
#: How many characters of a uid :func:`uid_tag` shows.
TAG_CHARS = 4
DEFAULT_LOG_LIMIT = 200

# Ranges (inclusive) shown as <U+XXXX>, besides the C0/C1 controls. Every Cf
# character of Unicode 15.1 is in here (the tests check this against the
# running Python's unicodedata); the rest are characters that show nothing.
_INVISIBLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # soft hyphen
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x0600, 0x0605),  # Arabic number signs
    (0x061C, 0x061C),  # Arabic letter mark (bidi)
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x115F, 0x1160),  # Hangul fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels (invisible)
    (0x180B, 0x180F),  # Mongolian variation selectors and vowel separator
    (0x200B, 0x200F),  # zero-width space/joiners, LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2060, 0x206F),  # word joiner, invisible operators, bidi isolates, deprecated
    (0x2800, 0x2800),  # braille blank
    (0x3164, 0x3164),  # Hangul filler
    (0xD800, 0xDFFF),  # lone surrogates (cannot even be encoded for the terminal)
    (0xFE00, 0xFE0D),  # variation selectors (U+FE0E/U+FE0F: see _PRESENTATION)
    (0xFEFF, 0xFEFF),  # zero-width no-break space / BOM
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xFFF0, 0xFFFB),  # unassigned default-ignorables, interlinear annotation
    (0xFFFE, 0xFFFF),  # noncharacters
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),  # Egyptian hieroglyph format controls
    (0x1BCA0, 0x1BCA3),  # shorthand format controls
    (0x1D173, 0x1D17A),  # musical symbol format controls
    (0xE0000, 0xE0FFF),  # tag characters and variation selectors supplement
)
_PRESENTATION = "\ufe0e\ufe0f"


def _class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges)


_CSI = r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]"
_BREAK = r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]"
_TOKEN = re.compile(
    f"(?P<csi>{_CSI})"
    f"|(?P<brk>{_BREAK})"
    r"|(?P<tab>\t)"
    rf"|(?P<hid>[\x00-\x08\x0b-\x1f\x7f-\x9f{_class(_INVISIBLE)}])"
    f"|(?P<vs>[{_PRESENTATION}])"
)
_HIDDEN_CHAR = re.compile(rf"[\s\x00-\x1f\x7f-\x9f{_class(_INVISIBLE)}{_PRESENTATION}]")


def code(ch: str) -> str:
    """The visible stand-in for one character: ``^X`` (C0), ``\\xNN`` (C1), ``<U+XXXX>``."""
    n = ord(ch)
    if n < 0x20:
        return "^" + chr(n + 64)
    if n == 0x7F:
        return "^?"
    if n <= 0x9F:
        return f"\\x{n:02x}"
    return f"<U+{n:04X}>"


def _show(text: str, *, breaks: bool, escapes: bool = False) -> str:
    def one(m: re.Match[str]) -> str:
        kind = m.lastgroup
        if kind == "csi":
            if escapes:  # shown, not removed: ^[[2K
                return "".join(code(c) if c in "\x1b\x9b" else c for c in m.group())
            return ""
        if kind in ("brk", "tab"):
            if breaks:
                return "\n" if kind == "brk" else "\t"
            return "".join(code(c) for c in m.group())
        if kind == "vs":
            i = m.start()
            if i > 0 and not _HIDDEN_CHAR.match(text, i - 1):
                return m.group()  # emoji/text presentation of the character before it
        return code(m.group())

    return _TOKEN.sub(one, text)


def clean(text: str) -> str:
    """``text`` safe to print on a terminal: see the module docstring. Keeps line breaks
    (every kind becomes ``\\n``) and tabs."""
    return _show(text, breaks=True)


def one_line(text: str) -> str:
    """``text`` cleaned and on one line: line breaks and tabs are shown visibly too."""
    return _show(text, breaks=False)


def verbatim(text: str, *, line: bool = False) -> str:
    """Every character of ``text`` visible, escape sequences included (``^[[2K``), for what
    someone must judge exactly: a command the agent asks to run. ``line``: on one line."""
    return _show(text, breaks=not line, escapes=True)


def lines(text: str) -> list[str]:
    """The cleaned lines of ``text`` (a trailing line break gives a last empty line)."""
    return clean(text).split("\n")


def for_log(value: object, limit: int = DEFAULT_LOG_LIMIT) -> str:
    """One log-safe line for a name, a text or an error: :func:`one_line`, at most ``limit``
    characters (cut with ``…``). Anything not a string is shown as ``str(value)``."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    raw = value if isinstance(value, str) else str(value)
    shown = one_line(raw[: limit + 1])
    if len(raw) > limit or len(shown) > limit:
        return shown[: limit - 1] + "…"
    return shown


def uid_tag(uid: str) -> str:
    """A short, stable tag for a uid (``#3f2a``: its last characters), so two people with
    similar names can be told apart; ``""`` for no uid."""
    return "#" + one_line(uid[-TAG_CHARS:]) if uid else ""


# --------------------------------------------------------------------------- layout


@functools.lru_cache(maxsize=8192)
def cell_width(ch: str) -> int:
    """Terminal columns one (cleaned) character takes: 2 for wide East Asian, 0 for
    combining marks, else 1."""
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def cells(text: str) -> int:
    """Terminal columns ``text`` (cleaned, one line, no tabs) takes."""
    if text.isascii():
        return len(text)
    return sum(cell_width(ch) for ch in text)


def _fold(row: str, first: int, rest: int, keep: int = 1) -> list[str]:
    """``row`` cut into pieces of at most ``first`` then ``rest`` columns, at a space when
    there is one in reach (but never within the first ``keep`` characters: the head).
    Linear in the row's length: each piece measures only its own characters."""
    out: list[str] = []
    width = max(1, first)
    while True:
        if row.isascii():  # (the head's gutter isn't: only the first piece measures it)
            if len(row) <= width:
                break
            cut = width
        else:
            used, cut, fits = 0, 0, True
            for i, ch in enumerate(row):
                w = cell_width(ch)
                if used + w > width:
                    fits = False
                    break
                used, cut = used + w, i + 1
            if fits:
                break
        cut = max(cut, 1)
        space = row.rfind(" ", max(1, keep), cut + 1)
        if space > 0:
            out.append(row[:space])
            row = row[space + 1 :]
        else:
            out.append(row[:cut])
            row = row[cut:]
        width, keep = max(1, rest), 1
    out.append(row)
    return out


def layout(head: str, body: str, *, width: int | None = None, gutter: str = GUTTER) -> str:
    """``head`` followed by ``body`` (cleaned here), every further line behind ``gutter``.

    ``head`` must already be safe (built from :func:`one_line` pieces). With
    ``width`` (a terminal's columns) rows are also folded to fit, and every
    folded row starts with the gutter too, so nothing the terminal wraps can
    start at column 0. Trailing spaces of each row are dropped.
    """
    rows: list[str] = []
    for i, line in enumerate(lines(body)):
        if width is None:
            rows.append((head + line if i == 0 else gutter + line).rstrip())
            continue
        line = line.expandtabs(8)
        room = width - cells(gutter)
        pieces = _fold(head + line, width, room, len(head)) if i == 0 else _fold(line, room, room)
        for j, piece in enumerate(pieces):
            rows.append((piece if i == 0 and j == 0 else gutter + piece).rstrip())
    return "\n".join(rows)
