"""Shared fixtures: real emulators on free ports, reached only over HTTP."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from emdash_fb.emulator.config import EmulatorConfig
from emdash_fb.emulator.server import ThreadedEmulator
from tests.support.external import ExternalEmulator, wanted
from tests.support.rtdb import RawRtdb

RULES = Path(__file__).resolve().parents[1] / "rules" / "database.rules.json"

_ns_counter = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--emulator",
        choices=("bundled", "external"),
        default=None,
        help="bundled (default): start our emulator; external: use the one at "
        "FIREBASE_DATABASE_EMULATOR_HOST / FIREBASE_AUTH_EMULATOR_HOST (see "
        "tests/support/external.py)",
    )


@pytest.fixture(scope="session")
def emulator(request: pytest.FixtureRequest) -> Iterator[ThreadedEmulator]:
    """One allow-all emulator (no rules file, like the official default) for the session."""
    if wanted(request.config):
        yield ExternalEmulator()  # type: ignore[misc]  # the same surface, over HTTP
        return
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
def rules_emu(request: pytest.FixtureRequest) -> Iterator[ThreadedEmulator]:
    """The product's database: real rules, default namespace (pyrebase4 can't send ns)."""
    if wanted(request.config):
        external = ExternalEmulator()
        external.load_rules(RULES.read_text())
        yield external  # type: ignore[misc]  # the same surface, over HTTP
        return
    with rules_emulator() as emu:
        yield emu
