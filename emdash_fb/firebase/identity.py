"""Who the user is: sign-in (anonymous or email/password), token refresh, saved credentials.

:class:`Auth` drives pyrebase4's ``Auth`` (unchanged) for the REST calls. pyrebase4
posts with the module-level ``requests.post`` to Google's hosts, so its calls
are rerouted through our own session (timeouts, retries) with
``send_pyrebase_auth_through``; with ``FIREBASE_AUTH_EMULATOR_HOST`` set, that
session also carries the redirect adapter that delivers them to the emulator.

ID tokens last an hour. :meth:`Auth.current` returns the saved identity,
refreshing it through the Secure Token API when it expires within five
minutes, and signs in anonymously when nothing is saved yet. All of it is
serialised by a lock, so threads share one refresh.
"""

from __future__ import annotations

import base64
import getpass
import json
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import requests
from pyrebase.pyrebase import Auth as PyrebaseAuth

from .auth_errors import ACCOUNT_GONE, auth_error
from .auth_redirect import (
    AUTH_URL_PREFIXES,
    EmulatorRedirectAdapter,
    send_pyrebase_auth_through,
)
from .credentials import Identity, IdentityStore
from .errors import AuthError, ConfigError, NetworkError
from .target import Target
from .transport import (
    RETRY_STATUSES,
    ResilientAdapter,
    always_replay_safe,
    error_message,
    make_session,
    network_error,
)

__all__ = ["Auth", "Identity", "IdentityStore"]

REFRESH_MARGIN = 300.0  # refresh a token that expires within this many seconds
TOKEN_LIFETIME = 3600.0  # what Firebase issues; used only when a token has no readable exp
MAX_NAME = 64
GOOGLE_AUTH_HOST = "identitytoolkit.googleapis.com"


class _EmulatorAuthAdapter(EmulatorRedirectAdapter, ResilientAdapter):
    """The emulator redirect with our timeout and retries (cooperative ``send``/``__init__``)."""


class Auth:
    """Signs the user in and keeps a valid ID token at hand."""

    def __init__(
        self, target: Target, store: IdentityStore, http: requests.Session | None = None
    ) -> None:
        self.target = target
        self.store = store
        self.http = http if http is not None else make_session(replay_safe=always_replay_safe)
        if target.auth_emulator:
            adapter = _EmulatorAuthAdapter(target.auth_emulator, replay_safe=always_replay_safe)
            for prefix in AUTH_URL_PREFIXES:
                self.http.mount(prefix, adapter)
        self._api = PyrebaseAuth(target.api_key, self.http, None)
        send_pyrebase_auth_through(self._api, self.http)
        self._lock = threading.RLock()
        # current() refreshes a token that expires within this many seconds.
        self.refresh_margin = REFRESH_MARGIN

    @property
    def where(self) -> str:
        return self.target.auth_emulator or GOOGLE_AUTH_HOST

    # -- signing in ------------------------------------------------------------------

    def sign_in_anonymous(self, name: str | None = None) -> Identity:
        """A new anonymous user named ``name`` (default: the OS user name), saved."""
        display = clean_name(name)
        with self._lock:
            reply = self._call(self._api.sign_in_anonymous)
            ident = self._identity(reply, provider="anonymous", name=display)
            self._set_display_name(ident.id_token, display)
            self.store.save(ident)
            return ident

    def sign_in_email(
        self, email: str, password: str, *, create: bool = False, name: str | None = None
    ) -> Identity:
        """Sign in (or, with ``create``, sign up) with email and password, saved.

        The display name is ``name`` if given, else the account's, else the OS
        user name; the account's profile is updated when it changes.
        """
        with self._lock:
            if create:
                reply = self._call(self._api.create_user_with_email_and_password, email, password)
            else:
                reply = self._call(self._api.sign_in_with_email_and_password, email, password)
            # verifyPassword may omit displayName; the ID token carries it as "name".
            account_name = reply.get("displayName") or token_claims(reply["idToken"]).get("name")
            account_name = account_name if isinstance(account_name, str) and account_name else None
            display = clean_name(name or account_name)
            if display != account_name:
                self._set_display_name(reply["idToken"], display)
            ident = self._identity(reply, provider="password", name=display)
            self.store.save(ident)
            return ident

    # -- changing who you are, without losing it ------------------------------------------

    def rename(self, name: str) -> Identity:
        """The same account (same uid) under a new display name, saved."""
        display = clean_name(name)
        with self._lock:
            ident = self.current()
            self._set_display_name(ident.id_token, display)
            renamed = replace(ident, name=display)
            self.store.save(renamed)
            return renamed

    def link_email(self, email: str, password: str) -> Identity:
        """Give the signed-in (anonymous) account an email and password, keeping its uid,
        so it can be signed into again from anywhere (Identity Toolkit ``accounts:update``)."""
        with self._lock:
            ident = self.current()
            reply = self._call(
                self._post,
                "https://identitytoolkit.googleapis.com/v1/accounts:update",
                {
                    "idToken": ident.id_token,
                    "email": email,
                    "password": password,
                    "returnSecureToken": True,
                },
            )
            if reply.get("localId") not in (None, ident.uid):
                raise AuthError("linking failed: the server answered for another user")
            id_token = reply.get("idToken") or ident.id_token
            linked = replace(
                ident,
                provider="password",
                email=reply.get("email") or email.lower(),
                id_token=id_token,
                refresh_token=reply.get("refreshToken") or ident.refresh_token,
                expires_at=token_expiry(id_token, _float(reply.get("expiresIn"))),
            )
            self.store.save(linked)
            return linked

    def saved(self) -> Identity | None:
        """The identity this profile has saved (no sign-in, no network)."""
        return self.store.load()

    def sign_out(self) -> Identity | None:
        """Forget this profile's saved identity; returns what was forgotten."""
        with self._lock:
            ident = self.store.load()
            self.store.forget()
            return ident

    def _post(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(
            f"{url}?key={self.target.api_key}",
            json=body,
            headers={"content-type": "application/json; charset=UTF-8"},
        )
        if response.status_code >= 400:
            raise requests.HTTPError(requests.HTTPError(response=response), response.text)
        reply = response.json()
        return reply if isinstance(reply, dict) else {}

    # -- staying signed in -------------------------------------------------------------

    def current(self, *, min_valid: float | None = None) -> Identity:
        """The saved identity with a token valid for ``min_valid`` more seconds.

        ``min_valid`` defaults to ``refresh_margin`` (five minutes). Refreshes
        when needed; signs in anonymously when nothing is saved.
        """
        if min_valid is None:
            min_valid = self.refresh_margin
        with self._lock:
            ident = self.store.load()
            if ident is None:
                return self.sign_in_anonymous()
            if ident.expires_at - time.time() < min_valid:
                ident = self._refresh(ident)
            return ident

    def fresh_token(self) -> str:
        """An ID token valid for at least five more minutes (thread-safe)."""
        return self.current().id_token

    def refresh(self, replacing: str | None = None) -> Identity:
        """A newly issued token, e.g. after the server revoked one.

        With ``replacing``, a saved token that already differs from it (someone
        else refreshed meanwhile) and is comfortably valid is returned as is.
        """
        with self._lock:
            ident = self.store.load()
            if ident is None:
                return self.sign_in_anonymous()
            still_good = ident.expires_at - time.time() >= self.refresh_margin
            if replacing is not None and ident.id_token != replacing and still_good:
                return ident
            return self._refresh(ident)

    def _refresh(self, ident: Identity) -> Identity:
        try:
            reply = self._call(self._api.refresh, ident.refresh_token)
        except AuthError as exc:
            if exc.code in ACCOUNT_GONE and ident.provider == "anonymous":
                # An anonymous account that is gone can never come back; start a
                # new one under the same name rather than leave the user stuck.
                return self.sign_in_anonymous(ident.name)
            raise AuthError(
                f"{exc} (profile {self.store.profile!r}: sign in again)", exc.code
            ) from None
        if reply.get("userId") not in (None, ident.uid):
            raise AuthError("sign-in failed: the refreshed token is for another user")
        refreshed = replace(
            ident,
            id_token=reply["idToken"],
            refresh_token=reply.get("refreshToken") or ident.refresh_token,
            expires_at=token_expiry(reply["idToken"]),
        )
        self.store.save(refreshed)
        return refreshed

    # -- helpers -----------------------------------------------------------------------

    def _identity(self, reply: dict[str, Any], *, provider: str, name: str) -> Identity:
        id_token = reply["idToken"]
        lifetime = _float(reply.get("expiresIn"))
        return Identity(
            uid=reply["localId"],
            name=name,
            provider=provider,
            email=reply.get("email") if provider == "password" else None,
            id_token=id_token,
            refresh_token=reply["refreshToken"],
            expires_at=token_expiry(id_token, lifetime),
        )

    def _set_display_name(self, id_token: str, name: str) -> None:
        self._call(self._api.update_profile, id_token, name)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """One pyrebase4 Auth call with its failures mapped to our errors."""
        try:
            return fn(*args)
        except requests.HTTPError as exc:
            raise self._mapped(exc) from None
        except requests.RequestException as exc:
            raise network_error(exc, self.where, "sign-in service") from None

    def _mapped(self, exc: requests.HTTPError) -> Exception:
        # pyrebase4 re-raises as HTTPError(original_error, response_text).
        original = exc.args[0] if exc.args and isinstance(exc.args[0], requests.HTTPError) else exc
        response = original.response
        status = response.status_code if response is not None else 0
        text = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], str) else ""
        if status in RETRY_STATUSES:
            return NetworkError(f"the sign-in service at {self.where} kept failing ({status})")
        message = error_message(text)
        if status == 403 and "API key" in message:
            return ConfigError(
                "the sign-in service wants an API key: set EMDASH_FB_API_KEY or config.json"
            )
        if status == 404:
            return ConfigError(f"no sign-in service at {self.where} (404): check the Auth host")
        return auth_error(message or f"HTTP {status}")


def clean_name(name: str | None) -> str:
    """A display name: given or the OS user name, control characters removed, at most 64."""
    text = (name or "").strip() or _os_user()
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()
    return (text or "user")[:MAX_NAME]


def token_claims(id_token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (``{}`` if unreadable).

    Only used to schedule refreshes and read the display name; the server is
    what checks tokens.
    """
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_expiry(id_token: str, lifetime: float | None = None) -> float:
    """When ``id_token`` expires: its ``exp`` claim, else now + ``lifetime`` (or an hour)."""
    exp = token_claims(id_token).get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return time.time() + (lifetime or TOKEN_LIFETIME)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "user"


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
