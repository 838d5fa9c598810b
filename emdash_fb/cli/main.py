"""The ``emdash-fb`` command: global options, sub-commands, and one-line errors."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer
import typer.main
from typer.core import TyperArgument, TyperOption

from ..firebase import errors as fb_errors
from ..firebase.errors import FirebaseError
from ..session import errors
from ..session.errors import SessionError
from ..session.names import BadName
from ..session.text import one_line
from . import approve_cmd, commands, identity_cmd
from .admin_cmd import admin_app
from .chat_cmd import chat, demo
from .context import AppContext
from .emulators import emulators_app
from .runner_cmd import runner
from .watch_cmd import watch
from .web_cmd import web

app = typer.Typer(
    name="emdash-fb",
    help="Share one AI coding-agent conversation live, through Firebase Realtime Database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def main(
    ctx: typer.Context,
    profile: str = typer.Option(
        "default", "--profile", "-p", envvar="EMDASH_FB_PROFILE", help="Identity profile to use."
    ),
    session: str | None = typer.Option(
        None, "--session", help="Session id (default: the profile's current session)."
    ),
) -> None:
    """Share one AI coding-agent conversation live, through Firebase Realtime Database."""
    ctx.obj = AppContext(profile=profile, session_override=session)


# Push ids start with "-"; let `cancel -P7V...` take one without needing `--`.
app.command("cancel", context_settings={"ignore_unknown_options": True})(commands.cancel)
for fn in (
    identity_cmd.login,
    identity_cmd.logout,
    identity_cmd.whoami,
    identity_cmd.token,
    commands.share,
    commands.join,
    commands.who,
    commands.sessions,
    commands.send,
    commands.history,
    commands.leave,
):
    app.command(fn.__name__)(fn)
app.command("approvals")(approve_cmd.approvals)
# request ids start with the message id, which may start with "-"
for fn in (approve_cmd.approve, approve_cmd.deny):
    app.command(fn.__name__, context_settings={"ignore_unknown_options": True})(fn)
app.command("runner")(runner)
app.command("watch")(watch)
app.command("web")(web)
app.command("chat")(chat)
app.command("demo")(demo)
app.add_typer(commands.config_app, name="config")
app.add_typer(emulators_app, name="emulators")
app.add_typer(admin_app, name="admin")


# typer has its own click inside (newer releases) or uses click's (older): either way
# a usage mistake is the class BadParameter derives from.
UsageError: type[Exception] = typer.BadParameter.__mro__[1]
Abort = typer.Abort

#: Stable ``error`` codes for ``--json`` mode (scripts branch on these, not on the text).
ERROR_CODES: tuple[tuple[type[Exception], str], ...] = (
    (errors.Kicked, "kicked"),
    (errors.NotMember, "not_member"),
    (errors.BadInvite, "bad_invite"),
    (errors.SessionClosed, "closed"),
    (errors.SessionFull, "full"),
    (errors.NameTaken, "name_taken"),
    (BadName, "bad_name"),
    (errors.TooManyWaiting, "too_many_waiting"),
    (errors.NotAllowed, "not_allowed"),
    (errors.BadMessage, "bad_message"),
    (errors.NoSession, "no_session"),
    (SessionError, "session"),
    (fb_errors.ConfigError, "not_configured"),
    (fb_errors.AuthError, "sign_in_failed"),
    (fb_errors.NetworkError, "unreachable"),
    (fb_errors.PermissionDenied, "permission_denied"),
    (fb_errors.RequestError, "refused"),
    (FirebaseError, "firebase"),
)


def error_code(exc: Exception) -> str:
    return next((code for kind, code in ERROR_CODES if isinstance(exc, kind)), "error")


def _fail(code: str, message: str, status: int, as_json: bool) -> NoReturn:
    """One line on stderr (a JSON object with ``--json``), then exit ``status``."""
    line = one_line(message)
    if as_json:
        sys.stderr.write(json.dumps({"error": code, "message": line}, ensure_ascii=False) + "\n")
    else:
        sys.stderr.write(f"error: {line}\n")
    sys.exit(status)


def _plain_metavars(command: Any) -> None:
    """``TEXT`` / ``SECONDS``-style placeholders in help, instead of ``{text}`` / ``<float>``."""
    for param in command.params:
        if param.metavar is not None:
            continue
        if isinstance(param, TyperArgument):
            param.metavar = param.name.upper()
            # typer writes a required argument as {NAME} and adds <str>: plain NAME
            if hasattr(param, "_usage_display_name"):
                param._usage_display_name = (lambda p: lambda: p.metavar)(param)
            if hasattr(param, "display_type_rich"):
                param.display_type_rich = lambda ctx: ""
        elif isinstance(param, TyperOption) and not param.is_flag and not param.count:
            param.metavar = param.opts[0].lstrip("-").upper().replace("-", "_")
    for sub in getattr(command, "commands", {}).values():
        _plain_metavars(sub)


def run() -> None:
    """Console entry point: user mistakes become one line on stderr and a non-zero exit.

    With ``--json`` that line is a JSON object ``{"error": CODE, "message": ...}``.
    Usage mistakes (a missing argument, an unknown option) are one line too, exit 2.
    """
    as_json = "--json" in sys.argv[1:]
    command = typer.main.get_command(app)
    _plain_metavars(command)
    try:
        status = command.main(prog_name="emdash-fb", standalone_mode=False)
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # `emdash-fb` alone: the help, on stdout
            sys.stdout.write(exc.format_message() + "\n")  # type: ignore[attr-defined]
            sys.exit(0)
        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "emdash-fb"
        _fail("usage", f"{exc.format_message()} (see {where} --help)", 2, as_json)  # type: ignore[attr-defined]
    except Abort:
        _fail("interrupted", "interrupted", 130, as_json)
    except (SessionError, FirebaseError) as exc:
        _fail(error_code(exc), str(exc), 1, as_json)
    except KeyboardInterrupt:
        _fail("interrupted", "interrupted", 130, as_json)
    sys.exit(status if isinstance(status, int) else 0)


if __name__ == "__main__":
    run()
