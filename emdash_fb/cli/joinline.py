"""How another person joins: a shell line that works pasted anywhere, or a browser link.

Against an emulator the other terminal needs the two emulator variables (and
the project, when it isn't the default) and this machine's `emdash-fb` by its
absolute path; against a real project it needs nothing but the code (their
own config names the project). The line is printed as plain text, never
through rich, so a terminal's width can't break it into pieces.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from ..firebase.target import (
    DEFAULT_EMULATOR_PROJECT,
    ENV_AUTH_EMULATOR,
    ENV_DATABASE_EMULATOR,
    ENV_PROJECT_ID,
    Target,
)
from ..session import codes
from ..webview import ENV_WEB_URL, web_link


def executable() -> list[str]:
    """This `emdash-fb`, by absolute path (or this Python with ``-m``)."""
    # absolute, but symlinks kept: a venv's python is a link whose target lacks the venv
    found = shutil.which("emdash-fb")
    if found:
        return [os.path.abspath(found)]
    argv0 = Path(sys.argv[0])
    if argv0.name == "emdash-fb" and argv0.exists():
        return [os.path.abspath(argv0)]
    return [os.path.abspath(sys.executable), "-m", "emdash_fb.cli.main"]


def join_command(
    target: Target, code: str, *, profile: str | None = None, name: str | None = None
) -> str:
    """What a second terminal runs to join ``code`` (a shell line, every part quoted)."""
    words: list[str] = []
    if target.is_emulator:
        env = {ENV_DATABASE_EMULATOR: target.database_emulator or ""}
        if target.auth_emulator:
            env[ENV_AUTH_EMULATOR] = target.auth_emulator
        if target.project_id != DEFAULT_EMULATOR_PROJECT:
            env[ENV_PROJECT_ID] = target.project_id
        words += [f"{k}={shlex.quote(v)}" for k, v in env.items()]
        words += [shlex.quote(w) for w in executable()]
    else:
        words.append("emdash-fb")
    if profile:
        words += ["--profile", shlex.quote(profile)]
    words += ["chat"]
    if name:
        words += ["--name", shlex.quote(name)]
    words += ["--join", shlex.quote(code)]
    return " ".join(words)


def browser_link(target: Target, code: str) -> str:
    """The web viewer's link for ``code`` (shown or stored form), code in the fragment,
    and, unless ``$EMDASH_FB_WEB_URL`` says where it is served, what serves it."""
    link = web_link(target, codes.normalize(code) or code)
    if os.environ.get(ENV_WEB_URL):
        return link
    if target.is_emulator:
        return f"{link}  (with `emdash-fb web` running)"
    return f"{link}  (once deployed: firebase deploy --only hosting)"
