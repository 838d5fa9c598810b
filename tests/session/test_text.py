"""How other people's text may be shown: cleaning, one-line forms, log lines, the layout."""

from __future__ import annotations

import sys
import unicodedata

import pytest

from emdash_fb.session import text
from emdash_fb.session.text import GUTTER, clean, for_log, layout, one_line, uid_tag

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u180e"
FILLERS = "\u115f\u1160\u3164\uffa0\u2800"
BREAKS = ["\n", "\r\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def test_csi_sequences_are_removed():
    assert clean("\x1b[2J\x1b[Hhi \x1b[31mred\x1b[0m \x1b[?25l\x9b2Jx") == "hi red x"


def test_osc_and_other_strings_stay_visible_and_inert():
    osc52 = "\x1b]52;c;cm0gLXJmIH4=\x07"
    assert clean(osc52) == "^[]52;c;cm0gLXJmIH4=^G"
    link = "\x1b]8;;http://evil\x1b\\notes\x1b]8;;\x1b\\"
    assert clean(link) == "^[]8;;http://evil^[\\notes^[]8;;^[\\"
    assert clean("\x1bP+q\x1b\\ \x1b_apc\x9c \x9d0;t\x07") == "^[P+q^[\\ ^[_apc\\x9c \\x9d0;t^G"
    assert "\x1b" not in clean(osc52 + link) and "\x07" not in clean(osc52)


def test_controls_are_caret_or_hex():
    assert clean("a\x00b\x07c\x7fd\x90e") == "a^@b^Gc^?d\\x90e"
    assert clean("tab\there") == "tab\there"
    assert one_line("tab\there") == "tab^Ihere"


@pytest.mark.parametrize("ch", list(BIDI + ZERO_WIDTH + FILLERS))
def test_format_and_invisible_characters_are_shown_by_code(ch):
    shown = clean(f"a{ch}b")
    assert shown == f"a<U+{ord(ch):04X}>b"
    assert one_line(f"a{ch}b") == shown


def test_tags_surrogates_and_stray_selectors():
    assert clean("hi\U000e0041\U000e0042") == "hi<U+E0041><U+E0042>"
    assert clean("x\ud800y") == "x<U+D800>y"
    assert clean("ok\ufe00") == "ok<U+FE00>"
    # an emoji's presentation selector is kept; a stray or doubled one is shown
    assert clean("\u2764\ufe0f") == "\u2764\ufe0f"
    assert clean("\ufe0f \u2764\ufe0f\ufe0f") == "<U+FE0F> \u2764\ufe0f<U+FE0F>"
    clean("\ud800").encode("utf-8")  # printable on any UTF-8 terminal


def test_every_cf_and_separator_of_this_python_is_covered():
    missed = []
    for n in range(sys.maxunicode + 1):
        ch = chr(n)
        hidden = unicodedata.category(ch) in ("Cf", "Cc", "Cs", "Zl", "Zp")
        if hidden and ch not in "\t\n" and one_line(ch) == ch:
            missed.append(f"U+{n:04X}")
    assert missed == []


@pytest.mark.parametrize("brk", BREAKS)
def test_every_line_break_is_one_newline_and_visible_on_one_line(brk):
    assert clean(f"one{brk}two") == "one\ntwo"
    assert text.lines(f"one{brk}two") == ["one", "two"]
    flat = one_line(f"one{brk}two")
    assert "\n" not in flat and "\r" not in flat and flat.splitlines() == [flat]
    assert flat.startswith("one") and flat.endswith("two") and len(flat) > 6


def test_one_line_forms():
    assert one_line("alice\nbob: hi") == "alice^Jbob: hi"
    assert one_line("a\r\nb") == "a^M^Jb"
    assert one_line("a\u2028b\x85c") == "a<U+2028>b\\x85c"
    assert one_line("plain name") == "plain name"
    assert one_line("José 山田 👍") == "José 山田 👍"


def test_for_log_is_one_bounded_line():
    evil = "bob\n2024-01-01 INFO turn done\r\x1b[2K\u202eforged"
    line = for_log(evil)
    assert line == "bob^J2024-01-01 INFO turn done^M<U+202E>forged"
    long = for_log("x" * 1000, limit=50)
    assert len(long) == 50 and long.endswith("…")
    assert len(for_log("\u202e" * 100, limit=20)) == 20
    assert for_log("short", limit=5) == "short"
    assert for_log(ValueError("bad\nthing")) == "bad^Jthing"
    assert for_log(42) == "42"
    with pytest.raises(ValueError):
        for_log("x", limit=0)


def test_uid_tag():
    assert uid_tag("kX81mQ0aZ3f2a") == "#3f2a"
    assert uid_tag("") == ""
    assert uid_tag("ab\n") == "#ab^J"


def test_layout_puts_every_continuation_line_behind_the_gutter():
    body = "first\nalice: approve it\r invite ABCDE-FGHJK │ 3 online\u2028\n"
    assert layout("bob: ", body) == (
        "bob: first\n"
        f"{GUTTER}alice: approve it\n"
        f"{GUTTER} invite ABCDE-FGHJK │ 3 online\n"
        f"{GUTTER.rstrip()}\n"
        f"{GUTTER.rstrip()}"
    )
    assert layout("bob: ", "one line") == "bob: one line"


def test_layout_with_a_width_folds_behind_the_gutter_too():
    # A line long enough to wrap: on a terminal its wrapped part would start at column 0.
    body = "x" * 25 + " [12:01] carol: approve it"
    out = layout("[12:00] bob: ", body, width=40)
    rows = out.split("\n")
    assert rows[0].startswith("[12:00] bob: ")
    assert all(r.startswith(GUTTER.rstrip()) for r in rows[1:])
    assert all(text.cells(r) <= 40 for r in rows)
    assert "".join(r.removeprefix(GUTTER) for r in rows[1:]).replace(" ", "") in (
        "[12:01]carol:approveit"
    )
    # wide characters count two columns
    wide = layout("a: ", "山" * 30, width=20)
    assert all(text.cells(r) <= 20 for r in wide.split("\n"))
    assert wide.replace(GUTTER, "").replace("\n", "").removeprefix("a: ") == "山" * 30
    # a long head wraps behind the gutter as well
    head = layout("n" * 30 + ": ", "hi", width=20)
    assert all(r.startswith(GUTTER) for r in head.split("\n")[1:])


def test_cells():
    assert text.cells("abc") == 3
    assert text.cells("山田") == 4
    assert text.cells("e\u0301") == 1
