"""Shared fixtures: real emulators on free ports, reached only over HTTP."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from emdash_fb.emulator.config import EmulatorConfig
from emdash_fb.emulator.server import ThreadedEmulator
from tests.support.rtdb import RawRtdb

RULES = Path(__file__).resolve().parents[1] / "rules" / "database.rules.json"

_ns_counter = itertools.count()


@pytest.fixture(scope="session")
def emulator() -> Iterator[ThreadedEmulator]:
    """One allow-all emulator (no rules file, like the official default) for the session."""
    with ThreadedEmulator(keep_alive_seconds=1.0) as emu:
        yield emu


@pytest.fixture
def ns_name(request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test, so tests never see each other's data or rules."""
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40]
    return f"t{next(_ns_counter)}-{os.getpid()}-{base}"


@pytest.fixture
def raw(emulator: ThreadedEmulator, ns_name: str) -> RawRtdb:
    return RawRtdb(f"http://{emulator.database_host}", ns_name)


def rules_emulator() -> ThreadedEmulator:
    """An emulator running the real rules file on free ports."""
    cfg = EmulatorConfig(rules_path=RULES)
    cfg.ports = {"database": 0, "auth": 0}
    return ThreadedEmulator(cfg, keep_alive_seconds=1.0)


@pytest.fixture(scope="session")
def rules_emu() -> Iterator[ThreadedEmulator]:
    """The product's database: real rules, default namespace (pyrebase4 can't send ns)."""
    with rules_emulator() as emu:
        yield emu
