"""The bundled Auth emulator over real HTTP: every endpoint, every error path, and
the real clients (pyrebase4 through the redirect adapter, firebase-admin tokens)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import firebase_admin
import pyrebase
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from firebase_admin import auth as admin_auth
from firebase_admin import credentials

from emdash_fb.emulator.auth import AuthProject
from emdash_fb.emulator.auth.accounts import Account, AccountStore
from emdash_fb.emulator.idtoken import decode_id_token, mint_id_token
from emdash_fb.firebase.auth_redirect import (
    EmulatorRedirectAdapter,
    emulator_url,
    point_session_at_emulator,
    send_pyrebase_auth_through,
)
from tests.emulator.auth_helpers import (
    API_KEY,
    PROJECT_ID,
    TOKEN_URL,
    V1,
    V3,
    AuthEndpoint,
    FakeClock,
    jwt_payload,
    start_auth_emulator,
    unsigned_jwt,
)

CUSTOM_AUDIENCE = (
    "https://identitytoolkit.googleapis.com/google.identity.identitytoolkit.v1.IdentityToolkit"
)


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def project(clock: FakeClock) -> AuthProject:
    return AuthProject(PROJECT_ID, clock=clock)


@pytest.fixture(scope="module")
def served(project: AuthProject) -> Iterator[AuthEndpoint]:
    server, endpoint = start_auth_emulator(project)
    yield endpoint
    server.stop()


@pytest.fixture
def emulator(served: AuthEndpoint, project: AuthProject, clock: FakeClock) -> AuthEndpoint:
    """The shared emulator, emptied and with the clock at the real time."""
    project.import_state({})
    clock.now = FakeClock().now
    return served


def _auth(token: str) -> dict:
    return decode_id_token(token, project_id=PROJECT_ID, now=None)


# -- discovery and emulator endpoints ---------------------------------------------------


def test_root_says_the_emulator_is_ready(emulator: AuthEndpoint) -> None:
    reply = requests.get(emulator.base + "/", timeout=5)
    assert reply.status_code == 200
    assert reply.json()["authEmulator"]["ready"] is True


def test_clear_accounts_removes_every_user(emulator: AuthEndpoint, project: AuthProject) -> None:
    emulator.sign_up()
    emulator.sign_up(email="a@example.com", password="secret1")
    assert len(project.accounts) == 2
    reply = requests.delete(
        f"{emulator.base}/emulator/v1/projects/{PROJECT_ID}/accounts", timeout=5
    )
    assert reply.status_code == 200 and reply.json() == {}
    assert len(project.accounts) == 0


def test_config_reads_and_patches(emulator: AuthEndpoint) -> None:
    url = f"{emulator.base}/emulator/v1/projects/{PROJECT_ID}/config"
    assert requests.get(url, timeout=5).json() == {
        "signIn": {"allowDuplicateEmails": False},
        "emailPrivacyConfig": {"enableImprovedEmailPrivacy": False},
    }
    patched = requests.patch(
        url, json={"emailPrivacyConfig": {"enableImprovedEmailPrivacy": True}}, timeout=5
    )
    assert patched.json()["emailPrivacyConfig"]["enableImprovedEmailPrivacy"] is True
    assert requests.get(url, timeout=5).json()["emailPrivacyConfig"] == {
        "enableImprovedEmailPrivacy": True
    }


def test_duplicate_emails_setting_is_refused_not_ignored(emulator: AuthEndpoint) -> None:
    url = f"{emulator.base}/emulator/v1/projects/{PROJECT_ID}/config"
    reply = requests.patch(url, json={"signIn": {"allowDuplicateEmails": True}}, timeout=5)
    assert reply.status_code == 501
    assert reply.json()["error"]["status"] == "NOT_IMPLEMENTED"


def test_emulator_endpoints_refuse_another_project(emulator: AuthEndpoint) -> None:
    base = f"{emulator.base}/emulator/v1/projects/demo-other"
    assert requests.delete(f"{base}/accounts", timeout=5).status_code == 400
    assert requests.get(f"{base}/config", timeout=5).status_code == 400


# -- sign-up ----------------------------------------------------------------------------


def test_anonymous_sign_up(emulator: AuthEndpoint) -> None:
    reply = emulator.sign_up()
    assert set(reply) == {"kind", "localId", "idToken", "refreshToken", "expiresIn"}
    assert reply["kind"] == "identitytoolkit#SignupNewUserResponse"
    assert reply["expiresIn"] == "3600"
    assert len(reply["localId"]) == 28
    auth = _auth(reply["idToken"])
    assert auth["uid"] == reply["localId"]
    assert auth["provider"] == "anonymous"
    assert auth["token"]["provider_id"] == "anonymous"


def test_password_sign_up_lowercases_the_email(emulator: AuthEndpoint) -> None:
    reply = emulator.sign_up(email="Ann@Example.COM", password="secret1", displayName="Ann")
    assert reply["email"] == "ann@example.com"
    assert reply["displayName"] == "Ann"
    auth = _auth(reply["idToken"])
    assert auth["provider"] == "password"
    assert auth["token"]["email"] == "ann@example.com"
    assert auth["token"]["email_verified"] is False
    assert auth["token"]["name"] == "Ann"
    assert auth["token"]["firebase"]["identities"] == {"email": ["ann@example.com"]}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"email": "taken@example.com", "password": "secret1"}, "EMAIL_EXISTS"),
        ({"email": "TAKEN@example.com", "password": "secret1"}, "EMAIL_EXISTS"),
        (
            {"email": "new@example.com", "password": "12345"},
            "WEAK_PASSWORD : Password should be at least 6 characters",
        ),
        ({"email": "not-an-email", "password": "secret1"}, "INVALID_EMAIL"),
        ({"email": "new@example.com"}, "MISSING_PASSWORD"),
        ({"password": "secret1"}, "MISSING_EMAIL"),
        ({"email": "", "password": "secret1"}, "MISSING_EMAIL"),
        ({"email": ""}, "INVALID_EMAIL"),
    ],
)
def test_sign_up_errors(emulator: AuthEndpoint, body: dict, message: str) -> None:
    emulator.sign_up(email="taken@example.com", password="secret1")
    assert emulator.error(f"{V1}/accounts:signUp", body) == (400, message)


def test_errors_have_googles_shape(emulator: AuthEndpoint) -> None:
    emulator.sign_up(email="a@example.com", password="secret1")
    reply = emulator.post(f"{V1}/accounts:signUp", {"email": "a@example.com", "password": "x" * 6})
    assert reply.status_code == 400
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json() == {
        "error": {
            "code": 400,
            "message": "EMAIL_EXISTS",
            "errors": [{"message": "EMAIL_EXISTS", "reason": "invalid", "domain": "global"}],
        }
    }


# -- API key and request bodies -----------------------------------------------------------


@pytest.mark.parametrize(
    "path", [f"{V1}/accounts:signUp", f"{V3}/signupNewUser", TOKEN_URL, f"{V1}/accounts:lookup"]
)
def test_missing_api_key_is_refused(emulator: AuthEndpoint, path: str) -> None:
    reply = emulator.post(path, {"returnSecureToken": True}, key=None)
    assert reply.status_code == 403
    assert reply.json()["error"]["status"] == "PERMISSION_DENIED"
    assert reply.json()["error"]["message"] == "The request is missing a valid API key."
    assert emulator.post(path, {}, key="").status_code == 403


def test_any_key_works_in_the_query_or_the_header(emulator: AuthEndpoint) -> None:
    assert emulator.post(f"{V1}/accounts:signUp", {}, key="anything").status_code == 200
    by_header = requests.post(
        f"{emulator.base}/{V1}/accounts:signUp",
        json={},
        headers={"X-Goog-Api-Key": "k"},
        timeout=5,
    )
    assert by_header.status_code == 200


@pytest.mark.parametrize(
    "raw", [b"{bad json", b"[]", b"1", b'"text"', b"null", b"\xff\xfe{", b'{"email": }']
)
@pytest.mark.parametrize(
    "path", [f"{V1}/accounts:signUp", f"{V1}/accounts:lookup", f"{V3}/verifyPassword", TOKEN_URL]
)
def test_malformed_bodies_are_a_400_never_a_500(
    emulator: AuthEndpoint, path: str, raw: bytes
) -> None:
    reply = emulator.post(path, data=raw, headers={"Content-Type": "application/json"})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT"
    assert error["message"].startswith("Invalid JSON payload received.")


@pytest.mark.parametrize(
    "body",
    [
        {"email": {"a": 1}, "password": "secret1"},
        {"email": "a@example.com", "password": ["secret1"]},
        {"displayName": True},
    ],
)
def test_wrongly_typed_fields_are_a_400(emulator: AuthEndpoint, body: dict) -> None:
    reply = emulator.post(f"{V1}/accounts:signUp", body)
    assert reply.status_code == 400
    assert reply.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_unknown_path_and_wrong_method_are_json_404s(emulator: AuthEndpoint) -> None:
    assert emulator.post(f"{V1}/accounts:frobnicate", {}).status_code == 404
    reply = requests.get(f"{emulator.base}/{V1}/accounts:signUp?key=k", timeout=5)
    assert reply.status_code == 404
    assert reply.json()["error"]["status"] == "NOT_FOUND"


def test_empty_body_reads_as_an_empty_object(emulator: AuthEndpoint) -> None:
    reply = emulator.post(f"{V1}/accounts:signUp")
    assert reply.status_code == 200
    assert _auth(reply.json()["idToken"])["provider"] == "anonymous"


# -- password sign-in ---------------------------------------------------------------------


def test_password_sign_in(emulator: AuthEndpoint) -> None:
    created = emulator.sign_up(email="a@example.com", password="secret1")
    reply = emulator.ok(
        f"{V1}/accounts:signInWithPassword",
        {"email": "A@example.com", "password": "secret1", "returnSecureToken": True},
    )
    assert reply["kind"] == "identitytoolkit#VerifyPasswordResponse"
    assert reply["registered"] is True
    assert reply["localId"] == created["localId"]
    assert reply["email"] == "a@example.com"
    assert reply["expiresIn"] == "3600"
    assert _auth(reply["idToken"])["uid"] == created["localId"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"email": "a@example.com", "password": "wrong-1"}, "INVALID_PASSWORD"),
        ({"email": "nobody@example.com", "password": "secret1"}, "EMAIL_NOT_FOUND"),
        ({"email": "bad", "password": "secret1"}, "INVALID_EMAIL"),
        ({"email": "a@example.com"}, "MISSING_PASSWORD"),
        ({"password": "secret1"}, "MISSING_EMAIL"),
    ],
)
def test_password_sign_in_errors(emulator: AuthEndpoint, body: dict, message: str) -> None:
    emulator.sign_up(email="a@example.com", password="secret1")
    assert emulator.error(f"{V1}/accounts:signInWithPassword", body) == (400, message)


def test_improved_email_privacy_hides_which_part_was_wrong(
    emulator: AuthEndpoint, project: AuthProject
) -> None:
    emulator.sign_up(email="a@example.com", password="secret1")
    project.update_config({"emailPrivacyConfig": {"enableImprovedEmailPrivacy": True}})
    path = f"{V1}/accounts:signInWithPassword"
    for body in (
        {"email": "a@example.com", "password": "wrong-1"},
        {"email": "nobody@example.com", "password": "secret1"},
    ):
        assert emulator.error(path, body) == (400, "INVALID_LOGIN_CREDENTIALS")


def test_anonymous_user_cannot_sign_in_with_a_password(emulator: AuthEndpoint) -> None:
    anonymous = emulator.sign_up()
    emulator.ok(
        f"{V1}/accounts:update", {"idToken": anonymous["idToken"], "email": "anon@example.com"}
    )
    body = {"email": "anon@example.com", "password": "secret1"}
    assert emulator.error(f"{V1}/accounts:signInWithPassword", body) == (400, "INVALID_PASSWORD")


# -- lookup -----------------------------------------------------------------------------


def test_lookup_returns_the_account_resource(emulator: AuthEndpoint) -> None:
    created = emulator.sign_up(email="a@example.com", password="secret1", displayName="Ann")
    reply = emulator.ok(f"{V1}/accounts:lookup", {"idToken": created["idToken"]})
    assert reply["kind"] == "identitytoolkit#GetAccountInfoResponse"
    [user] = reply["users"]
    assert user["localId"] == created["localId"]
    assert user["email"] == "a@example.com"
    assert user["displayName"] == "Ann"
    assert user["emailVerified"] is False
    assert user["providerUserInfo"][0]["providerId"] == "password"
    for key in ("createdAt", "lastLoginAt", "passwordHash", "validSince", "lastRefreshAt"):
        assert key in user


def test_lookup_errors(emulator: AuthEndpoint, clock: FakeClock, project: AuthProject) -> None:
    path = f"{V1}/accounts:lookup"
    created = emulator.sign_up()
    assert emulator.error(path, {}) == (400, "MISSING_ID_TOKEN")
    assert emulator.error(path, {"idToken": "garbage"}) == (400, "INVALID_ID_TOKEN")
    other_project = mint_id_token(
        project_id="demo-other", uid=created["localId"], provider="anonymous"
    )
    assert emulator.error(path, {"idToken": other_project}) == (400, "INVALID_ID_TOKEN")
    stranger = mint_id_token(project_id=PROJECT_ID, uid="nobody", provider="anonymous")
    assert emulator.error(path, {"idToken": stranger}) == (400, "USER_NOT_FOUND")
    clock.advance(3600 + 120)
    assert emulator.error(path, {"idToken": created["idToken"]}) == (400, "TOKEN_EXPIRED")


def test_disabled_user_is_refused(emulator: AuthEndpoint, project: AuthProject) -> None:
    created = emulator.sign_up(email="a@example.com", password="secret1")
    account = project.accounts.get(created["localId"])
    assert account is not None
    account.disabled = True
    project.accounts.put(account)
    assert emulator.error(f"{V1}/accounts:lookup", {"idToken": created["idToken"]}) == (
        400,
        "USER_DISABLED",
    )
    body = {"email": "a@example.com", "password": "secret1"}
    assert emulator.error(f"{V1}/accounts:signInWithPassword", body) == (400, "USER_DISABLED")
    refresh = {"grant_type": "refresh_token", "refresh_token": created["refreshToken"]}
    assert emulator.error(TOKEN_URL, refresh) == (400, "USER_DISABLED")


# -- update -----------------------------------------------------------------------------


def test_profile_update_keeps_the_tokens(emulator: AuthEndpoint) -> None:
    created = emulator.sign_up(email="a@example.com", password="secret1")
    reply = emulator.ok(
        f"{V1}/accounts:update",
        {"idToken": created["idToken"], "displayName": "Ann", "photoUrl": "http://p/a.png"},
    )
    assert reply["kind"] == "identitytoolkit#SetAccountInfoResponse"
    assert reply["displayName"] == "Ann" and reply["photoUrl"] == "http://p/a.png"
    assert "idToken" not in reply
    [user] = emulator.ok(f"{V1}/accounts:lookup", {"idToken": created["idToken"]})["users"]
    assert user["displayName"] == "Ann"
    refreshed = emulator.ok(
        TOKEN_URL, {"grant_type": "refresh_token", "refresh_token": created["refreshToken"]}
    )
    claims = _auth(refreshed["id_token"])["token"]
    assert claims["name"] == "Ann" and claims["picture"] == "http://p/a.png"


def test_password_change_issues_new_tokens_and_revokes_old_ones(
    emulator: AuthEndpoint, clock: FakeClock
) -> None:
    created = emulator.sign_up(email="a@example.com", password="secret1")
    clock.advance(5)
    reply = emulator.ok(
        f"{V1}/accounts:update",
        {"idToken": created["idToken"], "password": "secret2", "returnSecureToken": True},
    )
    assert _auth(reply["idToken"])["uid"] == created["localId"]
    lookup = f"{V1}/accounts:lookup"
    assert emulator.ok(lookup, {"idToken": reply["idToken"]})["users"]
    assert emulator.error(lookup, {"idToken": created["idToken"]}) == (400, "TOKEN_EXPIRED")
    sign_in = f"{V1}/accounts:signInWithPassword"
    old = {"email": "a@example.com", "password": "secret1"}
    assert emulator.error(sign_in, old) == (400, "INVALID_PASSWORD")
    emulator.ok(sign_in, {"email": "a@example.com", "password": "secret2"})


def test_email_change(emulator: AuthEndpoint) -> None:
    created = emulator.sign_up(email="a@example.com", password="secret1")
    reply = emulator.ok(
        f"{V1}/accounts:update", {"idToken": created["idToken"], "email": "B@example.com"}
    )
    assert reply["email"] == "b@example.com" and reply["newEmail"] == "b@example.com"
    assert _auth(reply["idToken"])["token"]["email"] == "b@example.com"
    emulator.ok(
        f"{V1}/accounts:signInWithPassword", {"email": "b@example.com", "password": "secret1"}
    )
    gone = {"email": "a@example.com", "password": "secret1"}
    assert emulator.error(f"{V1}/accounts:signInWithPassword", gone) == (400, "EMAIL_NOT_FOUND")


def test_delete_attribute(emulator: AuthEndpoint) -> None:
    created = emulator.sign_up(email="a@example.com", password="secret1", displayName="Ann")
    reply = emulator.ok(
        f"{V1}/accounts:update",
        {"idToken": created["idToken"], "deleteAttribute": ["DISPLAY_NAME"]},
    )
    assert "displayName" not in reply


@pytest.mark.parametrize(
    ("fields", "status", "message"),
    [
        ({"password": "123"}, 400, "WEAK_PASSWORD : Password should be at least 6 characters"),
        ({"email": "nope"}, 400, "INVALID_EMAIL"),
        ({"email": "taken@example.com"}, 400, "EMAIL_EXISTS"),
        ({"deleteAttribute": ["PROVIDER"]}, 501, "deleteAttribute: PROVIDER"),
        ({"idToken": None}, 400, "INVALID_REQ_TYPE : Unsupported request parameters."),
        ({"idToken": "garbage"}, 400, "INVALID_ID_TOKEN"),
    ],
)
def test_update_errors(emulator: AuthEndpoint, fields: dict, status: int, message: str) -> None:
    emulator.sign_up(email="taken@example.com", password="secret1")
    created = emulator.sign_up(email="a@example.com", password="secret1")
    body = {"idToken": created["idToken"], **fields}
    assert emulator.error(f"{V1}/accounts:update", body) == (status, message)


# -- custom tokens ----------------------------------------------------------------------


def test_unsigned_custom_token_with_claims(emulator: AuthEndpoint) -> None:
    token = unsigned_jwt({"aud": CUSTOM_AUDIENCE, "uid": "runner-1", "claims": {"role": "runner"}})
    path = f"{V1}/accounts:signInWithCustomToken"
    first = emulator.ok(path, {"token": token, "returnSecureToken": True})
    assert first["kind"] == "identitytoolkit#VerifyCustomTokenResponse"
    assert first["isNewUser"] is True
    auth = _auth(first["idToken"])
    assert auth["uid"] == "runner-1"
    assert auth["provider"] == "custom"
    assert auth["token"]["role"] == "runner"
    assert emulator.ok(path, {"token": token})["isNewUser"] is False
    # The claims live on in the refresh token.
    refreshed = emulator.ok(
        TOKEN_URL, {"grantType": "refresh_token", "refreshToken": first["refreshToken"]}
    )
    assert _auth(refreshed["id_token"])["token"]["role"] == "runner"


def test_json_custom_token_shortcut(emulator: AuthEndpoint) -> None:
    reply = emulator.ok(f"{V1}/accounts:signInWithCustomToken", {"token": '{"uid": 42}'})
    assert _auth(reply["idToken"])["uid"] == "42"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "MISSING_CUSTOM_TOKEN"),
        ("garbage", "INVALID_CUSTOM_TOKEN : Invalid assertion format"),
        ("{not json", "INVALID_CUSTOM_TOKEN"),
        ('{"claims": {}}', "MISSING_IDENTIFIER"),
        ('{"uid": "u", "claims": {"sub": "x"}}', "FORBIDDEN_CLAIM : sub"),
        ('{"uid": "u", "claims": ["x"]}', "INVALID_CLAIMS"),
        (unsigned_jwt({"aud": "demo-emdash", "uid": "u"}), "INVALID_CUSTOM_TOKEN"),
    ],
)
def test_custom_token_errors(emulator: AuthEndpoint, token: str | None, message: str) -> None:
    status, error = emulator.error(f"{V1}/accounts:signInWithCustomToken", {"token": token})
    assert status == 400
    assert error.startswith(message)


def test_firebase_admin_custom_tokens_work_unsigned_and_signed(
    emulator: AuthEndpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = f"{V1}/accounts:signInWithCustomToken"
    # In emulator mode firebase-admin mints unsigned custom tokens, offline.
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", emulator.host_port)
    app = firebase_admin.initialize_app(
        credentials.Certificate(_fake_service_account()),
        {"projectId": PROJECT_ID},
        name=f"emulated-{uuid.uuid4()}",
    )
    try:
        unsigned = admin_auth.create_custom_token("admin-made", {"tier": "gold"}, app=app).decode()
        reply = emulator.ok(path, {"token": unsigned, "returnSecureToken": True})
        assert _auth(reply["idToken"])["token"]["tier"] == "gold"
        # firebase-admin, as a server would, accepts the ID token we issued.
        verified = admin_auth.verify_id_token(reply["idToken"], app=app)
        assert verified["uid"] == "admin-made" and verified["tier"] == "gold"
    finally:
        firebase_admin.delete_app(app)
    # Without the emulator variable it signs with the service account (RS256).
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST")
    app = firebase_admin.initialize_app(
        credentials.Certificate(_fake_service_account()),
        {"projectId": PROJECT_ID},
        name=f"signed-{uuid.uuid4()}",
    )
    try:
        signed = admin_auth.create_custom_token("signed-user", app=app).decode()
        assert json.loads(_b64(signed.split(".")[0]))["alg"] == "RS256"
        reply = emulator.ok(path, {"token": signed})
        assert _auth(reply["idToken"])["uid"] == "signed-user"
    finally:
        firebase_admin.delete_app(app)


def _b64(segment: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _fake_service_account() -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": PROJECT_ID,
        "private_key_id": "fake-key-id",
        "private_key": pem,
        "client_email": f"tester@{PROJECT_ID}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "http://127.0.0.1:9/token",
    }


# -- delete -----------------------------------------------------------------------------


def test_delete_account(emulator: AuthEndpoint) -> None:
    created = emulator.sign_up(email="a@example.com", password="secret1")
    reply = emulator.ok(f"{V1}/accounts:delete", {"idToken": created["idToken"]})
    assert reply == {"kind": "identitytoolkit#DeleteAccountResponse"}
    assert emulator.error(f"{V1}/accounts:lookup", {"idToken": created["idToken"]}) == (
        400,
        "USER_NOT_FOUND",
    )
    refresh = {"grantType": "refresh_token", "refreshToken": created["refreshToken"]}
    assert emulator.error(TOKEN_URL, refresh) == (400, "INVALID_REFRESH_TOKEN")
    assert emulator.error(f"{V1}/accounts:delete", {}) == (400, "MISSING_ID_TOKEN")


# -- refresh ----------------------------------------------------------------------------


@pytest.mark.parametrize("casing", ["snake", "camel"])
@pytest.mark.parametrize("encoding", ["form", "json"])
def test_refresh_in_every_spelling(emulator: AuthEndpoint, casing: str, encoding: str) -> None:
    created = emulator.sign_up(email="a@example.com", password="secret1")
    keys = ("grant_type", "refresh_token") if casing == "snake" else ("grantType", "refreshToken")
    fields = {keys[0]: "refresh_token", keys[1]: created["refreshToken"]}
    kwargs = {"data": fields} if encoding == "form" else {"json": fields}
    reply = emulator.post(TOKEN_URL, **kwargs)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert set(body) == {
        "id_token",
        "access_token",
        "refresh_token",
        "expires_in",
        "user_id",
        "project_id",
        "token_type",
    }
    assert body["token_type"] == "Bearer" and body["expires_in"] == "3600"
    assert body["user_id"] == created["localId"]
    assert body["access_token"] == body["id_token"]
    auth = _auth(body["id_token"])
    assert auth["uid"] == created["localId"] and auth["provider"] == "password"


def test_refresh_gives_a_later_token(emulator: AuthEndpoint, clock: FakeClock) -> None:
    created = emulator.sign_up()
    clock.advance(3000)
    refreshed = emulator.ok(
        TOKEN_URL, {"grant_type": "refresh_token", "refresh_token": created["refreshToken"]}
    )
    assert (
        jwt_payload(refreshed["id_token"])["iat"] == jwt_payload(created["idToken"])["iat"] + 3000
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "MISSING_GRANT_TYPE"),
        ({"grant_type": "password"}, "INVALID_GRANT_TYPE"),
        ({"grant_type": "refresh_token"}, "MISSING_REFRESH_TOKEN"),
        ({"grant_type": "refresh_token", "refresh_token": "garbage!"}, "INVALID_REFRESH_TOKEN"),
        ({"grant_type": "refresh_token", "refresh_token": "e30="}, "INVALID_REFRESH_TOKEN"),
    ],
)
def test_refresh_errors(emulator: AuthEndpoint, fields: dict, message: str) -> None:
    assert emulator.error(TOKEN_URL, data=fields) == (400, message)


def test_refresh_token_of_another_project_is_refused(emulator: AuthEndpoint) -> None:
    other = AuthProject("demo-other")
    token = other.sign_up()["refreshToken"]
    fields = {"grant_type": "refresh_token", "refresh_token": token}
    assert emulator.error(TOKEN_URL, fields) == (400, "INVALID_REFRESH_TOKEN")


# -- legacy v3 names --------------------------------------------------------------------


def test_legacy_relying_party_routes(emulator: AuthEndpoint) -> None:
    created = emulator.ok(f"{V3}/signupNewUser", {"email": "a@example.com", "password": "secret1"})
    assert created["kind"] == "identitytoolkit#SignupNewUserResponse"
    signed_in = emulator.ok(
        f"{V3}/verifyPassword", {"email": "a@example.com", "password": "secret1"}
    )
    token = signed_in["idToken"]
    assert emulator.ok(f"{V3}/getAccountInfo", {"idToken": token})["users"][0]["email"] == (
        "a@example.com"
    )
    updated = emulator.ok(f"{V3}/setAccountInfo", {"idToken": token, "displayName": "Ann"})
    assert updated["displayName"] == "Ann"
    custom = emulator.ok(f"{V3}/verifyCustomToken", {"token": '{"uid": "c1"}'})
    assert _auth(custom["idToken"])["uid"] == "c1"
    assert emulator.ok(f"{V3}/deleteAccount", {"idToken": token})["kind"].endswith(
        "DeleteAccountResponse"
    )
    assert emulator.error(
        f"{V3}/verifyPassword", {"email": "a@example.com", "password": "x" * 7}
    ) == (
        400,
        "EMAIL_NOT_FOUND",
    )


# -- thread safety ----------------------------------------------------------------------


class SlowLookupStore(AccountStore):
    """Widens the gap between "is this email free?" and "store the user"."""

    def get_by_email(self, email: str) -> Account | None:
        found = super().get_by_email(email)
        time.sleep(0.01)
        return found


def test_concurrent_sign_ups_with_one_email_create_one_user() -> None:
    project = AuthProject(PROJECT_ID, accounts=SlowLookupStore())
    outcomes: list[str] = []
    barrier = threading.Barrier(16)

    def sign_up() -> None:
        barrier.wait()
        try:
            project.sign_up(email="race@example.com", password="secret1")
            outcomes.append("created")
        except Exception as exc:  # noqa: BLE001 - the failure kind is what is asserted
            outcomes.append(str(exc))

    threads = [threading.Thread(target=sign_up) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["EMAIL_EXISTS"] * 15 + ["created"]
    assert len(project.accounts) == 1


# -- export and import ------------------------------------------------------------------


def test_export_writes_the_official_layout_and_imports_back(
    emulator: AuthEndpoint, project: AuthProject, tmp_path: Path
) -> None:
    created = emulator.sign_up(email="a@example.com", password="secret1", displayName="Ann")
    emulator.sign_up()
    project.update_config({"emailPrivacyConfig": {"enableImprovedEmailPrivacy": True}})
    project.export_to(tmp_path / "auth_export")

    accounts = json.loads((tmp_path / "auth_export" / "accounts.json").read_text())
    assert accounts["kind"] == "identitytoolkit#DownloadAccountResponse"
    assert {user["localId"] for user in accounts["users"]} >= {created["localId"]}
    assert len(accounts["users"]) == 2
    config = json.loads((tmp_path / "auth_export" / "config.json").read_text())
    assert config["emailPrivacyConfig"]["enableImprovedEmailPrivacy"] is True

    project.import_state({})
    assert len(project.accounts) == 0
    project.import_from(tmp_path / "auth_export")
    assert len(project.accounts) == 2
    assert project.improved_email_privacy is True
    reply = emulator.ok(
        f"{V1}/accounts:signInWithPassword", {"email": "a@example.com", "password": "secret1"}
    )
    assert reply["localId"] == created["localId"]
    # Tokens issued before the export still refresh after the import.
    emulator.ok(
        TOKEN_URL, {"grant_type": "refresh_token", "refresh_token": created["refreshToken"]}
    )
    assert project.export_state()["accounts"] == accounts


# What `firebase emulators:export` (firebase-tools 15.34.2) wrote for two users.
FIREBASE_TOOLS_ACCOUNTS = {
    "kind": "identitytoolkit#DownloadAccountResponse",
    "users": [
        {
            "localId": "RUkc15Vahv2kmLsexnlnTKC8CLjc",
            "lastLoginAt": "1795837634344",
            "emailVerified": False,
            "email": "a@b.com",
            "salt": "fakeSalttHozVvBErDmp1VjvJqka",
            "passwordHash": "fakeHash:salt=fakeSalttHozVvBErDmp1VjvJqka:password=newpass1",
            "passwordUpdatedAt": 1795837634762,
            "validSince": "1795837634",
            "createdAt": "1795837628048",
            "providerUserInfo": [
                {
                    "providerId": "password",
                    "email": "a@b.com",
                    "federatedId": "a@b.com",
                    "rawId": "a@b.com",
                }
            ],
            "lastRefreshAt": "2026-11-28T03:47:14.793Z",
        },
        {
            "localId": "cust1",
            "customAuth": True,
            "lastLoginAt": "1795837641209",
            "createdAt": "1795837641209",
            "lastRefreshAt": "2026-11-28T03:47:21.209Z",
            "phoneNumber": "+15555550100",
        },
    ],
}


def test_imports_an_export_made_by_firebase_tools(
    emulator: AuthEndpoint, project: AuthProject, tmp_path: Path
) -> None:
    (tmp_path / "accounts.json").write_text(json.dumps(FIREBASE_TOOLS_ACCOUNTS))
    project.import_from(tmp_path)
    assert project.config()["emailPrivacyConfig"]["enableImprovedEmailPrivacy"] is False
    reply = emulator.ok(
        f"{V1}/accounts:signInWithPassword", {"email": "a@b.com", "password": "newpass1"}
    )
    assert reply["localId"] == "RUkc15Vahv2kmLsexnlnTKC8CLjc"
    custom = emulator.ok(f"{V1}/accounts:signInWithCustomToken", {"token": '{"uid": "cust1"}'})
    assert custom["isNewUser"] is False
    # Fields this emulator does not model survive the round trip.
    [exported] = [
        user for user in project.export_state()["accounts"]["users"] if user["localId"] == "cust1"
    ]
    assert exported["phoneNumber"] == "+15555550100"


@pytest.mark.parametrize(
    "bad",
    [
        {"accounts": {"users": "nope"}},
        {"accounts": {"users": [{"email": "no-local-id@example.com"}]}},
        {"accounts": {"users": [1]}},
        {"accounts": [], "config": []},
        {"config": {"signIn": {"allowDuplicateEmails": True}}},
    ],
)
def test_malformed_import_raises_and_keeps_the_state(
    emulator: AuthEndpoint, project: AuthProject, bad: dict
) -> None:
    emulator.sign_up()
    with pytest.raises(ValueError):
        project.import_state(bad)
    assert len(project.accounts) == 1


# -- pyrebase4 through the redirect adapter -----------------------------------------------


def _pyrebase_auth(endpoint: AuthEndpoint) -> object:
    firebase = pyrebase.initialize_app(
        {
            "apiKey": API_KEY,
            "authDomain": f"{PROJECT_ID}.firebaseapp.com",
            "databaseURL": "http://127.0.0.1:9/",
            "storageBucket": "",
        }
    )
    point_session_at_emulator(firebase.requests, endpoint.host_port)
    auth = firebase.auth()
    send_pyrebase_auth_through(auth, firebase.requests)
    return auth


def test_pyrebase_auth_works_against_the_emulator(emulator: AuthEndpoint) -> None:
    auth = _pyrebase_auth(emulator)
    created = auth.create_user_with_email_and_password("py@example.com", "secret1")  # type: ignore[attr-defined]
    assert _auth(created["idToken"])["provider"] == "password"

    user = auth.sign_in_with_email_and_password("py@example.com", "secret1")  # type: ignore[attr-defined]
    assert user["localId"] == created["localId"]
    assert auth.current_user["localId"] == created["localId"]  # type: ignore[attr-defined]

    info = auth.get_account_info(user["idToken"])  # type: ignore[attr-defined]
    assert info["users"][0]["email"] == "py@example.com"

    refreshed = auth.refresh(user["refreshToken"])  # type: ignore[attr-defined]
    assert refreshed["userId"] == created["localId"]
    assert _auth(refreshed["idToken"])["uid"] == created["localId"]

    # pyrebase4 sends "photoURL": null and "deleteAttribute": null here.
    profile = auth.update_profile(refreshed["idToken"], display_name="Py")  # type: ignore[attr-defined]
    assert profile["displayName"] == "Py"
    assert auth.get_account_info(refreshed["idToken"])["users"][0]["displayName"] == "Py"  # type: ignore[attr-defined]

    changed = auth.change_password(refreshed["idToken"], "secret2")  # type: ignore[attr-defined]
    assert _auth(changed["idToken"])["uid"] == created["localId"]

    anonymous = auth.sign_in_anonymous()  # type: ignore[attr-defined]
    assert _auth(anonymous["idToken"])["provider"] == "anonymous"

    custom = auth.sign_in_with_custom_token('{"uid": "py-custom"}')  # type: ignore[attr-defined]
    assert _auth(custom["idToken"])["uid"] == "py-custom"

    auth.delete_user_account(changed["idToken"])  # type: ignore[attr-defined]
    with pytest.raises(requests.HTTPError) as failure:
        auth.sign_in_with_email_and_password("py@example.com", "secret2")  # type: ignore[attr-defined]
    assert "EMAIL_NOT_FOUND" in str(failure.value)


def test_pyrebase_sees_emulator_errors(emulator: AuthEndpoint) -> None:
    auth = _pyrebase_auth(emulator)
    auth.create_user_with_email_and_password("dup@example.com", "secret1")  # type: ignore[attr-defined]
    with pytest.raises(requests.HTTPError) as failure:
        auth.create_user_with_email_and_password("dup@example.com", "secret1")  # type: ignore[attr-defined]
    assert "EMAIL_EXISTS" in str(failure.value)


def test_rebinding_touches_only_the_given_auth_object(emulator: AuthEndpoint) -> None:
    rebound = _pyrebase_auth(emulator)
    untouched = pyrebase.initialize_app(
        {
            "apiKey": "k",
            "authDomain": "d",
            "databaseURL": "http://127.0.0.1:9/",
            "storageBucket": "",
        }
    ).auth()
    assert "sign_in_anonymous" in vars(rebound)
    assert "sign_in_anonymous" not in vars(untouched)
    assert pyrebase.pyrebase.requests is requests


def test_adapter_is_mounted_for_auth_hosts_only() -> None:
    session = point_session_at_emulator(requests.Session(), "127.0.0.1:9099")
    for url in (
        "https://identitytoolkit.googleapis.com/v1/accounts:signUp?key=k",
        "https://securetoken.googleapis.com/v1/token?key=k",
        "https://www.googleapis.com/identitytoolkit/v3/relyingparty/verifyPassword?key=k",
    ):
        assert isinstance(session.get_adapter(url), EmulatorRedirectAdapter)
    for url in (
        "https://www.googleapis.com/storage/v1/b/bucket",
        "https://demo-emdash.firebaseio.com/x.json",
    ):
        assert not isinstance(session.get_adapter(url), EmulatorRedirectAdapter)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://identitytoolkit.googleapis.com/v1/accounts:signUp?key=k",
            "http://h:1/identitytoolkit.googleapis.com/v1/accounts:signUp?key=k",
        ),
        (
            "https://securetoken.googleapis.com/v1/token?key=k",
            "http://h:1/securetoken.googleapis.com/v1/token?key=k",
        ),
        (
            "https://www.googleapis.com/identitytoolkit/v3/relyingparty/getAccountInfo?key=k",
            "http://h:1/www.googleapis.com/identitytoolkit/v3/relyingparty/getAccountInfo?key=k",
        ),
        ("https://www.googleapis.com/storage/v1/b", "https://www.googleapis.com/storage/v1/b"),
        ("http://localhost:9000/x.json", "http://localhost:9000/x.json"),
    ],
)
def test_emulator_url(url: str, expected: str) -> None:
    assert emulator_url(url, "h:1") == expected


@pytest.mark.parametrize("bad", ["http://h:1", "h:1/path"])
def test_adapter_wants_a_bare_host_port(bad: str) -> None:
    with pytest.raises(ValueError):
        EmulatorRedirectAdapter(bad)
