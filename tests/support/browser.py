"""A real headless Chromium for the web viewer's tests, driven by Playwright (Firefox: firefox.py).

Debian's ``chromium`` (``/usr/bin/chromium``; ``make browser`` installs it) is
driven by Playwright's Python package, which talks to it over the DevTools
protocol (no browser download, and no urllib3 pin, unlike selenium beside
pyrebase4). If the browser isn't there the tests fail saying so; they never
skip. Every page records its console errors and uncaught exceptions, so a
test can assert there were none.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ENV_CHROMIUM = "EMDASH_FB_CHROMIUM"
# Without the background-networking flags Chromium keeps dialling Google's hosts,
# which a closed network refuses; no sandbox because CI runs as root.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"


def chromium_path() -> str:
    found = (
        os.environ.get(ENV_CHROMIUM) or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not found:
        pytest.fail(
            "Chromium is not installed, so the web viewer can't be tested: run `make browser` "
            f"(apt-get install chromium) or set {ENV_CHROMIUM} to a Chromium binary",
            pytrace=False,
        )
    return found


@dataclass
class Watched:
    """A page and what went wrong on it (console errors, uncaught exceptions)."""

    page: Any
    errors: list[str] = field(default_factory=list)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run `make setup`", pytrace=False)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=path, args=FLAGS, headless=True)
        yield launched
        launched.close()


def open_page(browser: Any, url: str, *, width: int, height: int) -> Watched:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    watched = Watched(page)
    page.on(
        "console",
        lambda msg: watched.errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: watched.errors.append(f"exception: {exc}"))
    page.goto(url)
    page.wait_for_selector("body[data-ready]", state="attached", timeout=15000)
    return watched


def screenshot(watched: Watched, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    watched.page.screenshot(path=str(path), full_page=True)
    return path
