"""``emdash-fb admin``: who may own sessions on this project (the allowlist; admin credential).

Signing in to a Firebase project is open to anyone (the web API key is
public, anonymous sign-in is on), so signing in must never be enough to make
an agent work. Only owners on the allowlist may create sessions (the rules
check it) and runners serve only their sessions. These commands write the
allowlist with the project's admin credential: a service account
(``GOOGLE_APPLICATION_CREDENTIALS``) on a real project, the emulator's own
owner credential on an emulator.
"""

from __future__ import annotations

import typer

from .commands import JsonOpt, ctx_of, emit

admin_app = typer.Typer(
    help="Who may own sessions (and so make a runner work): the project's allowlist.",
    no_args_is_help=True,
)

OwnersArg = typer.Argument(
    ...,
    metavar="OWNER...",
    help="me (this profile's uid), uid:UID, email:ADDRESS or domain:DOMAIN "
    "(a bare address or domain works too).",
)


def _database(ctx: typer.Context):  # noqa: ANN202 - firebase-admin imported lazily
    from ..firebase.admin import AdminDatabase

    target = ctx_of(ctx).target
    return AdminDatabase(
        project_id=target.project_id,
        database_url=None if target.is_emulator else target.database_url,
    )


def _parse(ctx: typer.Context, owners: list[str]) -> list[tuple[str, str]]:
    from ..session.allowlist import parse_entry

    out = []
    for text in owners:
        if text.strip().lower() == "me":
            out.append(("uid", ctx_of(ctx).auth.current().uid))
            continue
        try:
            out.append(parse_entry(text))
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    return out


@admin_app.command("allow")
def allow(ctx: typer.Context, owners: list[str] = OwnersArg, as_json: bool = JsonOpt) -> None:
    """Let these owners create sessions and be served by runners."""
    from ..session import allowlist

    entries = _parse(ctx, owners)
    db = _database(ctx)
    try:
        for kind, value in entries:
            allowlist.allow(db, kind, value)
    finally:
        db.close()
    emit(
        {"allowed": [{"kind": k, "value": v} for k, v in entries]},
        as_json,
        "\n".join(f"allowed {k}:{v}" for k, v in entries),
    )


@admin_app.command("revoke")
def revoke(ctx: typer.Context, owners: list[str] = OwnersArg, as_json: bool = JsonOpt) -> None:
    """Take owners off the allowlist: no new sessions, and runners stop serving theirs."""
    from ..session import allowlist

    entries = _parse(ctx, owners)
    db = _database(ctx)
    try:
        removed = [(k, v, allowlist.revoke(db, k, v)) for k, v in entries]
    finally:
        db.close()
    emit(
        {"revoked": [{"kind": k, "value": v, "was_allowed": was} for k, v, was in removed]},
        as_json,
        "\n".join(
            f"revoked {k}:{v}" if was else f"{k}:{v} was not on the allowlist"
            for k, v, was in removed
        ),
    )


@admin_app.command("list")
def list_(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Show the allowlist."""
    from ..session import allowlist

    db = _database(ctx)
    try:
        entries = allowlist.entries(db)
    finally:
        db.close()
    emit(
        [{"kind": k, "value": v} for k, v in entries],
        as_json,
        "\n".join(f"{k}:{v}" for k, v in entries)
        or "(nobody is allowed yet: emdash-fb admin allow OWNER)",
    )
