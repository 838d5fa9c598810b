"""User accounts of the Auth emulator and the thread-safe store that holds them.

An :class:`Account` converts to and from the *account resource* of the Identity
Toolkit API (``accounts:lookup`` replies, ``accounts.json`` exports), so files
exported by ``firebase emulators:export`` import here and the other way round.
Passwords are kept in the official emulator's readable fake-hash form for the
same reason: an emulator holds test users only.
"""

from __future__ import annotations

import copy
import re
import secrets
import string
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PASSWORD_PROVIDER = "password"
LOCAL_ID_LENGTH = 28
_ID_ALPHABET = string.ascii_letters + string.digits
_EMAIL = re.compile(r"^[^@]+@[^@]+$")


def is_valid_email(email: str) -> bool:
    """The official emulator's (lenient) test: one ``@`` with text on both sides."""
    return bool(_EMAIL.match(email))


def canonical_email(email: str) -> str:
    return email.lower()


def random_id(length: int) -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def fake_password_hash(password: str, salt: str) -> str:
    """The official emulator's stand-in for a hash; keeps exports interchangeable."""
    return f"fakeHash:salt={salt}:password={password}"


def iso_timestamp(epoch_seconds: float) -> str:
    """``2026-01-02T03:04:05.678Z``, the form of ``lastRefreshAt``."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class Account:
    """One user. Times follow the API: ``*_at_ms`` in epoch milliseconds,
    ``valid_since`` in epoch seconds (tokens issued before it are revoked)."""

    local_id: str
    created_at_ms: int
    last_login_at_ms: int | None = None
    last_refresh_at: str | None = None
    email: str | None = None
    email_verified: bool | None = None
    display_name: str | None = None
    photo_url: str | None = None
    salt: str | None = None
    password_hash: str | None = None
    password_updated_at_ms: int | None = None
    valid_since: int | None = None
    custom_auth: bool = False
    custom_attributes: str | None = None
    disabled: bool = False
    # Resource fields this emulator does not model (phone, MFA, IdP links...),
    # kept so that an imported export survives a round trip unchanged.
    other_fields: dict[str, Any] = field(default_factory=dict)

    def has_password(self) -> bool:
        return bool(self.password_hash and self.salt)

    def password_matches(self, password: str) -> bool:
        return self.has_password() and self.password_hash == fake_password_hash(
            password, self.salt or ""
        )

    def to_resource(self) -> dict[str, Any]:
        """The API's account resource (camelCase, absent fields left out)."""
        resource: dict[str, Any] = {"localId": self.local_id}
        optional: list[tuple[str, Any]] = [
            ("customAuth", self.custom_auth or None),
            ("lastLoginAt", _str_or_none(self.last_login_at_ms)),
            ("emailVerified", self.email_verified),
            ("email", self.email),
            ("displayName", self.display_name),
            ("photoUrl", self.photo_url),
            ("salt", self.salt),
            ("passwordHash", self.password_hash),
            ("passwordUpdatedAt", self.password_updated_at_ms),
            ("validSince", _str_or_none(self.valid_since)),
            ("createdAt", str(self.created_at_ms)),
            ("customAttributes", self.custom_attributes),
            ("disabled", self.disabled or None),
        ]
        resource.update((key, value) for key, value in optional if value is not None)
        providers = self.provider_user_info()
        if providers:
            resource["providerUserInfo"] = providers
        if self.last_refresh_at is not None:
            resource["lastRefreshAt"] = self.last_refresh_at
        resource.update(self.other_fields)
        return resource

    def provider_user_info(self) -> list[dict[str, Any]]:
        linked = [
            info
            for info in self.other_fields.get("providerUserInfo", [])
            if info.get("providerId") != PASSWORD_PROVIDER
        ]
        if not (self.email and self.has_password()):
            return linked
        password_info: dict[str, Any] = {
            "providerId": PASSWORD_PROVIDER,
            "email": self.email,
            "federatedId": self.email,
            "rawId": self.email,
        }
        if self.display_name is not None:
            password_info["displayName"] = self.display_name
        if self.photo_url is not None:
            password_info["photoUrl"] = self.photo_url
        return [password_info, *linked]

    @classmethod
    def from_resource(cls, resource: dict[str, Any]) -> Account:
        """Inverse of :meth:`to_resource`; raises ``ValueError`` for a bad resource."""
        local_id = resource.get("localId")
        if not isinstance(local_id, str) or not local_id:
            raise ValueError("account without localId")
        known = {
            "localId",
            "createdAt",
            "lastLoginAt",
            "lastRefreshAt",
            "email",
            "emailVerified",
            "displayName",
            "photoUrl",
            "salt",
            "passwordHash",
            "passwordUpdatedAt",
            "validSince",
            "customAuth",
            "customAttributes",
            "disabled",
        }
        other = {key: value for key, value in resource.items() if key not in known}
        if "providerUserInfo" in other:
            other["providerUserInfo"] = [
                info
                for info in other["providerUserInfo"]
                if isinstance(info, dict) and info.get("providerId") != PASSWORD_PROVIDER
            ]
            if not other["providerUserInfo"]:
                del other["providerUserInfo"]
        email = resource.get("email")
        return cls(
            local_id=local_id,
            created_at_ms=_int_or_none(resource.get("createdAt")) or 0,
            last_login_at_ms=_int_or_none(resource.get("lastLoginAt")),
            last_refresh_at=resource.get("lastRefreshAt"),
            email=canonical_email(email) if isinstance(email, str) else None,
            email_verified=resource.get("emailVerified"),
            display_name=resource.get("displayName"),
            photo_url=resource.get("photoUrl"),
            salt=resource.get("salt"),
            password_hash=resource.get("passwordHash"),
            password_updated_at_ms=_int_or_none(resource.get("passwordUpdatedAt")),
            valid_since=_int_or_none(resource.get("validSince")),
            custom_auth=bool(resource.get("customAuth")),
            custom_attributes=resource.get("customAttributes"),
            disabled=bool(resource.get("disabled")),
            other_fields=other,
        )


class AccountStore:
    """Accounts by id and by email, safe to use from several threads.

    Readers get copies, so an account can only change through :meth:`put`.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._by_id: dict[str, Account] = {}
        self._id_by_email: dict[str, str] = {}

    @property
    def lock(self) -> threading.RLock:
        """Held by callers that read, decide and write as one step."""
        return self._lock

    def new_local_id(self) -> str:
        with self._lock:
            while True:
                candidate = random_id(LOCAL_ID_LENGTH)
                if candidate not in self._by_id:
                    return candidate

    def get(self, local_id: str) -> Account | None:
        with self._lock:
            account = self._by_id.get(local_id)
            return copy.deepcopy(account) if account else None

    def get_by_email(self, email: str) -> Account | None:
        with self._lock:
            local_id = self._id_by_email.get(canonical_email(email))
            return self.get(local_id) if local_id else None

    def put(self, account: Account) -> Account:
        """Insert or replace ``account`` (matched by ``local_id``)."""
        with self._lock:
            previous = self._by_id.get(account.local_id)
            if previous and previous.email and previous.email != account.email:
                self._id_by_email.pop(previous.email, None)
            stored = copy.deepcopy(account)
            self._by_id[account.local_id] = stored
            if stored.email:
                self._id_by_email[stored.email] = stored.local_id
            return copy.deepcopy(stored)

    def delete(self, local_id: str) -> None:
        with self._lock:
            account = self._by_id.pop(local_id, None)
            if account and account.email:
                self._id_by_email.pop(account.email, None)

    def clear(self) -> None:
        with self._lock:
            self._by_id.clear()
            self._id_by_email.clear()

    def __iter__(self) -> Iterator[Account]:
        with self._lock:
            snapshot = [copy.deepcopy(account) for account in self._by_id.values()]
        return iter(snapshot)

    def __len__(self) -> int:
        with self._lock:
            return len(self._by_id)


def _str_or_none(value: int | None) -> str | None:
    return None if value is None else str(value)


def _int_or_none(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
