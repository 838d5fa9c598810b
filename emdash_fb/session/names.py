"""Display names that identify: what a name may contain, and when two names are the same.

A name is for people; identity is the uid. Within a session each name is
claimed once, at ``names/<key>``, where the key is :func:`name_key` of the
name. Two names with the same key count as the same name, so look-alikes
(``alice`` / ``Alice`` / ``ali ce`` / Cyrillic ``аlice`` / ``a1ice``) can't
both be members. The rules file computes the same key with the same table
(``rules/build_rules.py`` reads :data:`CONFUSABLES` and :data:`RESERVED` from
here), so a client that skips this module is held to it anyway.

What the rules can't do, this module does for honest clients before writing:
Unicode NFKC (full-width, ligatures, mathematical letters become plain
letters) and collapsing runs of whitespace. What they can, both do: refuse
control and format characters (Unicode Cc and Cf), other spaces and
separators, invisible fillers and full-width forms; refuse leading, trailing
and doubled spaces; refuse the reserved names. (``$ [ ] / .``, which a
database key can't hold, are allowed in names and folded in the key; ``:``
and ``#`` are refused, so a name can't read as a speaker or carry a fake uid
tag.)
"""

from __future__ import annotations

import re
import unicodedata

from .errors import SessionError

MAX_NAME = 64  # UTF-16 code units, as the rules count

#: Look-alike folding, applied in this order after lower-casing (``str.lower``
#: / JavaScript ``toLowerCase``). Small on purpose: the letters of Latin that
#: Cyrillic and Greek copy, digits that pass for letters, and a few pairs.
CONFUSABLES: tuple[tuple[str, str], ...] = (
    # characters a database key can't hold, as ones that look alike
    ("[", "("),
    ("]", ")"),
    ("$", "s"),
    ("/", "|"),
    # Cyrillic
    ("\u0430", "a"),  # а
    ("\u0432", "b"),  # в (В)
    ("\u0435", "e"),  # е
    ("\u0451", "e"),  # ё
    ("\u0456", "i"),  # і
    ("\u0457", "i"),  # ї
    ("\u0458", "j"),  # ј
    ("\u043a", "k"),  # к
    ("\u043c", "m"),  # м (М)
    ("\u043d", "h"),  # н (Н)
    ("\u043e", "o"),  # о
    ("\u0440", "p"),  # р
    ("\u0441", "c"),  # с
    ("\u0442", "t"),  # т (Т)
    ("\u0443", "y"),  # у
    ("\u0445", "x"),  # х
    ("\u0455", "s"),  # ѕ
    ("\u0501", "d"),  # ԁ
    ("\u04bb", "h"),  # һ
    ("\u04cf", "l"),  # ӏ
    ("\u051b", "q"),  # ԛ
    ("\u051d", "w"),  # ԝ
    ("\u04af", "y"),  # ү
    # Greek
    ("\u03b1", "a"),  # α
    ("\u03b2", "b"),  # β (Β)
    ("\u03b5", "e"),  # ε (Ε)
    ("\u03b7", "n"),  # η
    ("\u03b9", "i"),  # ι (Ι)
    ("\u03ba", "k"),  # κ (Κ)
    ("\u03bc", "m"),  # μ (Μ)
    ("\u03bd", "v"),  # ν (Ν reads as N, ν as v)
    ("\u03bf", "o"),  # ο (Ο)
    ("\u03c1", "p"),  # ρ (Ρ)
    ("\u03c4", "t"),  # τ (Τ)
    ("\u03c5", "u"),  # υ (Υ)
    ("\u03c7", "x"),  # χ (Χ)
    ("\u03b6", "z"),  # ζ (Ζ)
    # Latin look-alikes
    ("\u0131", "i"),  # ı dotless i
    ("\u0251", "a"),  # ɑ
    ("\u0261", "g"),  # ɡ
    ("\u01c0", "l"),  # ǀ
    # digits and shapes that pass for letters; i and l are one letter here
    ("0", "o"),
    ("1", "l"),
    ("|", "l"),
    ("i", "l"),
    ("rn", "m"),
    ("vv", "w"),
    # spaces don't separate names; '.' can't be in a database key
    (" ", ""),
    (".", ","),
)

#: Names nobody may take (compared by key): the agent's labels and the runners'.
RESERVED: tuple[str, ...] = (
    "agent",
    "system",
    "runner",
    "emdash",
    "emdash-fb",
    "owner",
    "admin",
    "echo",
    "command",
    "openai",
    "claude",
    "codex",
    "gemini",
)

#: Characters the rules refuse in a name (a regular-expression character class
#: body, no astral characters: rules regexes must mean the same on every
#: engine). C0/C1 controls, the Basic Multilingual Plane's format characters
#: (Cf: soft hyphen, bidi controls, zero-width characters, BOM ...), spaces
#: other than U+0020, line and paragraph separators, invisible fillers,
#: full-width and half-width forms (NFKC turns them into plain letters, so
#: only a hand-made write has them), ``:`` (a name must not read as
#: ``bob: ...``) and ``#`` (nor carry a fake uid tag, ``alice #3f2a``).
FORBIDDEN_CLASS = (
    "\u0000-\u001f\u007f-\u00a0\u00ad"
    "\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2"
    "\u115f\u1160\u1680\u180e"
    "\u2000-\u200f\u2028-\u202f\u205f-\u206f"
    "\u2800\u3000\u3164"
    "\ufeff\uff00-\uffef\ufff9-\ufffb"
    ":#"
)
_FORBIDDEN = re.compile(f"[{FORBIDDEN_CLASS}]")
_WHITESPACE = re.compile(r"\s+")


class BadName(SessionError):
    """A name that can't be used; ``str()`` is one line saying why and what to do."""


def name_key(name: str) -> str:
    """The key two names must not share (the rules compute exactly this)."""
    key = name.lower()
    for old, new in CONFUSABLES:
        key = key.replace(old, new)
    return key


RESERVED_KEYS = frozenset(name_key(n) for n in RESERVED)


def utf16_length(text: str) -> int:
    """Length as the rules count it (JavaScript strings: UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def normalize(raw: str) -> str:
    """``raw`` as it will be stored: NFKC, whitespace runs as one space, trimmed.

    Raises :class:`BadName` when what is left can't be a name.
    """
    name = _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", raw)).strip()
    if not name:
        raise BadName("a name can't be empty: pick one with --name NAME")
    bad = _FORBIDDEN.search(name) or next(
        (ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn")), None
    )
    if bad is not None:
        ch = bad if isinstance(bad, str) else bad.group(0)
        shown = ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"
        raise BadName(
            f"a name can't contain {shown} (control, invisible or reserved characters): "
            "pick another with --name NAME"
        )
    if utf16_length(name) > MAX_NAME:
        raise BadName(f"a name can have at most {MAX_NAME} characters: pick a shorter one")
    if name_key(name) in RESERVED_KEYS:
        raise BadName(f"{name!r} is reserved (it would look like the agent): pick another name")
    return name


def is_valid(name: str) -> bool:
    """Whether ``name`` is stored as is (already normalized and allowed)."""
    try:
        return normalize(name) == name
    except BadName:
        return False
