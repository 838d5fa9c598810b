"""The ``emdash-fb`` command: global options, sub-commands, and one-line errors."""

from __future__ import annotations

import sys

import typer

from ..firebase.errors import FirebaseError
from ..session.errors import SessionError
from ..session.text import one_line
from . import commands
from .admin_cmd import admin_app
from .chat_cmd import chat, demo
from .context import AppContext
from .emulators import emulators_app
from .runner_cmd import runner
from .watch_cmd import watch

app = typer.Typer(
    name="emdash-fb",
    help="Share one AI coding-agent conversation live, through Firebase Realtime Database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
    commands.login,
    commands.whoami,
    commands.token,
    commands.share,
    commands.join,
    commands.who,
    commands.send,
    commands.history,
    commands.leave,
):
    app.command(fn.__name__)(fn)
app.command("runner")(runner)
app.command("watch")(watch)
app.command("chat")(chat)
app.command("demo")(demo)
app.add_typer(commands.config_app, name="config")
app.add_typer(emulators_app, name="emulators")
app.add_typer(admin_app, name="admin")


def run() -> None:
    """Console entry point: user mistakes become one line on stderr and a non-zero exit."""
    try:
        app()
    except (SessionError, FirebaseError) as exc:
        sys.stderr.write(f"error: {one_line(str(exc))}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    run()
