"""The state and behaviour of one emulated Auth project (no HTTP here).

:class:`AuthProject` implements the operations a client reaches through the
Identity Toolkit and Secure Token APIs. Each takes typed arguments, returns the
API's JSON reply as a dict and raises :class:`AuthApiError` with the error code
the official emulator gives in the same situation. Where that emulator and
production Google differ, the choice is noted on the method.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..idtoken import (
    DEFAULT_LIFETIME_SECONDS,
    RESERVED_CLAIMS,
    TokenError,
    decode_id_token,
    mint_id_token,
)
from .accounts import (
    Account,
    AccountStore,
    canonical_email,
    fake_password_hash,
    is_valid_email,
    iso_timestamp,
    random_id,
)
from .custom_tokens import read_custom_token
from .errors import AuthApiError, bad_request, not_implemented, require, required
from .tokens import RefreshGrant, decode_refresh_token, encode_refresh_token

PASSWORD_MIN_LENGTH = 6
# What the official emulator reports as the project number in token replies.
FAKE_PROJECT_NUMBER = "12345"

ANONYMOUS, PASSWORD, CUSTOM = "anonymous", "password", "custom"
_DELETABLE_ATTRIBUTES = {"DISPLAY_NAME", "PHOTO_URL", "PASSWORD", "EMAIL"}


def default_config() -> dict[str, Any]:
    return {
        "signIn": {"allowDuplicateEmails": False},
        "emailPrivacyConfig": {"enableImprovedEmailPrivacy": False},
    }


class AuthProject:
    """Users, refresh tokens and settings of one project, safe across threads."""

    def __init__(
        self,
        project_id: str,
        *,
        clock: Callable[[], float] = time.time,
        accounts: AccountStore | None = None,
    ) -> None:
        self.project_id = project_id
        self.accounts = accounts if accounts is not None else AccountStore()
        self._clock = clock
        self._config = default_config()
        self._lock = self.accounts.lock

    # -- settings -----------------------------------------------------------------

    @property
    def improved_email_privacy(self) -> bool:
        """When on, sign-in failures do not tell a missing email from a bad password."""
        return bool(self._config["emailPrivacyConfig"]["enableImprovedEmailPrivacy"])

    def config(self) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self._config))

    def update_config(self, update: dict[str, Any]) -> dict[str, Any]:
        """Apply the emulator config fields present in ``update`` (others are ignored).

        Only one account per email is supported: ``allowDuplicateEmails: true``
        is refused with 501 rather than silently not honoured.
        """
        improved = _improved_privacy_setting(update)
        with self._lock:
            if improved is not None:
                self._config["emailPrivacyConfig"]["enableImprovedEmailPrivacy"] = improved
            return self.config()

    # -- sign-up and sign-in ------------------------------------------------------------

    def sign_up(
        self,
        *,
        email: str | None = None,
        password: str | None = None,
        display_name: str | None = None,
    ) -> dict[str, Any]:
        """An anonymous user, or a password user when an email or password is given."""
        provider = PASSWORD if (email or password) else ANONYMOUS
        if provider == ANONYMOUS and email == "":
            raise bad_request("INVALID_EMAIL")
        now = self._clock()
        with self._lock:
            account = Account(
                local_id=self.accounts.new_local_id(),
                created_at_ms=_ms(now),
                last_login_at_ms=_ms(now),
            )
            if provider == PASSWORD:
                email = required(email, "MISSING_EMAIL")
                password = required(password, "MISSING_PASSWORD")
                account.email = self._unused_email(email)
                account.email_verified = False
                account.display_name = display_name
                self._set_password(account, password, now)
            stored = self.accounts.put(account)
            reply: dict[str, Any] = {
                "kind": "identitytoolkit#SignupNewUserResponse",
                "localId": stored.local_id,
            }
            _put_if_set(reply, "displayName", stored.display_name)
            _put_if_set(reply, "email", stored.email)
            reply.update(self._issue_tokens(stored, provider))
            return reply

    def sign_in_with_password(self, *, email: str | None, password: str | None) -> dict[str, Any]:
        if email is None:
            raise bad_request("MISSING_EMAIL")
        require(is_valid_email(email), "INVALID_EMAIL")
        password = required(password, "MISSING_PASSWORD")
        with self._lock:
            vague = self.improved_email_privacy
            account = required(
                self.accounts.get_by_email(email),
                "INVALID_LOGIN_CREDENTIALS" if vague else "EMAIL_NOT_FOUND",
            )
            require(not account.disabled, "USER_DISABLED")
            require(
                account.password_matches(password),
                "INVALID_LOGIN_CREDENTIALS" if vague else "INVALID_PASSWORD",
            )
            account.last_login_at_ms = _ms(self._clock())
            stored = self.accounts.put(account)
            return {
                "kind": "identitytoolkit#VerifyPasswordResponse",
                "registered": True,
                "localId": stored.local_id,
                "email": stored.email,
                **self._issue_tokens(stored, PASSWORD),
            }

    def sign_in_with_custom_token(self, token: str | None) -> dict[str, Any]:
        """Sign in (creating the user if new) with a custom token, never verified;
        see :func:`read_custom_token` for the forms accepted."""
        uid, extra_claims = read_custom_token(required(token, "MISSING_CUSTOM_TOKEN"))
        now = self._clock()
        with self._lock:
            account = self.accounts.get(uid)
            is_new = account is None
            if account is None:
                account = Account(local_id=uid, created_at_ms=_ms(now))
            require(not account.disabled, "USER_DISABLED")
            account.custom_auth = True
            account.last_login_at_ms = _ms(now)
            stored = self.accounts.put(account)
            return {
                "kind": "identitytoolkit#VerifyCustomTokenResponse",
                "isNewUser": is_new,
                **self._issue_tokens(stored, CUSTOM, extra_claims),
            }

    def exchange_refresh_token(
        self, *, grant_type: str | None, refresh_token: str | None
    ) -> dict[str, Any]:
        """The Secure Token API's reply (snake_case keys, unlike the rest)."""
        require(grant_type, "MISSING_GRANT_TYPE")
        require(grant_type == "refresh_token", "INVALID_GRANT_TYPE")
        grant = decode_refresh_token(required(refresh_token, "MISSING_REFRESH_TOKEN"))
        require(grant.project_id == self.project_id, "INVALID_REFRESH_TOKEN")
        with self._lock:
            account = required(self.accounts.get(grant.local_id), "INVALID_REFRESH_TOKEN")
            require(not account.disabled, "USER_DISABLED")
            tokens = self._issue_tokens(account, grant.provider, grant.extra_claims)
        return {
            "id_token": tokens["idToken"],
            "access_token": tokens["idToken"],
            "expires_in": tokens["expiresIn"],
            "refresh_token": tokens["refreshToken"],
            "token_type": "Bearer",
            "user_id": account.local_id,
            "project_id": FAKE_PROJECT_NUMBER,
        }

    # -- the signed-in user's account ---------------------------------------------------

    def lookup(self, id_token: str | None) -> dict[str, Any]:
        account, _ = self._account_for(id_token)
        return {"kind": "identitytoolkit#GetAccountInfoResponse", "users": [account.to_resource()]}

    def update_account(
        self,
        *,
        id_token: str | None,
        display_name: str | None = None,
        photo_url: str | None = None,
        email: str | None = None,
        password: str | None = None,
        delete_attributes: list[str] | None = None,
    ) -> dict[str, Any]:
        """Change the profile or credentials of the user an ID token names.

        As in the official emulator, new tokens come back only when a credential
        (email or password) changed, since only that revokes the old ones.
        """
        require(id_token, "INVALID_REQ_TYPE : Unsupported request parameters.")
        for attribute in delete_attributes or []:
            if attribute not in _DELETABLE_ATTRIBUTES | {"USER_ATTRIBUTE_NAME_UNSPECIFIED"}:
                raise not_implemented(f"deleteAttribute: {attribute}")
        now = self._clock()
        with self._lock:
            account, provider = self._account_for(id_token)
            new_email = None
            if email:
                require(is_valid_email(email), "INVALID_EMAIL")
                new_email = canonical_email(email)
                if new_email != account.email:
                    account.email = self._unused_email(new_email)
                    account.email_verified = False
                else:
                    new_email = None
            if password:
                self._set_password(account, password, now)
                provider = PASSWORD
            if display_name is not None:
                account.display_name = display_name
            if photo_url is not None:
                account.photo_url = photo_url
            _delete_attributes(account, delete_attributes or [])
            credentials_changed = bool(password or new_email)
            if credentials_changed:
                account.valid_since = int(now)
            stored = self.accounts.put(account)
            reply: dict[str, Any] = {
                "kind": "identitytoolkit#SetAccountInfoResponse",
                "localId": stored.local_id,
            }
            _put_if_set(reply, "emailVerified", stored.email_verified)
            _put_if_set(reply, "providerUserInfo", stored.provider_user_info() or None)
            _put_if_set(reply, "email", stored.email)
            _put_if_set(reply, "displayName", stored.display_name)
            _put_if_set(reply, "photoUrl", stored.photo_url)
            _put_if_set(reply, "newEmail", new_email)
            _put_if_set(reply, "passwordHash", stored.password_hash)
            if credentials_changed:
                reply.update(self._issue_tokens(stored, provider))
            return reply

    def delete_account(self, id_token: str | None) -> dict[str, Any]:
        with self._lock:
            account, _ = self._account_for(id_token)
            self.accounts.delete(account.local_id)
        return {"kind": "identitytoolkit#DeleteAccountResponse"}

    def delete_all_accounts(self) -> None:
        self.accounts.clear()

    # -- export and import ------------------------------------------------------

    def export_state(self) -> dict[str, Any]:
        """``{"accounts": <accounts.json>, "config": <config.json>}`` of an export."""
        with self._lock:
            users = [account.to_resource() for account in self.accounts]
            return {
                "accounts": {"kind": "identitytoolkit#DownloadAccountResponse", "users": users},
                "config": self.config(),
            }

    def import_state(self, data: dict[str, Any]) -> None:
        """Replace every user and setting with those of :meth:`export_state`'s form.

        Raises ``ValueError`` (and changes nothing) when ``data`` is malformed.
        """
        accounts = data.get("accounts")
        accounts = {} if accounts is None else accounts
        config = data.get("config")
        config = {} if config is None else config
        if not isinstance(accounts, dict) or not isinstance(config, dict):
            raise ValueError("accounts and config must be objects")
        users = accounts.get("users")
        users = [] if users is None else users
        if not isinstance(users, list) or not all(isinstance(user, dict) for user in users):
            raise ValueError("accounts.users must be a list of account objects")
        imported = [Account.from_resource(user) for user in users]
        try:
            improved = _improved_privacy_setting(config)
        except AuthApiError as exc:
            raise ValueError(exc.message) from exc
        with self._lock:
            self.accounts.clear()
            for account in imported:
                self.accounts.put(account)
            self._config = default_config()
            self._config["emailPrivacyConfig"]["enableImprovedEmailPrivacy"] = bool(improved)

    def export_to(self, directory: str | Path) -> None:
        """Write ``accounts.json`` and ``config.json`` into ``directory``: the
        ``auth_export`` folder of a ``firebase emulators:export`` directory."""
        target = Path(directory)
        target.mkdir(parents=True, exist_ok=True)
        state = self.export_state()
        (target / "accounts.json").write_text(json.dumps(state["accounts"]), encoding="utf-8")
        (target / "config.json").write_text(json.dumps(state["config"]), encoding="utf-8")

    def import_from(self, directory: str | Path) -> None:
        """Load what :meth:`export_to` (or firebase-tools) wrote; missing files are empty."""
        source = Path(directory)
        state: dict[str, Any] = {}
        for name in ("accounts", "config"):
            path = source / f"{name}.json"
            if path.is_file():
                state[name] = json.loads(path.read_text(encoding="utf-8"))
        self.import_state(state)

    # -- helpers ------------------------------------------------------------------

    def _unused_email(self, email: str) -> str:
        require(is_valid_email(email), "INVALID_EMAIL")
        canonical = canonical_email(email)
        require(self.accounts.get_by_email(canonical) is None, "EMAIL_EXISTS")
        return canonical

    def _set_password(self, account: Account, password: str, now: float) -> None:
        require(
            len(password) >= PASSWORD_MIN_LENGTH,
            f"WEAK_PASSWORD : Password should be at least {PASSWORD_MIN_LENGTH} characters",
        )
        account.salt = "fakeSalt" + random_id(20)
        account.password_hash = fake_password_hash(password, account.salt)
        account.password_updated_at_ms = _ms(now)
        account.valid_since = int(now)

    def _account_for(self, id_token: str | None) -> tuple[Account, str]:
        """The user an ID token names and the provider it was issued for.

        Unlike the official emulator, which ignores ``exp``, an expired token is
        refused with ``TOKEN_EXPIRED`` as production does, so clients exercise
        their refresh path here too.
        """
        id_token = required(id_token, "MISSING_ID_TOKEN")
        try:
            auth = decode_id_token(id_token, now=self._clock(), project_id=self.project_id)
        except TokenError as exc:
            reason = "TOKEN_EXPIRED" if str(exc) == "expired" else "INVALID_ID_TOKEN"
            raise bad_request(reason) from exc
        claims = auth["token"]
        account = required(self.accounts.get(auth["uid"]), "USER_NOT_FOUND")
        issued_at = claims.get("iat")
        if account.valid_since is not None and isinstance(issued_at, int | float):
            require(issued_at >= account.valid_since, "TOKEN_EXPIRED")
        require(not account.disabled, "USER_DISABLED")
        firebase = claims.get("firebase")
        provider = firebase.get("sign_in_provider") if isinstance(firebase, dict) else None
        return account, provider if isinstance(provider, str) else CUSTOM

    def _issue_tokens(
        self, account: Account, provider: str, extra_claims: dict[str, Any] | None = None
    ) -> dict[str, str]:
        now = self._clock()
        account.last_refresh_at = iso_timestamp(now)
        self.accounts.put(account)
        claims = {**_stored_custom_claims(account), **(extra_claims or {})}
        login_ms = account.last_login_at_ms
        id_token = mint_id_token(
            project_id=self.project_id,
            uid=account.local_id,
            provider=provider,
            claims=claims,
            email=account.email,
            email_verified=bool(account.email_verified),
            name=account.display_name,
            picture=account.photo_url,
            now=now,
            lifetime=DEFAULT_LIFETIME_SECONDS,
            auth_time=now if login_ms is None else login_ms / 1000,
        )
        grant = RefreshGrant(account.local_id, provider, self.project_id, extra_claims or {})
        return {
            "idToken": id_token,
            "refreshToken": encode_refresh_token(grant),
            "expiresIn": str(DEFAULT_LIFETIME_SECONDS),
        }


def _improved_privacy_setting(config: dict[str, Any]) -> bool | None:
    """``enableImprovedEmailPrivacy`` from an emulator config, refusing what we cannot do."""
    sign_in = config.get("signIn")
    if isinstance(sign_in, dict) and sign_in.get("allowDuplicateEmails"):
        raise not_implemented(
            "allowDuplicateEmails is not supported by the emdash-fb Auth emulator."
        )
    privacy = config.get("emailPrivacyConfig")
    value = privacy.get("enableImprovedEmailPrivacy") if isinstance(privacy, dict) else None
    return value if isinstance(value, bool) else None


def _ms(epoch_seconds: float) -> int:
    return int(epoch_seconds * 1000)


def _put_if_set(reply: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        reply[key] = value


def _stored_custom_claims(account: Account) -> dict[str, Any]:
    """Claims set through the Admin API (kept as a JSON string, as the API does)."""
    if not account.custom_attributes:
        return {}
    try:
        claims = json.loads(account.custom_attributes)
    except ValueError:
        return {}
    if not isinstance(claims, dict):
        return {}
    return {key: value for key, value in claims.items() if key not in RESERVED_CLAIMS}


def _delete_attributes(account: Account, attributes: list[str]) -> None:
    for attribute in attributes:
        if attribute == "DISPLAY_NAME":
            account.display_name = None
        elif attribute == "PHOTO_URL":
            account.photo_url = None
        elif attribute == "PASSWORD":
            account.password_hash = account.salt = None
        elif attribute == "EMAIL":
            account.email = account.email_verified = None
