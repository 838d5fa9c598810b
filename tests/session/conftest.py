"""Session fixtures: an emulator running the real rules file, and several identities."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.config import EmulatorConfig
from emdash_fb.emulator.server import ThreadedEmulator

RULES = Path(__file__).resolve().parents[2] / "rules" / "database.rules.json"


def rules_emulator() -> ThreadedEmulator:
    cfg = EmulatorConfig(rules_path=RULES)
    cfg.ports = {"database": 0, "auth": 0}
    return ThreadedEmulator(cfg, keep_alive_seconds=1.0)


@pytest.fixture(scope="session")
def rules_emu() -> Iterator[ThreadedEmulator]:
    """The product's database: real rules, default namespace (pyrebase4 can't send ns)."""
    with rules_emulator() as emu:
        yield emu


@pytest.fixture
def user_env(rules_emu: ThreadedEmulator, tmp_path: Path) -> dict[str, str]:
    return {**rules_emu.env(), "XDG_CONFIG_HOME": str(tmp_path / "config")}


@pytest.fixture
def make_user(user_env: dict[str, str]) -> Callable[[str], AppContext]:
    """``make_user("alice")``: a signed-in identity with its own profile."""

    def make(name: str) -> AppContext:
        app = AppContext(profile=name, env=user_env)
        app.auth.sign_in_anonymous(name)
        return app

    return make
