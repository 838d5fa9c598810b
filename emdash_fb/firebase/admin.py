"""The admin-side database clients: firebase-admin as a runner, or as the project's admin.

:class:`RunnerDatabase` never uses rule-bypassing admin rights. firebase-admin is
given a ``databaseAuthVariableOverride`` whose token carries ``runner: true``,
so every read and write is judged by the rules as that runner identity (a
runner bug cannot rewrite membership). On an emulator firebase-admin sends the
emulator's owner token plus the override; on a real project it authenticates
with the service account in ``GOOGLE_APPLICATION_CREDENTIALS`` plus the override.

:class:`AdminDatabase` is the same client without the override: full admin
rights, which bypass the rules. Only ``emdash-fb admin`` uses it, to manage
the owners' allowlist that no client may write.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import firebase_admin
from firebase_admin import credentials, db, exceptions

from .errors import ConfigError, NetworkError, PermissionDenied, RequestError
from .listener import Grant

RUNNER_CLAIM = "runner"


def runner_auth(runner_id: str) -> dict[str, Any]:
    """The auth object the rules see for a runner."""
    return {"uid": f"runner:{runner_id}", "token": {RUNNER_CLAIM: True}}


def default_database_url(project_id: str) -> str:
    return f"https://{project_id}-default-rtdb.firebaseio.com"


class AdminDatabase:
    """Thin, typed wrapper over firebase-admin's ``db``: admin rights unless ``auth`` is given.

    ``auth`` is the ``databaseAuthVariableOverride`` the rules judge every
    request as (see :class:`RunnerDatabase`); ``None`` means the project's admin.
    """

    def __init__(
        self,
        *,
        project_id: str,
        database_url: str | None = None,
        env: Mapping[str, str] = os.environ,
        timeout: float = 15.0,
        auth: dict[str, Any] | None = None,
        name: str = "admin",
    ) -> None:
        url = database_url or env.get("EMDASH_FB_DATABASE_URL") or default_database_url(project_id)
        emulator = env.get("FIREBASE_DATABASE_EMULATOR_HOST")
        if emulator and url.startswith("http://"):
            url = default_database_url(project_id)
        self.database_url = url
        self.emulator_host = emulator or None
        self.auth_override = auth
        if emulator:
            os.environ["FIREBASE_DATABASE_EMULATOR_HOST"] = emulator  # firebase-admin reads it here
            cred: Any = _NoCredential()
        else:
            path = env.get("GOOGLE_APPLICATION_CREDENTIALS")
            if not path:
                raise ConfigError(
                    "on a real project this needs a service account: "
                    "set GOOGLE_APPLICATION_CREDENTIALS to its JSON key file"
                )
            cred = credentials.Certificate(path)
        options: dict[str, Any] = {
            "databaseURL": url,
            "projectId": project_id,
            "httpTimeout": timeout,
        }
        if auth is not None:
            options["databaseAuthVariableOverride"] = auth
        self.app = firebase_admin.initialize_app(
            cred, options, name=f"emdash-{name}-{uuid.uuid4().hex[:8]}"
        )

    def close(self) -> None:
        firebase_admin.delete_app(self.app)

    def ref(self, path: str) -> db.Reference:
        return db.reference("/" + path.strip("/"), app=self.app)

    # -- calls (sync; the runner runs them in threads) ---------------------

    def get(self, path: str) -> Any:
        return _call(lambda: self.ref(path).get())

    def query(
        self,
        path: str,
        *,
        order_by: str,
        start_at: Any = None,
        end_at: Any = None,
        limit_to_last: int | None = None,
    ) -> dict[str, Any]:
        """A query on the children of ``path`` (``order_by``: ``"$key"`` or a child):
        ``{}`` when nothing matches. Ranges are inclusive, the limit applies after them."""

        def run() -> Any:
            ref = self.ref(path)
            q = ref.order_by_key() if order_by == "$key" else ref.order_by_child(order_by)
            if start_at is not None:
                q = q.start_at(start_at)
            if end_at is not None:
                q = q.end_at(end_at)
            if limit_to_last is not None:
                q = q.limit_to_last(limit_to_last)
            return q.get()

        value = _call(run)
        return dict(value) if isinstance(value, dict) else {}

    def update(self, path: str, values: dict[str, Any]) -> None:
        _call(lambda: self.ref(path).update(values))

    def set(self, path: str, value: Any) -> None:
        _call(lambda: self.ref(path).set(value))

    def delete(self, path: str) -> None:
        _call(lambda: self.ref(path).delete())

    def get_with_etag(self, path: str) -> tuple[Any, str]:
        value, etag = _call(lambda: self.ref(path).get(etag=True))
        return value, etag

    def set_if_match(self, path: str, value: Any, etag: str) -> tuple[bool, Any, str]:
        """Conditional PUT (``if-match``): (ok, current value, current etag)."""
        return _call(lambda: self.ref(path).set_if_unchanged(etag, value))


class AdminStreamCredentials:
    """What a listener needs to stream as this client (see ``listener.StreamCredentials``).

    On an emulator: the owner credential, the namespace and the auth override.
    On a real project: an OAuth2 access token from the service account (refreshed
    before it expires) and the auth override, as the REST API documents.
    """

    def __init__(self, db: AdminDatabase) -> None:
        self.db = db
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        if self.db.emulator_host:
            return f"http://{self.db.emulator_host}"
        return self.db.database_url

    def _params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.db.auth_override is not None:
            params["auth_variable_override"] = json.dumps(
                self.db.auth_override, separators=(",", ":")
            )
        if self.db.emulator_host:
            host = self.db.database_url.split("//", 1)[-1]
            params["ns"] = host.split(".", 1)[0]
        return params

    def current(self, *, min_valid: float | None = None) -> Grant:
        if self.db.emulator_host:
            return Grant("owner", float("inf"), self._params(), {"Authorization": "Bearer owner"})
        with self._lock:
            try:
                token = self.db.app.credential.get_access_token()
            except Exception as exc:  # google-auth raises its own transport errors
                raise NetworkError(f"can't get an access token: {type(exc).__name__}") from None
        expiry = token.expiry.timestamp() if token.expiry is not None else time.time() + 3600
        return Grant(
            token.access_token, expiry, {**self._params(), "access_token": token.access_token}
        )

    def refresh(self, replacing: str | None = None) -> Grant:
        return self.current()


class RunnerDatabase(AdminDatabase):
    """The database as one runner identity: every request judged by the rules as a runner."""

    def __init__(
        self,
        runner_id: str,
        *,
        project_id: str,
        database_url: str | None = None,
        env: Mapping[str, str] = os.environ,
        timeout: float = 15.0,
    ) -> None:
        self.runner_id = runner_id
        self.uid = runner_auth(runner_id)["uid"]
        super().__init__(
            project_id=project_id,
            database_url=database_url,
            env=env,
            timeout=timeout,
            auth=runner_auth(runner_id),
            name=f"runner-{runner_id}",
        )


class _NoCredential(credentials.Base):
    """Emulator mode: firebase-admin sends the owner token itself; no Google credential."""

    def get_credential(self) -> Any:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()


_QUERY = re.compile(r"\?[^\s'\")<>]*")
_NOISE = re.compile(r"\(Caused by .*|<urllib3[^>]*>|HTTPConnectionPool\([^)]*\):?", re.S)


def _brief(exc: Exception) -> str:
    """An error from firebase-admin in a few words: no query strings (they carry the auth
    override), no urllib3 object dumps."""
    text = _NOISE.sub("", _QUERY.sub("", str(exc)))
    text = " ".join(text.split()).strip(" :")
    return text[:160] or type(exc).__name__


def _call(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (exceptions.UnauthenticatedError, exceptions.PermissionDeniedError) as exc:
        raise PermissionDenied(_brief(exc) or "Permission denied") from None
    except (exceptions.UnavailableError, exceptions.DeadlineExceededError) as exc:
        raise NetworkError(f"can't reach the database ({_brief(exc)})") from None
    except exceptions.FirebaseError as exc:
        if exc.code == "UNKNOWN" and exc.http_response is None:
            raise NetworkError(f"can't reach the database ({_brief(exc)})") from None
        status = exc.http_response.status_code if exc.http_response is not None else 0
        raise RequestError(status, _brief(exc)) from None
