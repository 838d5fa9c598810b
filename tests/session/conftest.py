"""Session fixtures: an emulator running the real rules file, and several identities."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from emdash_fb.cli.context import AppContext
from emdash_fb.emulator.server import ThreadedEmulator
from tests.support.allow import allow_owner


@pytest.fixture
def user_env(rules_emu: ThreadedEmulator, tmp_path: Path) -> dict[str, str]:
    return {**rules_emu.env(), "XDG_CONFIG_HOME": str(tmp_path / "config")}


@pytest.fixture
def make_user(user_env: dict[str, str], rules_emu: ThreadedEmulator) -> Callable[..., AppContext]:
    """``make_user("alice")``: a signed-in identity with its own profile, allowed to own
    sessions (``owner=False``: a stranger the project's admin never allowed)."""

    def make(name: str, *, owner: bool = True, profile: str | None = None) -> AppContext:
        app = AppContext(profile=profile or name, env=user_env)
        ident = app.auth.sign_in_anonymous(name)
        if owner:
            allow_owner(rules_emu.project_id, user_env, ident.uid)
        return app

    return make
