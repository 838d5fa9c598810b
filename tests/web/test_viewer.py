"""The web viewer in a real headless Chromium, against the real emulator, rules and runner.

A REPL owner (a real pseudo-terminal) shares; the page, served by a real
``emdash-fb web`` process, joins by code and follows the session: history,
a reply streaming in, a queued message's position, an approval asked and
answered, members online. A viewer's send is refused with a clear line; an
editor's (from a phone-sized page) reaches the terminal. Hostile text (HTML,
script, bidi controls) is shown as text. Screenshots at two widths are saved
under ``test-artifacts/web/``; neither page logs a console error.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.runner.agents import load_agent
from tests.cli.test_repl import EXE, open_chat, term_env, terminals  # noqa: F401 (fixtures)
from tests.cli.test_repl_states import share, wait_toolbar
from tests.support.browser import Watched, browser, open_page, screenshot  # noqa: F401
from tests.support.faultproxy import FaultProxy
from tests.support.runner import BackgroundRunner
from tests.support.terminal import Terminal

HOSTILE = (
    '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"><b>bold</b> \u202eevil'
)


@contextlib.contextmanager
def serving(env: dict[str, str]) -> Iterator[str]:
    """A real `emdash-fb web` process for ``env``'s project; yields the page's address."""
    proc = subprocess.Popen(
        [*EXE, "web", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for _ in range(5):
            found = re.search(r"open (http://\S+/)", proc.stdout.readline())
            if found:
                yield found.group(1)
                return
        pytest.fail(
            f"emdash-fb web printed no address: {proc.stderr.read() if proc.stderr else ''}"
        )
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0  # Ctrl-C and SIGTERM stop it cleanly


@pytest.fixture
def web_url(term_env: dict[str, str]) -> Iterator[str]:  # noqa: F811
    with serving(term_env) as url:
        yield url


def wait_text(w: Watched, selector: str, needle: str, timeout: float = 20.0) -> str:
    """The text of ``selector`` once it contains ``needle``."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = w.page.inner_text(selector)
        if needle in text:
            return text
        time.sleep(0.1)
    raise AssertionError(f"{needle!r} not in {selector} after {timeout}s:\n{text}")


def join(w: Watched, name: str) -> None:
    w.page.fill("#name", name)
    w.page.click("#join-button")
    w.page.wait_for_selector("#session", state="visible", timeout=15000)
    wait_text(w, "#connection", "live")


def test_a_browser_follows_and_joins_in(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
    web_url: str,
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    agent = load_agent("echo", {"rate": "12"}, env={})
    with BackgroundRunner(rules_emu, agent, workdir=tmp_path):
        env = {**term_env, "EMDASH_FB_WEB_URL": web_url}  # where `emdash-fb web` serves it
        alice = open_chat(env, terminals, "alice", "--share", "--name", "alice")
        code = share(alice)
        alice.wait_for(f"{web_url}#code={code.replace('-', '')}")  # /share prints the link
        alice.line("what happened before you came")
        alice.wait_for("I have seen 0 earlier message", timeout=30)

        # a viewer, by the link /share printed (the code in the fragment)
        vera = open_page(browser, f"{web_url}#code={code}", width=1280, height=800)
        assert vera.page.input_value("#code") == code
        vera.page.fill("#name", "ALlCE")  # folds to alice's key: taken, said, nothing written
        vera.page.click("#join-button")
        wait_text(vera, "#join-error", 'the name "ALlCE" (or one that looks like it) is taken')
        join(vera, "Vera")
        assert "#code" not in vera.page.url  # the code left the address bar
        wait_text(vera, "#transcript", "what happened before you came")  # history
        wait_text(vera, "#transcript", "alice asked: what happened before you came")
        wait_text(vera, "#role", "you: Vera (viewer)")
        wait_text(vera, "#members", "Vera")
        assert "alice" in vera.page.inner_text("#members")
        wait_toolbar(alice, "2 online")

        # a reply streams in live, and a message behind it has its place in the queue
        long = " ".join(f"word{i}" for i in range(60))
        alice.line(f"please echo {long}")
        alice.line("and then this one")
        reply = '#transcript .assistant:has-text("alice asked: please echo")'
        streaming = wait_text(vera, reply, "word5 ")
        assert "writing…" in streaming and "word59" not in streaming  # part of it, live
        queue = wait_text(vera, "#queue", "#2 waiting")  # behind the running one, as /queue says
        assert "and then this one" in queue
        wait_text(vera, "#transcript", "alice asked: please echo " + long, timeout=30)
        wait_text(vera, "#transcript", "alice asked: and then this one", timeout=30)
        wait_text(vera, "#queue-empty", "nothing waiting")

        # a viewer's send is refused, with a line that says why
        vera.page.fill("#message", "hello from the web")
        vera.page.click("#send-button")
        refused = wait_text(vera, "#send-status", "refused")
        assert "viewer" in refused and "only editors can send" in refused
        assert vera.page.input_value("#message") == "hello from the web"  # nothing lost

        # hostile text is text: no element made, no script run, the bidi control shown
        alice.line(HOSTILE)
        shown = wait_text(vera, "#transcript", "<script>window.pwned=1</script>", timeout=30)
        assert '<img src=x onerror="window.pwned=2"><b>bold</b>' in shown
        assert vera.page.evaluate("window.pwned") is None
        assert vera.page.locator("#transcript script, #transcript img, #transcript b").count() == 0
        assert "U+202E" in shown

        # an approval: asked, seen waiting, answered by the owner, and who answered shown
        alice.line("run: echo approved-here")
        wait_text(vera, "#approvals", "waiting", timeout=30)
        assert "Bash" in vera.page.inner_text("#approvals")
        alice.wait_for("/approve", timeout=30)
        alice.line("/approve")
        wait_text(vera, "#approvals", "allowed by alice", timeout=30)
        wait_text(vera, "#transcript", "approved-here", timeout=30)

        # an editor, from a phone-sized page whose link asks for the invite's role
        eddie = open_page(browser, f"{web_url}#code={code}&role=editor", width=390, height=844)
        # by keyboard alone, with a name the client must normalize (NFKC) as the rules fold it
        eddie.page.keyboard.type("\uff25ddie  \u0415.")  # full-width E, two spaces, Cyrillic Е
        eddie.page.keyboard.press("Enter")
        eddie.page.wait_for_selector("#session", state="visible", timeout=15000)
        wait_text(eddie, "#role", "you: Eddie \u0415. (editor)")
        eddie.page.fill("#message", "hi from a phone")
        eddie.page.keyboard.press("Enter")
        wait_text(eddie, "#send-status", "sent")
        alice.wait_for("hi from a phone", timeout=30)
        wait_text(vera, "#transcript", "Eddie \u0415. asked: hi from a phone", timeout=30)
        wait_text(vera, "#members", "Eddie")

        # the owner lets editors answer: the phone allows a command; the viewer can't
        alice.line("/policy approvers editors")
        alice.wait_for("approvals: ")
        alice.line("run: echo from-the-phone")
        eddie.page.wait_for_selector("#approvals button.answer.allow", timeout=30000)
        wait_text(vera, "#approvals", "waiting")
        assert vera.page.locator("#approvals button").count() == 0
        eddie.page.click("#approvals button.answer.allow")
        wait_text(vera, "#approvals", "allowed by Eddie \u0415.", timeout=30)
        wait_text(vera, "#transcript", "I ran echo from-the-phone", timeout=30)
        assert eddie.page.locator("#approvals button").count() == 0

        assert "stopped answering" not in alice.text()  # every status was true
        screenshot(vera, "desktop-1280")
        screenshot(eddie, "phone-390")

        # removed by the owner: the page says so and stops asking (no refused requests)
        alice.line("/kick Vera")
        wait_text(vera, "#connection", "no longer a member", timeout=30)
        wait_text(vera, "#send-status", "the owner removed you")
        time.sleep(1.5)
        assert vera.errors == [] and eddie.errors == []


def test_a_bad_code_and_a_bad_name_are_one_clear_line(
    rules_emu: ThreadedEmulator,
    web_url: str,
    browser: Any,  # noqa: F811
) -> None:
    w = open_page(browser, web_url, width=800, height=600)
    w.page.fill("#code", "not a code")
    w.page.fill("#name", "Nina")
    w.page.click("#join-button")
    assert "not an invite code" in wait_text(w, "#join-error", "invite code")
    w.page.fill("#code", "ABCDE-FGHJK")
    w.page.click("#join-button")
    wait_text(w, "#join-error", "no session has invite code ABCDE-FGHJK")
    assert w.page.is_hidden("#session")
    assert w.errors == []


def test_the_page_says_when_it_is_cut_off_and_catches_up_after(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
    browser: Any,  # noqa: F811
) -> None:
    """The page reaches the database through a proxy that cuts every stream and refuses
    new connections for a while: the badge says so, and once the network is back the
    page shows what was said meanwhile, once."""
    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    code = share(alice)
    with (
        FaultProxy.in_front_of(rules_emu.database_host) as proxy,
        serving({**term_env, "FIREBASE_DATABASE_EMULATOR_HOST": proxy.address}) as url,
    ):
        page = open_page(browser, f"{url}#code={code}", width=1024, height=768)
        join(page, "Vera")
        alice.line("before the cut")
        wait_text(page, "#transcript", "before the cut")
        proxy.refuse(True)
        proxy.reset_all()
        wait_text(page, "#connection", "reconnecting", timeout=15)
        alice.line("said while the page was cut off")
        alice.wait_for("said while the page was cut off")
        time.sleep(2)
        assert "said while the page was cut off" not in page.page.inner_text("#transcript")
        proxy.refuse(False)
        wait_text(page, "#connection", "live", timeout=30)
        shown = wait_text(page, "#transcript", "said while the page was cut off", timeout=30)
        assert shown.count("said while the page was cut off") == 1
        assert shown.count("before the cut") == 1
        # a reload comes back to the session, same identity, without the code
        page.page.reload()
        page.page.wait_for_selector("body[data-ready]", state="attached")
        wait_text(page, "#role", "you: Vera (viewer)")
        wait_text(page, "#transcript", "said while the page was cut off")
        assert page.page.is_hidden("#join")
        # a token the database refuses (expired while the laptop slept, say) is renewed
        # with the refresh token: the same identity, the same membership, live again
        uid = page.page.evaluate("JSON.parse(localStorage['emdash-fb-web']).uid")
        page.page.evaluate(
            "s = JSON.parse(localStorage['emdash-fb-web']); s.idToken = 'x.y.z';"
            "s.expiresAt = Date.now() + 3600e3; localStorage['emdash-fb-web'] = JSON.stringify(s)"
        )
        page.page.reload()
        page.page.wait_for_selector("body[data-ready]", state="attached")
        wait_text(page, "#role", "you: Vera (viewer)")
        wait_text(page, "#connection", "live")
        alice.line("after the renewal")
        wait_text(page, "#transcript", "after the renewal")
        assert page.page.evaluate("JSON.parse(localStorage['emdash-fb-web']).uid") == uid
        assert page.page.evaluate("JSON.parse(localStorage['emdash-fb-web']).idToken") != "x.y.z"
