"""The web viewer in a real headless Firefox (WebDriver BiDi), at phone and desktop widths.

The same page, the same emulator, rules, runner and REPL owner as the Chromium
tests: it joins by the printed link, shows history and a reply streaming in,
shows hostile text as text, lets an editor send, and logs no errors.
"""

from __future__ import annotations

import json
from pathlib import Path

from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.runner.agents import load_agent
from tests.cli.test_repl import open_chat, term_env, terminals  # noqa: F401 (fixtures)
from tests.cli.test_repl_states import share
from tests.support.browser import ARTIFACTS
from tests.support.firefox import Firefox, firefox  # noqa: F401 (fixture)
from tests.support.runner import BackgroundRunner
from tests.support.terminal import Terminal
from tests.web.test_viewer import HOSTILE, serving


def text_of(selector: str) -> str:
    return f"document.querySelector({json.dumps(selector)}).innerText"


def has(selector: str, needle: str) -> str:
    return f"{text_of(selector)}.includes({json.dumps(needle)})"


def test_firefox_follows_and_sends(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
    firefox: Firefox,  # noqa: F811
    tmp_path: Path,
) -> None:
    agent = load_agent("echo", {"rate": "12"}, env={})
    with serving(term_env) as url, BackgroundRunner(rules_emu, agent, workdir=tmp_path):
        alice = open_chat(
            {**term_env, "EMDASH_FB_WEB_URL": url}, terminals, "alice", "--share", "--name", "alice"
        )
        code = share(alice)
        alice.line("hello before the fox")
        alice.wait_for("I have seen 0 earlier message", timeout=30)
        for width, height in ((390, 844), (1280, 800)):
            firefox.viewport(width, height)
            # the first visit joins by the link; the second, plain, comes back by itself
            firefox.goto(f"{url}#code={code}&role=editor" if width == 390 else url)
            firefox.wait_for("document.body.dataset.ready === 'true'")
            if width == 390:
                firefox.js("document.getElementById('name').value = 'Fox'")
                firefox.js("document.getElementById('join').requestSubmit()")
            firefox.wait_for(has("#role", "you: Fox (editor)"))
            firefox.wait_for(has("#connection", "live"))
            firefox.wait_for(has("#transcript", "alice asked: hello before the fox"))
            firefox.screenshot(ARTIFACTS / f"firefox-{width}.png")
        alice.line(f"stream {' '.join(f'w{i}' for i in range(40))}")
        firefox.wait_for(
            "[...document.querySelectorAll('#transcript .assistant')].some("
            "e => e.innerText.includes('writing…') && e.innerText.includes('stream w0'))"
        )
        alice.line(HOSTILE)
        firefox.wait_for(has("#transcript", "<script>window.pwned=1</script>"), timeout=30)
        assert firefox.js("window.pwned === undefined") is True
        assert (
            firefox.js("document.querySelectorAll('#transcript script, #transcript img').length")
            == 0
        )
        firefox.js("document.getElementById('message').value = 'hi from firefox'")
        firefox.js("document.getElementById('send').requestSubmit()")
        firefox.wait_for(has("#send-status", "sent"))
        alice.wait_for("hi from firefox", timeout=30)
        assert firefox.errors == []
