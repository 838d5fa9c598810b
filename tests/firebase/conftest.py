"""Fixtures for the end-user Firebase layer: real emulators over HTTP, isolated config dirs.

pyrebase4 cannot send ``?ns=``, so the product always uses the emulator's
default namespace; tests keep apart by writing under a fresh path each
(``base``), and tests that change rules get an emulator of their own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.firebase.client import Rtdb
from emdash_fb.firebase.identity import Auth, IdentityStore
from emdash_fb.firebase.target import Target, resolve_target


@pytest.fixture(scope="session")
def fb_emulator() -> Iterator[ThreadedEmulator]:
    """An allow-all emulator (no rules file) with 1 s keep-alives, shared by these tests."""
    with ThreadedEmulator(keep_alive_seconds=1.0) as emu:
        yield emu


@pytest.fixture
def env(fb_emulator: ThreadedEmulator, tmp_path: Path) -> dict[str, str]:
    """The standard emulator variables plus a private config dir (os.environ is untouched)."""
    return {**fb_emulator.env(), "XDG_CONFIG_HOME": str(tmp_path / "config")}


@pytest.fixture
def target(env: dict[str, str]) -> Target:
    return resolve_target(env)


@pytest.fixture
def auth(target: Target, env: dict[str, str]) -> Auth:
    return Auth(target, IdentityStore(target, "default", env))


@pytest.fixture
def db(target: Target, auth: Auth) -> Rtdb:
    return Rtdb(target, auth)


@pytest.fixture
def base() -> str:
    """A path no other test writes under."""
    return f"t/{uuid.uuid4().hex[:12]}"
