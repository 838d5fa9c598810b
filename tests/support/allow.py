"""Putting test owners on the allowlist, the way `emdash-fb admin allow` does (admin credential)."""

from __future__ import annotations

from collections.abc import Mapping

from emdash_fb.firebase.admin import AdminDatabase
from emdash_fb.session import allowlist


def allow_owner(project_id: str, env: Mapping[str, str], *uids: str) -> None:
    db = AdminDatabase(project_id=project_id, env=env)
    try:
        for uid in uids:
            allowlist.allow(db, "uid", uid)
    finally:
        db.close()
