"""Running the real `emdash-fb` command in tests, and the set-up step a script needs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping

EXE = [sys.executable, "-m", "emdash_fb.cli.main"]


def run_cli(env: Mapping[str, str], profile: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*EXE, "--profile", profile, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def make_owner(env: Mapping[str, str], profile: str, name: str) -> str:
    """Sign ``profile`` in as ``name`` and allow it to own sessions: the README's one step for
    scripts that start their own emulator (`emdash-fb admin allow me`). Returns the uid."""
    me = json.loads(run_cli(env, profile, "login", "--name", name, "--json").stdout)
    run_cli(env, profile, "admin", "allow", "me")
    return str(me["uid"])
