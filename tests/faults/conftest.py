"""Fault tests: the session fixtures (real rules, several identities)."""

from __future__ import annotations

from tests.session.conftest import make_user, user_env  # noqa: F401  (shared fixtures)
