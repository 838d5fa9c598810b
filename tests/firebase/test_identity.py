"""Sign-in, display names, saved credentials and token refresh against the Auth emulator."""

from __future__ import annotations

import dataclasses
import getpass
import json
import stat
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.firebase.auth_errors import auth_error
from emdash_fb.firebase.errors import AuthError, ConfigError, NetworkError
from emdash_fb.firebase.identity import Auth, Identity, IdentityStore, token_expiry
from emdash_fb.firebase.target import Target, resolve_target


def lookup(emu: ThreadedEmulator, id_token: str) -> dict[str, Any]:
    """The emulator's account record for a token (what the server believes, not the client)."""
    r = requests.post(
        f"http://{emu.auth_host}/identitytoolkit.googleapis.com/v1/accounts:lookup",
        params={"key": "fake-api-key"},
        json={"idToken": id_token},
        timeout=5,
    )
    r.raise_for_status()
    return r.json()["users"][0]


def email() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.com"


class SecureTokenCounter:
    """Counts refresh calls that reach the Secure Token API through a session."""

    def __init__(self, auth: Auth) -> None:
        self.count = 0
        self._lock = threading.Lock()
        auth.http.hooks["response"].append(self._seen)

    def _seen(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if "securetoken.googleapis.com" in (response.url or ""):
            with self._lock:
                self.count += 1


# -- signing in ---------------------------------------------------------------------------


def test_anonymous_sign_in_defaults_to_the_os_user_name(
    auth: Auth, fb_emulator: ThreadedEmulator
) -> None:
    ident = auth.sign_in_anonymous()
    assert ident.provider == "anonymous" and ident.email is None
    assert ident.name == getpass.getuser()
    assert len(ident.uid) >= 20
    assert lookup(fb_emulator, ident.id_token)["displayName"] == getpass.getuser()
    assert 3500 < ident.expires_at - time.time() <= 3600


def test_anonymous_sign_in_with_a_name(auth: Auth, fb_emulator: ThreadedEmulator) -> None:
    ident = auth.sign_in_anonymous("Ada \x1b[31mLovelace")
    assert ident.name == "Ada [31mLovelace"  # control characters are dropped
    assert lookup(fb_emulator, ident.id_token)["displayName"] == ident.name
    assert auth.store.load() == ident


def test_email_create_then_sign_in(auth: Auth, fb_emulator: ThreadedEmulator) -> None:
    address = email()
    created = auth.sign_in_email(address, "secret123", create=True, name="Grace")
    assert created.provider == "password" and created.email == address
    assert created.name == "Grace"
    assert lookup(fb_emulator, created.id_token)["displayName"] == "Grace"
    again = auth.sign_in_email(address, "secret123")
    assert again.uid == created.uid
    assert again.name == "Grace"  # the account's name, not the OS user's
    renamed = auth.sign_in_email(address, "secret123", name="Grace H")
    assert lookup(fb_emulator, renamed.id_token)["displayName"] == "Grace H"


def test_email_user_without_a_name_gets_the_os_user_name(
    auth: Auth, fb_emulator: ThreadedEmulator
) -> None:
    ident = auth.sign_in_email(email(), "secret123", create=True)
    assert ident.name == getpass.getuser()
    assert lookup(fb_emulator, ident.id_token)["displayName"] == getpass.getuser()


def test_wrong_password_is_said_plainly(auth: Auth) -> None:
    address = email()
    auth.sign_in_email(address, "secret123", create=True)
    with pytest.raises(AuthError) as caught:
        auth.sign_in_email(address, "nope-nope")
    assert str(caught.value) == "sign-in failed: wrong password"
    assert caught.value.code == "INVALID_PASSWORD"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda a, e: a.sign_in_email(e, "secret123"), "no account with this email"),
        (lambda a, e: a.sign_in_email(e, "abc", create=True), "password too weak"),
        (lambda a, e: a.sign_in_email("not-an-email", "secret123"), "not a valid email"),
    ],
)
def test_auth_errors_are_humanised(auth: Auth, make: Any, expected: str) -> None:
    with pytest.raises(AuthError, match=expected):
        make(auth, email())


def test_existing_email_cannot_be_created_twice(auth: Auth) -> None:
    address = email()
    auth.sign_in_email(address, "secret123", create=True)
    with pytest.raises(AuthError, match="already exists"):
        auth.sign_in_email(address, "secret123", create=True)


def test_configuration_problems_are_config_errors() -> None:
    assert isinstance(auth_error("OPERATION_NOT_ALLOWED"), ConfigError)
    assert isinstance(auth_error("API key not valid. Please pass a valid API key."), ConfigError)
    odd = auth_error("SOMETHING_NEW")
    assert isinstance(odd, AuthError) and str(odd) == "sign-in failed: something new"


def test_unreachable_auth_service_is_a_network_error(target: Target, env: dict[str, str]) -> None:
    dead = dataclasses.replace(target, auth_emulator="127.0.0.1:9")
    auth = Auth(dead, IdentityStore(dead, "default", env))
    started = time.monotonic()
    with pytest.raises(NetworkError, match="can't reach the sign-in service at 127.0.0.1:9"):
        auth.sign_in_anonymous("x")
    assert time.monotonic() - started < 5


# -- saved credentials --------------------------------------------------------------------


def test_credentials_file_is_private(auth: Auth, env: dict[str, str]) -> None:
    auth.sign_in_anonymous("x")
    path = Path(env["XDG_CONFIG_HOME"]) / "emdash-fb" / "profiles" / "default.json"
    assert path == auth.store.path and path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir() if p.suffix == ".tmp"] == []


def test_saved_identity_is_used_without_signing_in_again(
    target: Target, env: dict[str, str], auth: Auth
) -> None:
    first = auth.sign_in_anonymous("x")
    later = Auth(target, IdentityStore(target, "default", env))
    counter = SecureTokenCounter(later)
    assert later.current() == first
    assert later.fresh_token() == first.id_token
    assert counter.count == 0


def test_current_signs_in_anonymously_when_nothing_is_saved(auth: Auth) -> None:
    assert auth.store.load() is None
    ident = auth.current()
    assert ident.provider == "anonymous"
    assert auth.store.load() == ident
    assert auth.current().uid == ident.uid


def test_profiles_are_separate_users(target: Target, env: dict[str, str]) -> None:
    alice = Auth(target, IdentityStore(target, "alice", env)).current()
    bob = Auth(target, IdentityStore(target, "bob", env)).current()
    assert alice.uid != bob.uid
    assert IdentityStore(target, "alice", env).load() == alice
    assert IdentityStore(target, "bob", env).load() == bob
    assert IdentityStore(target, "carol", env).load() is None


def test_targets_are_separate_in_one_profile(target: Target, env: dict[str, str]) -> None:
    other = dataclasses.replace(target, project_id="demo-other")
    store = IdentityStore(target, "default", env)
    Auth(target, store).current()
    assert IdentityStore(other, "default", env).load() is None
    IdentityStore(other, "default", env).set_state("session", "s-other")
    assert store.get_state("session") is None


def test_bad_profile_names_are_refused(target: Target, env: dict[str, str]) -> None:
    for name in ("", "../x", "a/b", ".hidden"):
        with pytest.raises(ConfigError):
            IdentityStore(target, name, env)


def test_state_is_kept_per_profile_and_survives_sign_in(
    target: Target, env: dict[str, str]
) -> None:
    store = IdentityStore(target, "default", env)
    store.set_state("session", "sid-1")
    Auth(target, store).sign_in_anonymous("x")
    assert IdentityStore(target, "default", env).get_state("session") == "sid-1"
    assert IdentityStore(target, "other", env).get_state("session") is None
    store.set_state("session", None)
    assert store.get_state("session") is None


def test_damaged_credentials_file_says_what_to_do(target: Target, env: dict[str, str]) -> None:
    store = IdentityStore(target, "default", env)
    store.directory.mkdir(parents=True)
    store.path.write_text("{oops")
    with pytest.raises(ConfigError, match="delete it"):
        store.load()


# -- refresh ------------------------------------------------------------------------------


def expire(store: IdentityStore, seconds_left: float) -> Identity:
    """Rewrite the saved identity as if its token expired (or expires) ``seconds_left`` from now."""
    ident = store.load()
    assert ident is not None
    aged = dataclasses.replace(ident, expires_at=time.time() + seconds_left)
    store.save(aged)
    return aged


def test_expired_saved_token_is_refreshed(auth: Auth) -> None:
    first = auth.sign_in_anonymous("x")
    time.sleep(1.1)  # a new token must carry a new iat
    expire(auth.store, -10)
    counter = SecureTokenCounter(auth)
    current = auth.current()
    assert counter.count == 1
    assert current.uid == first.uid and current.name == "x"
    assert current.id_token != first.id_token
    assert current.expires_at - time.time() > 3500
    assert auth.store.load() == current
    assert auth.current() == current and counter.count == 1


def test_token_expiring_within_five_minutes_is_refreshed(auth: Auth) -> None:
    auth.sign_in_anonymous("x")
    expire(auth.store, 299)
    counter = SecureTokenCounter(auth)
    auth.fresh_token()
    assert counter.count == 1
    expire(auth.store, 301)
    auth.fresh_token()
    assert counter.count == 1


def test_concurrent_callers_share_one_refresh(auth: Auth) -> None:
    auth.sign_in_anonymous("x")
    expire(auth.store, -1)
    counter = SecureTokenCounter(auth)
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(auth.fresh_token())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.count == 1 and len(set(tokens)) == 1


def test_refresh_replacing_a_token_someone_already_replaced(auth: Auth) -> None:
    old = auth.sign_in_anonymous("x")
    time.sleep(1.1)
    counter = SecureTokenCounter(auth)
    new = auth.refresh(replacing=old.id_token)
    assert new.id_token != old.id_token and counter.count == 1
    assert auth.refresh(replacing=old.id_token) == new  # already newer: no call
    assert counter.count == 1


def test_password_identity_refreshes_keeping_email(auth: Auth) -> None:
    address = email()
    first = auth.sign_in_email(address, "secret123", create=True, name="P")
    expire(auth.store, -1)
    ident = auth.current()
    assert (ident.uid, ident.email, ident.provider, ident.name) == (
        first.uid,
        address,
        "password",
        "P",
    )


def test_deleted_anonymous_account_starts_a_new_one(
    auth: Auth, fb_emulator: ThreadedEmulator
) -> None:
    first = auth.sign_in_anonymous("Lin")
    requests.post(
        f"http://{fb_emulator.auth_host}/identitytoolkit.googleapis.com/v1/accounts:delete",
        params={"key": "k"},
        json={"idToken": first.id_token},
        timeout=5,
    ).raise_for_status()
    expire(auth.store, -1)
    ident = auth.current()
    assert ident.uid != first.uid and ident.name == "Lin"


def test_deleted_password_account_asks_to_sign_in_again(
    auth: Auth, fb_emulator: ThreadedEmulator
) -> None:
    first = auth.sign_in_email(email(), "secret123", create=True)
    requests.post(
        f"http://{fb_emulator.auth_host}/identitytoolkit.googleapis.com/v1/accounts:delete",
        params={"key": "k"},
        json={"idToken": first.id_token},
        timeout=5,
    ).raise_for_status()
    expire(auth.store, -1)
    with pytest.raises(AuthError, match="sign in again"):
        auth.current()


def test_token_expiry_reads_exp_or_falls_back() -> None:
    payload = json.dumps({"exp": 1234}).encode()
    import base64

    token = "e30." + base64.urlsafe_b64encode(payload).decode().rstrip("=") + "."
    assert token_expiry(token) == 1234.0
    assert abs(token_expiry("garbage", 60) - (time.time() + 60)) < 1


def test_resolve_and_sign_in_from_the_emulator_env(env: dict[str, str]) -> None:
    target = resolve_target(env)
    ident = Auth(target, IdentityStore(target, "default", env)).current()
    assert ident.uid


def test_saved_file_is_parsed_once_until_it_changes(
    target: Target, env: dict[str, str], auth: Auth, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth.sign_in_anonymous("x")
    reads: list[Path] = []
    real_read = Path.read_text

    def counting(self: Path, *args: Any, **kwargs: Any) -> str:
        reads.append(self)
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counting)
    for _ in range(10):
        auth.fresh_token()
    assert len(reads) <= 1
    other = IdentityStore(target, "default", env)  # e.g. another process
    other.set_state("session", "s-2")
    assert auth.store.get_state("session") == "s-2"
    assert len(reads) == 3


# -- never losing who you are ---------------------------------------------------------------


def test_rename_keeps_the_account_and_tells_the_server(
    auth: Auth, fb_emulator: ThreadedEmulator
) -> None:
    first = auth.sign_in_anonymous("erin")
    renamed = auth.rename("Erin B")
    assert renamed.uid == first.uid and renamed.name == "Erin B"
    assert auth.current().name == "Erin B"
    assert lookup(fb_emulator, renamed.id_token)["displayName"] == "Erin B"


def test_link_email_upgrades_an_anonymous_account_in_place(
    auth: Auth, fb_emulator: ThreadedEmulator, target: Target, tmp_path: Path
) -> None:
    anon = auth.sign_in_anonymous("ada")
    address = email()
    linked = auth.link_email(address, "s3cret-pass")
    assert linked.uid == anon.uid and linked.provider == "password" and linked.email == address
    assert lookup(fb_emulator, linked.id_token)["email"] == address
    # another machine signs into the very same account with it
    other = Auth(target, IdentityStore(target, "laptop", {"XDG_CONFIG_HOME": str(tmp_path)}))
    assert other.sign_in_email(address, "s3cret-pass").uid == anon.uid
    # and the old tokens were replaced (a credential changed): the saved ones still work
    assert auth.current().uid == anon.uid


def test_link_email_refusals_are_one_line(auth: Auth, target: Target, env: dict[str, str]) -> None:
    auth.sign_in_anonymous("x")
    taken = email()
    Auth(target, IdentityStore(target, "taker", env)).sign_in_email(taken, "pw-123456", create=True)
    with pytest.raises(AuthError) as exc:
        auth.link_email(taken, "pw-123456")
    assert "\n" not in str(exc.value)


def test_sign_out_forgets_only_this_profile(auth: Auth) -> None:
    ident = auth.sign_in_anonymous("x")
    assert auth.sign_out() == ident
    assert auth.saved() is None
