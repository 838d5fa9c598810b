"""Session fixtures: an emulator running the real rules file, and several identities."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator


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
