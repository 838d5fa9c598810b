"""Make docs/two-terminals.svg: a real run of two REPLs in one session, side by side.

Starts the bundled emulator (real rules) and the offline runner, drives two
``emdash-fb chat`` processes in pseudo-terminals, and exports both screens,
as rendered by a terminal emulator, to one SVG with rich.

    python docs/screenshot.py
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.columns import Columns  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.panel import Panel  # noqa: E402
from rich.text import Text  # noqa: E402

from emdash_fb.runner.agents import load_agent  # noqa: E402
from tests.conftest import rules_emulator  # noqa: E402
from tests.support.cli import make_owner  # noqa: E402
from tests.support.runner import BackgroundRunner  # noqa: E402
from tests.support.terminal import Terminal  # noqa: E402

EXE = [sys.executable, "-m", "emdash_fb.cli.main"]


def main() -> None:
    with rules_emulator() as emu, tempfile.TemporaryDirectory() as cfg:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
        env.update(emu.env(), XDG_CONFIG_HOME=cfg, TERM="xterm-256color")
        make_owner(env, "alice", "alice")
        with BackgroundRunner(emu, load_agent("echo", {"rate": "8"}), workdir=ROOT):
            alice = Terminal(
                [*EXE, "--profile", "alice", "chat", "--share", "--name", "alice"],
                env,
                cols=78,
                rows=24,
            )
            code = re.search(r"invite code: (\S+)", alice.wait_for("invite code:")).group(1)  # type: ignore[union-attr]
            alice.wait_for("1 online")
            bob = Terminal(
                [*EXE, "--profile", "bob", "chat", "--join", code, "--name", "bob"],
                env,
                cols=78,
                rows=24,
            )
            bob.wait_for("joined session")
            alice.line("what files are in this repo? please ls")
            time.sleep(1.0)
            bob.line("then summarise the README for me")
            bob.wait_for("queued #2")
            alice.wait_for("bob asked", timeout=60)
            bob.type("looks good, thanks")
            time.sleep(1.5)
            screens = [("alice", alice.text()), ("bob", bob.text())]
            for t in (alice, bob):
                t.close()
    console = Console(record=True, width=164, file=open(os.devnull, "w"))  # noqa: SIM115
    panels = [Panel(Text(screen), title=f"terminal: {who}", width=80) for who, screen in screens]
    console.print(Columns(panels))
    out = ROOT / "docs" / "two-terminals.svg"
    console.save_svg(str(out), title="emdash-fb: two terminals, one session")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
