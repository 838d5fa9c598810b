"""The ``emdash-fb`` command: the typer app and its sub-command groups."""

from __future__ import annotations

import typer

from .emulators import emulators_app

app = typer.Typer(
    name="emdash-fb",
    help="Share one AI coding-agent conversation live, through Firebase Realtime Database.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(emulators_app, name="emulators")


if __name__ == "__main__":
    app()
