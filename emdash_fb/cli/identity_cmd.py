"""``login``, ``logout``, ``whoami``, ``token``: who this profile is, and never losing it.

An anonymous account can't be signed into again once its credentials are
gone, and it may own sessions. So no command replaces a profile's identity
without being asked to: ``login --name`` renames (same uid, the new name in
every session you're in), ``login --link-email`` gives the anonymous account
an email and password (same uid, usable from any machine), signing in as a
different account needs ``--switch`` and says what is left behind, and
``logout`` of an unlinked anonymous account needs ``--force``.
"""

from __future__ import annotations

from typing import Any

import typer

from ..firebase.credentials import Identity
from ..session.text import one_line
from .commands import JsonOpt, ctx_of, emit
from .context import AppContext


def _describe(ident: Identity) -> str:
    how = f"email {ident.email}" if ident.email else ident.provider
    return f"{one_line(ident.name)} ({how}, uid {ident.uid})"


def _summary(app: AppContext, ident: Identity, **extra: Any) -> dict[str, Any]:
    return {
        "uid": ident.uid,
        "name": ident.name,
        "provider": ident.provider,
        "email": ident.email,
        "profile": app.profile,
        **extra,
    }


def adopt_name(app: AppContext, name: str) -> list[str]:
    """Go by ``name``: the profile (signed in anonymously if nothing is saved yet) and the
    sessions it is in. Returns one line per session where the name couldn't be used."""
    saved = app.auth.saved()
    if saved is None:
        app.auth.sign_in_anonymous(name)
        return []
    from ..session.names import normalize

    wanted = normalize(name)
    if saved.name == wanted:
        return []
    app.auth.rename(wanted)
    notes = []
    for done in app.sessions.rename_everywhere(wanted):
        if done.outcome == "taken":
            notes.append(f"kept your old name in session {done.session}: {wanted!r} is taken there")
    return notes


def login(
    ctx: typer.Context,
    email: str | None = typer.Option(None, "--email", help="Sign in with email/password."),
    password: str | None = typer.Option(None, "--password", help="Password (prompted if omitted)."),
    create: bool = typer.Option(False, "--create", help="Create the email account."),
    name: str | None = typer.Option(
        None, "--name", help="Your display name; when signed in already, a rename (same uid)."
    ),
    link_email: str | None = typer.Option(
        None,
        "--link-email",
        metavar="EMAIL",
        help="Keep this anonymous account (same uid) and add email/password sign-in to it.",
    ),
    switch: bool = typer.Option(
        False, "--switch", help="Sign in as another account, leaving this one behind."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Sign in (anonymously unless --email), or rename, link or switch this profile's account."""
    app = ctx_of(ctx)
    saved = app.auth.saved()
    if link_email:
        if saved is None:
            raise typer.BadParameter(
                "nothing to link yet: `login` first", param_hint="--link-email"
            )
        if password is None:
            password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
        ident = app.auth.link_email(link_email, password)
        if name:
            adopt_name(app, name)
            ident = app.auth.current()
        emit(
            _summary(app, ident, linked=True),
            as_json,
            f"linked {one_line(link_email)} to {_describe(ident)}: on another machine, "
            f"`emdash-fb login --email {one_line(link_email)}` signs into the same account",
        )
        return
    if email:
        same = saved is not None and saved.email is not None and saved.email == email.lower()
        if saved is not None and not same and not switch:
            raise typer.BadParameter(
                f"this profile is {_describe(saved)}; signing in as {one_line(email)} would "
                f"leave it behind{' for good (an anonymous account)' if saved.provider == 'anonymous' else ''}: "
                "use --link-email to keep it and add email sign-in, or --switch",
                param_hint="--email",
            )
        if password is None:
            password = typer.prompt("Password", hide_input=True)
        ident = app.auth.sign_in_email(email, password, create=create, name=name)
        left = (
            f"; {_describe(saved)} is no longer used by this profile" if saved and not same else ""
        )
        emit(_summary(app, ident), as_json, f"signed in as {_describe(ident)}{left}")
        return
    if saved is not None and not switch:
        notes = adopt_name(app, name) if name else []
        ident = app.auth.current()
        verb = "renamed: now" if name and saved.name != ident.name else "already signed in as"
        for note in notes:
            typer.echo(note, err=True)
        emit(_summary(app, ident), as_json, f"{verb} {_describe(ident)} on profile {app.profile}")
        return
    ident = app.auth.sign_in_anonymous(name)
    left = (
        f"; {_describe(saved)} is left behind (anonymous: it can't be signed into again)"
        if saved is not None
        else ""
    )
    emit(
        _summary(app, ident),
        as_json,
        f"signed in as {_describe(ident)} on profile {app.profile}{left}",
    )


def logout(
    ctx: typer.Context,
    force: bool = typer.Option(
        False, "--force", help="Sign out of an anonymous account even though it can't come back."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Forget this profile's sign-in (an anonymous account is gone for good: see --force)."""
    app = ctx_of(ctx)
    saved = app.auth.saved()
    if saved is None:
        emit({"signed_out": False, "profile": app.profile}, as_json, "not signed in")
        return
    if saved.provider == "anonymous" and not force:
        raise typer.BadParameter(
            f"{_describe(saved)} is anonymous: once forgotten nobody can sign into it again "
            "(its sessions stay, unmanaged): `login --link-email EMAIL` first, or --force",
            param_hint="--force",
        )
    app.auth.sign_out()
    emit(
        {"signed_out": True, **_summary(app, saved)},
        as_json,
        f"signed out of {_describe(saved)} on profile {app.profile}",
    )


def whoami(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Show who this profile is signed in as (signs in anonymously the first time)."""
    app = ctx_of(ctx)
    ident = app.auth.current()
    session = app.store.get_state("session")
    emit(
        _summary(app, ident, session=session, target=app.target.describe()),
        as_json,
        f"{_describe(ident)}\nprofile {app.profile}, session {session or '-'}\n"
        f"{app.target.describe()}",
    )


def token(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Print a fresh ID token (for poking at the database with curl)."""
    app = ctx_of(ctx)
    tok = app.auth.fresh_token()
    emit({"token": tok}, as_json, tok)
