"""The official firebase-tools Auth emulator, run for real, as the judge of ours.

Tokens it mints must be accepted by our RTDB side (``decode_id_token``), and our
Auth emulator must answer the same requests with the same claim sets, reply
shapes and error bodies. firebase-tools is plain Node and runs offline; it is
installed from the repo's package-lock.json (``npm ci``) when missing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from emdash_fb.emulator.auth import AuthProject
from emdash_fb.emulator.auth.tokens import decode_refresh_token
from emdash_fb.emulator.idtoken import decode_id_token
from tests.emulator.auth_helpers import (
    PROJECT_ID,
    TOKEN_URL,
    V1,
    V3,
    AuthEndpoint,
    jwt_header,
    jwt_payload,
    start_auth_emulator,
    unsigned_jwt,
)

# Installing firebase-tools on a fresh machine takes minutes; startup ~15 s.
pytestmark = pytest.mark.timeout(900)

REPO_ROOT = Path(__file__).resolve().parents[2]
FIREBASE_CLI = REPO_ROOT / "node_modules" / ".bin" / "firebase"
STARTUP_TIMEOUT_SECONDS = 180
CUSTOM_AUDIENCE = (
    "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit"
)


@dataclass
class OfficialEmulator:
    endpoint: AuthEndpoint
    startup_seconds: float


def _install_firebase_tools() -> None:
    if FIREBASE_CLI.exists():
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=REPO_ROOT,
        check=True,
        timeout=840,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _quiet_offline_env(workdir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("FIREBASE_", "GCLOUD_", "GOOGLE_"))
    }
    env.update(
        CI="true",  # no prompts, no update notifier, no usage-stats question
        NO_UPDATE_NOTIFIER="1",
        FIREBASE_CLI_DISABLE_UPDATE_CHECK="true",
        # The hub writes a locator file to the temp dir; keep runs apart.
        TMPDIR=str(workdir),
    )
    return env


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"firebase-tools exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(url, timeout=1).json()["authEmulator"]["ready"]:
                return
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(0.2)
    pytest.fail(f"firebase-tools Auth emulator not ready in time:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OfficialEmulator]:
    _install_firebase_tools()
    workdir = tmp_path_factory.mktemp("firebase-tools")
    port = _free_port()
    config = workdir / "firebase.json"
    config.write_text(
        "{"
        f'"emulators": {{"auth": {{"host": "127.0.0.1", "port": {port}}},'
        f'"hub": {{"host": "127.0.0.1", "port": {_free_port()}}},'
        f'"logging": {{"host": "127.0.0.1", "port": {_free_port()}}},'
        '"ui": {"enabled": false}, "singleProjectMode": true}'
        "}"
    )
    log = workdir / "firebase-tools.log"
    command = [str(FIREBASE_CLI), "emulators:start", "--only", "auth"]
    command += ["--project", PROJECT_ID, "--config", str(config), "--non-interactive"]
    started = time.monotonic()
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=_quiet_offline_env(workdir),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole
        )
    try:
        _wait_until_ready(process, f"http://127.0.0.1:{port}/", log)
        startup = time.monotonic() - started
        yield OfficialEmulator(AuthEndpoint(f"127.0.0.1:{port}"), startup)
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def ours() -> Iterator[AuthEndpoint]:
    server, endpoint = start_auth_emulator(AuthProject(PROJECT_ID))
    yield endpoint
    server.stop()


@pytest.fixture
def both(official: OfficialEmulator, ours: AuthEndpoint) -> tuple[AuthEndpoint, AuthEndpoint]:
    """(official, ours), both emptied through the emulator API they share."""
    for endpoint in (official.endpoint, ours):
        cleared = requests.delete(
            f"{endpoint.base}/emulator/v1/projects/{PROJECT_ID}/accounts", timeout=10
        )
        assert cleared.status_code == 200, cleared.text
    return official.endpoint, ours


def _custom_token(uid: str, claims: dict[str, Any] | None = None) -> str:
    payload: dict[str, Any] = {"aud": CUSTOM_AUDIENCE, "uid": uid}
    if claims:
        payload["claims"] = claims
    return unsigned_jwt(payload)


# -- tokens minted by firebase-tools are accepted by our RTDB side -----------------------


def test_firebase_tools_starts_in_reasonable_time(official: OfficialEmulator) -> None:
    assert official.startup_seconds < STARTUP_TIMEOUT_SECONDS


def test_anonymous_token_from_firebase_tools_is_accepted(
    both: tuple[AuthEndpoint, AuthEndpoint],
) -> None:
    official, _ = both
    reply = official.sign_up()
    auth = decode_id_token(reply["idToken"], project_id=PROJECT_ID)
    assert auth["uid"] == reply["localId"]
    assert auth["provider"] == "anonymous"
    assert auth["token"]["provider_id"] == "anonymous"
    assert auth["token"]["firebase"] == {"identities": {}, "sign_in_provider": "anonymous"}


def test_email_token_from_firebase_tools_is_accepted(
    both: tuple[AuthEndpoint, AuthEndpoint],
) -> None:
    official, _ = both
    reply = official.sign_up(email="Ann@Example.com", password="secret1", displayName="Ann")
    auth = decode_id_token(reply["idToken"], project_id=PROJECT_ID)
    assert auth["uid"] == reply["localId"]
    assert auth["provider"] == "password"
    assert auth["token"]["email"] == "ann@example.com"
    assert auth["token"]["email_verified"] is False
    assert auth["token"]["name"] == "Ann"
    assert auth["token"]["firebase"]["identities"] == {"email": ["ann@example.com"]}
    signed_in = official.ok(
        f"{V1}/accounts:signInWithPassword", {"email": "ann@example.com", "password": "secret1"}
    )
    assert decode_id_token(signed_in["idToken"], project_id=PROJECT_ID)["uid"] == reply["localId"]


def test_custom_and_refreshed_tokens_from_firebase_tools_are_accepted(
    both: tuple[AuthEndpoint, AuthEndpoint],
) -> None:
    official, _ = both
    reply = official.ok(
        f"{V1}/accounts:signInWithCustomToken",
        {"token": _custom_token("runner-1", {"role": "runner"}), "returnSecureToken": True},
    )
    auth = decode_id_token(reply["idToken"], project_id=PROJECT_ID)
    assert auth["uid"] == "runner-1"
    assert auth["provider"] == "custom"
    assert auth["token"]["role"] == "runner"
    refreshed = official.ok(
        TOKEN_URL, data={"grant_type": "refresh_token", "refresh_token": reply["refreshToken"]}
    )
    auth = decode_id_token(refreshed["id_token"], project_id=PROJECT_ID)
    assert auth["uid"] == "runner-1" and auth["token"]["role"] == "runner"


def test_refresh_tokens_share_one_format(both: tuple[AuthEndpoint, AuthEndpoint]) -> None:
    official, _ = both
    reply = official.ok(
        f"{V1}/accounts:signInWithCustomToken", {"token": _custom_token("u1", {"tier": 2})}
    )
    grant = decode_refresh_token(reply["refreshToken"])
    assert (grant.local_id, grant.provider, grant.project_id) == ("u1", "custom", PROJECT_ID)
    assert grant.extra_claims == {"tier": 2}


# -- our emulator answers like firebase-tools ----------------------------------------------


def _shape(value: Any) -> Any:
    """Keys and value types, recursively: what two tokens or replies must share."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


SIGN_UPS: dict[str, dict[str, Any]] = {
    "anonymous": {},
    "password": {"email": "a@example.com", "password": "secret1"},
    "password with name": {"email": "b@example.com", "password": "secret1", "displayName": "B"},
}


@pytest.mark.parametrize("kind", list(SIGN_UPS))
def test_sign_up_tokens_and_replies_match(
    both: tuple[AuthEndpoint, AuthEndpoint], kind: str
) -> None:
    official, ours = both
    theirs, mine = official.sign_up(**SIGN_UPS[kind]), ours.sign_up(**SIGN_UPS[kind])
    assert _shape(mine) == _shape(theirs)
    _assert_same_token_form(theirs["idToken"], mine["idToken"])


def test_custom_token_sign_in_matches(both: tuple[AuthEndpoint, AuthEndpoint]) -> None:
    path = f"{V1}/accounts:signInWithCustomToken"
    body = {"token": _custom_token("c1", {"role": "admin", "n": 1}), "returnSecureToken": True}
    theirs, mine = (endpoint.ok(path, body) for endpoint in both)
    assert _shape(mine) == _shape(theirs)
    _assert_same_token_form(theirs["idToken"], mine["idToken"])


def test_password_sign_in_lookup_update_and_refresh_match(
    both: tuple[AuthEndpoint, AuthEndpoint],
) -> None:
    replies: list[dict[str, Any]] = []
    for endpoint in both:
        endpoint.sign_up(email="a@example.com", password="secret1")
        signed_in = endpoint.ok(
            f"{V1}/accounts:signInWithPassword",
            {"email": "a@example.com", "password": "secret1", "returnSecureToken": True},
        )
        token = signed_in["idToken"]
        lookup = endpoint.ok(f"{V1}/accounts:lookup", {"idToken": token})
        profile = endpoint.ok(f"{V1}/accounts:update", {"idToken": token, "displayName": "A"})
        password = endpoint.ok(
            f"{V1}/accounts:update",
            {"idToken": token, "password": "secret2", "returnSecureToken": True},
        )
        refreshed = endpoint.ok(
            TOKEN_URL,
            {"grantType": "refresh_token", "refreshToken": password["refreshToken"]},
        )
        replies.append(
            {
                "signIn": signed_in,
                "lookup": lookup,
                "profile": profile,
                "password": password,
                "refresh": refreshed,
            }
        )
    theirs, mine = replies
    assert _shape(mine) == _shape(theirs)
    assert mine["refresh"]["project_id"] == theirs["refresh"]["project_id"]
    for step, key in (("signIn", "idToken"), ("password", "idToken"), ("refresh", "id_token")):
        _assert_same_token_form(theirs[step][key], mine[step][key])


def _assert_same_token_form(theirs: str, mine: str) -> None:
    assert jwt_header(mine) == jwt_header(theirs) == {"alg": "none", "typ": "JWT"}
    assert mine.endswith(".") and theirs.endswith(".")
    their_claims, my_claims = jwt_payload(theirs), jwt_payload(mine)
    assert list(my_claims) == list(their_claims)  # same keys, same order
    assert _shape(my_claims) == _shape(their_claims)
    for claims in (their_claims, my_claims):
        assert claims["exp"] - claims["iat"] == 3600
        assert claims["sub"] == claims["user_id"]
        assert claims["auth_time"] <= claims["iat"]
    per_user = {"sub", "user_id", "iat", "exp", "auth_time"}
    same_everywhere = {key: value for key, value in their_claims.items() if key not in per_user}
    assert {key: my_claims[key] for key in same_everywhere} == same_everywhere


# Requests both emulators must refuse with the very same status and body.
ERROR_CASES: list[tuple[str, str, dict[str, Any], str | None]] = [
    (
        "email exists",
        f"{V1}/accounts:signUp",
        {"email": "t@example.com", "password": "secret1"},
        "k",
    ),
    ("weak password", f"{V1}/accounts:signUp", {"email": "n@example.com", "password": "12"}, "k"),
    ("invalid email", f"{V1}/accounts:signUp", {"email": "nope", "password": "secret1"}, "k"),
    ("missing password", f"{V1}/accounts:signUp", {"email": "n@example.com"}, "k"),
    ("missing email", f"{V1}/accounts:signUp", {"password": "secret1"}, "k"),
    (
        "wrong password",
        f"{V1}/accounts:signInWithPassword",
        {"email": "t@example.com", "password": "wrong-1"},
        "k",
    ),
    (
        "unknown email",
        f"{V1}/accounts:signInWithPassword",
        {"email": "x@example.com", "password": "secret1"},
        "k",
    ),
    (
        "legacy wrong password",
        f"{V3}/verifyPassword",
        {"email": "t@example.com", "password": "wrong-1"},
        "k",
    ),
    ("garbage id token", f"{V1}/accounts:lookup", {"idToken": "garbage"}, "k"),
    ("legacy garbage id token", f"{V3}/getAccountInfo", {"idToken": "x.y.z"}, "k"),
    ("missing id token", f"{V1}/accounts:delete", {}, "k"),
    ("no update target", f"{V1}/accounts:update", {"displayName": "x"}, "k"),
    ("missing key", f"{V1}/accounts:signUp", {}, None),
    ("missing key on refresh", TOKEN_URL, {"grant_type": "refresh_token"}, None),
    ("missing grant type", TOKEN_URL, {}, "k"),
    ("wrong grant type", TOKEN_URL, {"grant_type": "password"}, "k"),
    ("missing refresh token", TOKEN_URL, {"grant_type": "refresh_token"}, "k"),
    (
        "garbage refresh token",
        TOKEN_URL,
        {"grant_type": "refresh_token", "refresh_token": "zzz"},
        "k",
    ),
    ("missing custom token", f"{V1}/accounts:signInWithCustomToken", {}, "k"),
    ("garbage custom token", f"{V1}/accounts:signInWithCustomToken", {"token": "abc"}, "k"),
    (
        "custom token without uid",
        f"{V1}/accounts:signInWithCustomToken",
        {"token": '{"foo": 1}'},
        "k",
    ),
    (
        "reserved custom claim",
        f"{V1}/accounts:signInWithCustomToken",
        {"token": '{"uid": "u", "claims": {"firebase": 1}}'},
        "k",
    ),
    ("unknown operation", f"{V1}/accounts:frobnicate", {}, "k"),
]


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_errors_match_firebase_tools(
    both: tuple[AuthEndpoint, AuthEndpoint], path: str, body: dict[str, Any], key: str | None
) -> None:
    replies = []
    for endpoint in both:
        endpoint.sign_up(email="t@example.com", password="secret1")
        replies.append(endpoint.post(path, body, key=key))
    theirs, mine = replies
    assert theirs.status_code != 200
    assert (mine.status_code, mine.json()) == (theirs.status_code, theirs.json())


@pytest.mark.parametrize("raw", [b"{bad json", b'{"email": }'])
def test_malformed_json_is_refused_alike(
    both: tuple[AuthEndpoint, AuthEndpoint], raw: bytes
) -> None:
    replies = [
        endpoint.post(
            f"{V1}/accounts:signUp", data=raw, headers={"Content-Type": "application/json"}
        )
        for endpoint in both
    ]
    theirs, mine = (reply.json()["error"] for reply in replies)
    assert replies[1].status_code == replies[0].status_code == 400
    # The parser's own wording differs (JavaScript vs Python); the rest must not.
    assert mine["status"] == theirs["status"]
    assert mine["errors"][0]["reason"] == theirs["errors"][0]["reason"]
    assert mine["message"].split(".")[0] == theirs["message"].split(".")[0]
