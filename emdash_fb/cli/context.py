"""Building the per-invocation objects (target, identity, database, sessions) for a profile."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ..firebase.target import Target, resolve_target
from ..session.errors import NoSession

if TYPE_CHECKING:  # the clients pull in pyrebase4; import them when first used
    from ..firebase.client import Rtdb
    from ..firebase.credentials import IdentityStore
    from ..firebase.identity import Auth
    from ..session.ops import SessionClient

SESSION_KEY = "session"


@dataclass
class AppContext:
    profile: str = "default"
    session_override: str | None = None
    env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False)

    @cached_property
    def target(self) -> Target:
        return resolve_target(self.env)

    @cached_property
    def store(self) -> IdentityStore:
        from ..firebase.credentials import IdentityStore

        return IdentityStore(self.target, self.profile, self.env)

    @cached_property
    def auth(self) -> Auth:
        from ..firebase.identity import Auth

        return Auth(self.target, self.store)

    @cached_property
    def db(self) -> Rtdb:
        from ..firebase.client import Rtdb

        return Rtdb(self.target, self.auth)

    @cached_property
    def sessions(self) -> SessionClient:
        from ..session.ops import SessionClient

        return SessionClient(self.db, self.auth)

    def current_session(self) -> str:
        sid = self.session_override or self.store.get_state(SESSION_KEY)
        if not sid:
            raise NoSession(
                "no current session: run `emdash-fb share` or `emdash-fb join CODE` first"
            )
        return str(sid)

    def remember_session(self, sid: str | None) -> None:
        self.store.set_state(SESSION_KEY, sid)
