"""Who may own sessions, and so make a runner work: the project allowlist and runner filters.

The allowlist lives in the database at ``allow/uid/<uid>``,
``allow/email/<address>`` and ``allow/domain/<domain>`` (lower case, ``.``
written as ``,`` because a key can't hold a dot). Only an admin credential
writes it (``emdash-fb admin allow|revoke``); the rules check it when a
session is created, and a runner checks it again before every claim, so a
revoked owner's sessions stop being served.

A runner may serve fewer owners than the allowlist names: ``--serve`` takes
:class:`ServeSpec` values (``allowlist``, ``uid:U``, ``email:E``, ``domain:D``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

KINDS = ("uid", "email", "domain")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def key_of(kind: str, value: str) -> str:
    """The database key of an allowlist entry (``email``/``domain`` lower case, dots as commas)."""
    value = value.strip()
    if kind == "uid":
        return value
    return value.lower().replace(".", ",")


def domain_of(email: str) -> str:
    return email.rpartition("@")[2].lower() if "@" in email else ""


def parse_entry(text: str) -> tuple[str, str]:
    """``uid:U`` / ``email:E`` / ``domain:D`` (or a bare address / domain / uid) -> (kind, value).

    Raises ``ValueError`` with a one-line reason for anything else.
    """
    kind, sep, value = text.partition(":")
    if not sep:
        value = text
        kind = "email" if "@" in text else ("domain" if "." in text else "uid")
    kind, value = kind.strip().lower(), value.strip()
    if kind not in KINDS or not value:
        raise ValueError(f"{text!r} is not an owner: use uid:UID, email:ADDRESS or domain:DOMAIN")
    if kind == "email" and not _EMAIL.match(value):
        raise ValueError(f"{value!r} is not an email address")
    if kind == "domain" and ("@" in value or "." not in value):
        raise ValueError(f"{value!r} is not a domain (like example.com)")
    if any(c in value for c in "#$[]/") or any(ord(c) < 0x20 for c in value):
        raise ValueError(f"{value!r} can't be stored (no # $ [ ] / or control characters)")
    return kind, value


def is_allowed(allow: Any, owner: str, owner_email: str = "") -> bool:
    """Whether the allowlist tree ``allow`` (the value at ``/allow``) names this owner."""
    tree = allow if isinstance(allow, dict) else {}

    def has(kind: str, value: str) -> bool:
        entries = tree.get(kind)
        return bool(value) and isinstance(entries, dict) and bool(entries.get(key_of(kind, value)))

    return has("uid", owner) or has("email", owner_email) or has("domain", domain_of(owner_email))


@dataclass(frozen=True)
class ServeSpec:
    """Which owners one runner serves (always within the allowlist)."""

    everyone: bool = True  # everyone on the allowlist
    uids: frozenset[str] = frozenset()
    emails: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, values: list[str] | tuple[str, ...]) -> ServeSpec:
        """``[]`` or ``["allowlist"]``: everyone allowed; else only the owners named."""
        if not values or [v.strip().lower() for v in values] == ["allowlist"]:
            return cls()
        uids, emails, domains = set(), set(), set()
        for text in values:
            if text.strip().lower() == "allowlist":
                raise ValueError("--serve allowlist can't be combined with named owners")
            kind, value = parse_entry(text)
            {"uid": uids, "email": emails, "domain": domains}[kind].add(key_of(kind, value))
        return cls(False, frozenset(uids), frozenset(emails), frozenset(domains))

    def serves(self, owner: str, owner_email: str = "") -> bool:
        if self.everyone:
            return True
        return (
            owner in self.uids
            or (bool(owner_email) and key_of("email", owner_email) in self.emails)
            or (bool(owner_email) and key_of("domain", domain_of(owner_email)) in self.domains)
        )

    def describe(self) -> str:
        if self.everyone:
            return "every owner on the project's allowlist"
        named = [f"uid:{u}" for u in sorted(self.uids)]
        named += [f"email:{e.replace(',', '.')}" for e in sorted(self.emails)]
        named += [f"domain:{d.replace(',', '.')}" for d in sorted(self.domains)]
        return "only " + ", ".join(named) + " (if on the allowlist)"


class _Db(Protocol):
    def get(self, path: str) -> Any: ...
    def set(self, path: str, value: Any) -> None: ...
    def delete(self, path: str) -> None: ...


def allow(db: _Db, kind: str, value: str) -> str:
    """Put an owner on the allowlist (``db`` must have admin rights); returns its path."""
    path = f"allow/{kind}/{key_of(kind, value)}"
    db.set(path, True)
    return path


def revoke(db: _Db, kind: str, value: str) -> bool:
    """Take an owner off the allowlist; False if they weren't on it."""
    path = f"allow/{kind}/{key_of(kind, value)}"
    if db.get(path) is None:
        return False
    db.delete(path)
    return True


def entries(db: _Db) -> list[tuple[str, str]]:
    """Everything on the allowlist, as (kind, value) sorted by kind then value."""
    tree = db.get("allow")
    tree = tree if isinstance(tree, dict) else {}
    out = []
    for kind in KINDS:
        keys = tree.get(kind)
        for key in sorted(keys) if isinstance(keys, dict) else []:
            out.append((kind, key if kind == "uid" else key.replace(",", ".")))
    return out
