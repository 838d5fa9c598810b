"""`emdash-fb web` and the files it serves, over real HTTP; firebase.json's hosting section.

The page is static: the server hands out exactly its four files and the
project's config at Firebase Hosting's reserved URL, with headers that keep it
a plain page (CSP, nosniff, no referrer). Nothing else in the folder or the
repository is reachable. Deployed with `firebase deploy --only hosting`, the
same files get the same headers.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from emdash_fb.firebase.target import Target
from emdash_fb.webview import CSP, FILES, INIT_JSON, WebServer, base_url, web_dir, web_link

ROOT = Path(__file__).resolve().parents[2]
EXE = [sys.executable, "-m", "emdash_fb.cli.main"]
EMULATED = Target(
    "demo-x", "fake-api-key", "http://127.0.0.1:9000", "127.0.0.1:9000", "127.0.0.1:9099"
)
REAL = Target("proj", "AIza-key", "https://proj-default-rtdb.firebaseio.com")


@pytest.fixture
def served() -> str:
    server = WebServer(EMULATED, web_dir({}))
    url = server.start()
    yield url
    server.stop()


def test_the_page_and_its_config(served: str) -> None:
    for name, kind in FILES.items():
        r = requests.get(served + name, timeout=5)
        assert r.status_code == 200 and r.headers["Content-Type"].startswith(kind)
        assert r.headers["Content-Security-Policy"] == CSP
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "no-referrer"
    index = requests.get(served, timeout=5)
    assert index.text == (ROOT / "web" / "index.html").read_text()
    config = requests.get(served.rstrip("/") + INIT_JSON, timeout=5).json()
    assert config == {
        "projectId": "demo-x",
        "apiKey": "fake-api-key",
        "databaseURL": "http://127.0.0.1:9000",
        "databaseEmulatorHost": "127.0.0.1:9000",
        "namespace": "demo-x-default-rtdb",
        "authEmulatorHost": "127.0.0.1:9099",
    }


@pytest.mark.parametrize(
    "path",
    ["../pyproject.toml", "%2e%2e/pyproject.toml", "web/app.js", ".gitignore", "app.js/", "x.html"],
)
def test_nothing_else_is_served(served: str, path: str) -> None:
    r = requests.get(served + path, timeout=5)
    assert r.status_code == 404
    assert "pyproject" not in r.text and "emdash" not in r.text


def test_links_carry_the_code_in_the_fragment() -> None:
    assert web_link(EMULATED, "ABCDEFGHJK", {}) == "http://127.0.0.1:8765/#code=ABCDEFGHJK"
    assert web_link(REAL, "ABCDEFGHJK", {}) == "https://proj.web.app/#code=ABCDEFGHJK"
    assert base_url(REAL, {"EMDASH_FB_WEB_URL": "https://team.example/view"}) == (
        "https://team.example/view/"
    )


def test_hosting_serves_the_same_files_with_the_same_headers() -> None:
    config = json.loads((ROOT / "firebase.json").read_text())
    hosting = config["hosting"]
    assert (ROOT / hosting["public"]).resolve() == web_dir({}).resolve()
    headers = {h["key"]: h["value"] for h in hosting["headers"][0]["headers"]}
    assert hosting["headers"][0]["source"] == "**"
    assert headers["Content-Security-Policy"] == CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert config["database"]["rules"] == "rules/database.rules.json"  # deployed together
    page = (ROOT / "web" / "index.html").read_text()
    assert CSP.replace("; frame-ancestors 'none'", "") in page  # the page says it too


def run_web(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EXE, "web", *args], env=env, capture_output=True, text=True, timeout=30)


def clean_env(tmp_path: Path) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMDASH_FB_", "FIREBASE_"))}
    return {**env, "XDG_CONFIG_HOME": str(tmp_path)}


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    none = run_web(env)
    assert none.returncode == 2 and "no Firebase project configured" in none.stderr
    emulated = {
        **env,
        "FIREBASE_DATABASE_EMULATOR_HOST": "127.0.0.1:9",
        "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9",
    }
    missing = run_web({**emulated, "EMDASH_FB_WEB_DIR": str(tmp_path)})
    assert missing.returncode == 2 and "the web viewer's files are not in" in missing.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = run_web(emulated, "--port", str(taken.getsockname()[1]))
    assert busy.returncode == 2 and "could not listen on 127.0.0.1:" in busy.stderr
    for proc in (none, missing, busy):
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
