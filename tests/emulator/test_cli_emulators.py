"""``emdash-fb emulators start`` as a user runs it: a real subprocess, real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

EXE = [sys.executable, "-m", "emdash_fb.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(
    folder: Path, rules: str | None = '{"rules": {".read": true, ".write": true}}'
) -> Path:
    cfg: dict = {
        "emulators": {
            "database": {"host": "127.0.0.1", "port": free_port()},
            "auth": {"host": "127.0.0.1", "port": free_port()},
            "ui": {"enabled": False},
        }
    }
    if rules is not None:
        (folder / "rules").mkdir(exist_ok=True)
        (folder / "rules" / "db.rules.json").write_text(rules)
        cfg["database"] = {"rules": "rules/db.rules.json"}
    path = folder / "firebase.json"
    path.write_text(json.dumps(cfg))
    return path


class Running:
    def __init__(self, *args: str, cwd: Path) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [*EXE, "emulators", "start", *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C to stop"):
                break
        else:
            raise AssertionError(f"emulator did not start: {self.proc.stderr.read()}")  # type: ignore[union-attr]
        self.ready_after = time.monotonic() - self.started
        self.env = dict(
            re.match(r"\s*export (\w+)=(\S+)", ln).groups()  # type: ignore[union-attr]
            for ln in self.lines
            if "export " in ln
        )

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        out, self.stderr = self.proc.communicate(timeout=15)
        return self.proc.returncode, out


def test_start_prints_exports_and_stops_on_sigterm(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    run = Running("--config", str(cfg), "--project", "demo-x", cwd=tmp_path)
    try:
        db_host = run.env["FIREBASE_DATABASE_EMULATOR_HOST"]
        auth_host = run.env["FIREBASE_AUTH_EMULATOR_HOST"]
        port = json.loads(cfg.read_text())["emulators"]["database"]["port"]
        assert db_host == f"127.0.0.1:{port}"
        # default namespace is named after the project id
        requests.put(f"http://{db_host}/x.json", json=1, timeout=5).raise_for_status()
        got = requests.get(f"http://{db_host}/x.json?ns=demo-x-default-rtdb", timeout=5)
        assert got.json() == 1
        signup = requests.post(
            f"http://{auth_host}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=k",
            json={"returnSecureToken": True},
            timeout=5,
        )
        assert signup.status_code == 200 and signup.json()["idToken"]
    finally:
        code, out = run.stop()
    assert code == 0
    assert "emulators stopped" in out


def test_ready_quickly(tmp_path: Path) -> None:
    run = Running("--config", str(write_config(tmp_path)), cwd=tmp_path)
    run.stop(signal.SIGINT)
    # includes the Python interpreter's own start-up; the server itself is far below
    assert run.ready_after < 5


def test_export_on_exit_and_import(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    export = tmp_path / "exported"
    run = Running("--config", str(cfg), "--export-on-exit", str(export), cwd=tmp_path)
    db = run.env["FIREBASE_DATABASE_EMULATOR_HOST"]
    auth = run.env["FIREBASE_AUTH_EMULATOR_HOST"]
    requests.put(f"http://{db}/keep.json?ns=one", json={"a": 1}, timeout=5)
    requests.post(
        f"http://{auth}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=k",
        json={"email": "ann@example.com", "password": "secret1", "returnSecureToken": True},
        timeout=5,
    )
    code, out = run.stop(signal.SIGINT)
    assert code == 0 and f"exported to {export}" in out
    meta = json.loads((export / "firebase-export-metadata.json").read_text())
    assert meta["database"]["path"] == "database_export"
    assert json.loads((export / "database_export" / "one.json").read_text()) == {"keep": {"a": 1}}
    assert (export / "auth_export" / "accounts.json").exists()

    cfg2 = write_config(tmp_path)
    run2 = Running("--config", str(cfg2), "--import", str(export), cwd=tmp_path)
    try:
        db2 = run2.env["FIREBASE_DATABASE_EMULATOR_HOST"]
        auth2 = run2.env["FIREBASE_AUTH_EMULATOR_HOST"]
        assert requests.get(f"http://{db2}/keep.json?ns=one", timeout=5).json() == {"a": 1}
        signin = requests.post(
            f"http://{auth2}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=k",
            json={"email": "ann@example.com", "password": "secret1", "returnSecureToken": True},
            timeout=5,
        )
        assert signin.status_code == 200
    finally:
        run2.stop()


def test_rules_file_reloads_when_it_changes(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, '{"rules": {".read": true}}')
    run = Running("--config", str(cfg), cwd=tmp_path)
    try:
        db = run.env["FIREBASE_DATABASE_EMULATOR_HOST"]
        assert requests.get(f"http://{db}/a.json?ns=r", timeout=5).status_code == 200
        time.sleep(0.05)
        (tmp_path / "rules" / "db.rules.json").write_text(
            '// closed now\n{"rules": {".read": false}}'
        )
        deadline = time.time() + 5
        while time.time() < deadline:
            if requests.get(f"http://{db}/a.json?ns=r", timeout=5).status_code == 401:
                break
            time.sleep(0.1)
        else:
            pytest.fail("rules were not reloaded")
        rules = requests.get(
            f"http://{db}/.settings/rules.json?ns=r",
            headers={"Authorization": "Bearer owner"},
            timeout=5,
        ).text
        assert rules.startswith("// closed now")
        # a broken edit keeps the last good rules and says why on stderr
        (tmp_path / "rules" / "db.rules.json").write_text('{"rules": {".read": "auth ==="}}')
        time.sleep(1.5)
        assert requests.get(f"http://{db}/a.json?ns=r", timeout=5).status_code == 401
        # so does a type error, though this rule would allow everything if it were let in
        (tmp_path / "rules" / "db.rules.json").write_text(
            '{"rules": {\n  ".read": "true || root == null"}}'
        )
        time.sleep(1.5)
        assert requests.get(f"http://{db}/a.json?ns=r", timeout=5).status_code == 401
    finally:
        run.stop()
    assert "not reloaded" in run.stderr
    assert (
        "Line 2, column 26: Type error: '==' can't compare a snapshot (the left side);"
        " compare its val() in .read at /rules" in run.stderr
    )


def test_no_rules_configured_means_allow_all_and_only(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, rules=None)
    run = Running("--config", str(cfg), "--only", "database", cwd=tmp_path)
    try:
        assert "FIREBASE_AUTH_EMULATOR_HOST" not in run.env
        db = run.env["FIREBASE_DATABASE_EMULATOR_HOST"]
        assert requests.put(f"http://{db}/a.json?ns=o", json=1, timeout=5).status_code == 200
    finally:
        run.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "nope.json"], "no such config file"),
        (["--only", "database,storage"], "unknown emulator storage"),
        (["--import", "missing-dir"], "is not a folder"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    write_config(tmp_path)
    proc = subprocess.run(
        [*EXE, "emulators", "start", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ('{"rules": {".read": "auth ==="}}', "Line 1, column 30: Unexpected end of expression"),
        (
            '{"rules": {".read": "auth.uid.matches(\'^a\')"}}',
            "Line 1, column 39: Type error: matches() takes a regular expression literal",
        ),
    ],
    ids=["syntax", "type"],
)
def test_bad_rules_file_is_one_line(tmp_path: Path, rules: str, message: str) -> None:
    write_config(tmp_path, rules)
    proc = subprocess.run(
        [*EXE, "emulators", "start"], cwd=tmp_path, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert message in lines[0]


def test_port_in_use_is_one_line(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    port = json.loads(cfg.read_text())["emulators"]["database"]["port"]
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        proc = subprocess.run(
            [*EXE, "emulators", "start"], cwd=tmp_path, capture_output=True, text=True, timeout=30
        )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "port" in proc.stderr
