"""The end-user database client: RTDB REST calls as the signed-in user.

:class:`Rtdb` runs on pyrebase4's ``Database`` (unchanged) and one
``requests.Session`` whose transport adapter adds a default timeout and
bounded, jittered retries (see ``transport.py`` for which requests may be
replayed). Each call is authorised with a fresh ID token (``?auth=``).

On an emulator the database URL is ``http://host:port``. pyrebase4 builds
``databaseURL + path + ".json?" + params`` and cannot send ``?ns=``, so every
request lands in the emulator's default namespace, ``<project_id>-default-rtdb``
for the project the emulator was started with.

Where pyrebase4's own result handling would get in the way, this module uses
pyrebase4 for the request URL only and decodes the response itself:
``Database.get()`` turns results into ordered ``Pyre`` lists and raises on
``orderBy`` children of mixed types, and ``conditional_set()`` drops the new
ETag. Values come back in the normal form of ``tree.py`` (arrays as
string-keyed objects), the same shape a :class:`~.listener.Listener` mirror has.

Errors: 401 -> :class:`PermissionDenied`; other 4xx -> :class:`RequestError`
(message from the ``{"error": ...}`` body); unreachable, timed out or 5xx after
retries -> :class:`NetworkError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from pyrebase.pyrebase import Database

from .errors import RequestError
from .identity import Auth
from .pushid import PushIds
from .target import Target
from .transport import json_body, make_session, network_error, raise_for_database
from .tree import normalize, url_path

SERVER_TIMESTAMP = {".sv": "timestamp"}

T = TypeVar("T")


def server_increment(delta: int | float) -> dict[str, Any]:
    """The ``increment`` server value (requests carrying it are never blindly retried)."""
    return {".sv": {"increment": delta}}


class _JsonLiteral:
    """A query value pyrebase4 puts in the URL as exact JSON.

    pyrebase4 wraps ``str`` values in quotes without escaping; any other type
    goes through ``str()``, which here is the JSON text.
    """

    def __init__(self, value: Any) -> None:
        self.text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def __str__(self) -> str:
        return self.text


class Rtdb:
    """End-user database client on pyrebase4's Database, through one requests.Session with
    a default timeout and retries mounted as a transport adapter. Paths are slash strings."""

    def __init__(self, target: Target, auth: Auth, *, timeout: float = 10.0) -> None:
        self.target = target
        self.auth = auth
        self.http = make_session(timeout=timeout)
        self._push_ids = PushIds()

    # -- reads -----------------------------------------------------------------------

    def get(
        self,
        path: str,
        *,
        order_by: str | None = None,
        start_at: Any = None,
        end_at: Any = None,
        equal_to: Any = None,
        limit_to_first: int | None = None,
        limit_to_last: int | None = None,
        shallow: bool = False,
    ) -> Any:
        """The value at ``path`` (``None`` if absent); with a query, a dict (unordered).

        ``order_by`` is ``"$key"``, ``"$value"``, ``"$priority"`` or a child path;
        range values are JSON values (strings, numbers, booleans).
        """
        db = self._ref(path)
        query = {
            "orderBy": order_by,
            "startAt": start_at,
            "endAt": end_at,
            "equalTo": equal_to,
        }
        for name, value in query.items():
            if value is not None:
                db.build_query[name] = _JsonLiteral(value)
        if limit_to_first is not None:
            db.limit_to_first(int(limit_to_first))
        if limit_to_last is not None:
            db.limit_to_last(int(limit_to_last))
        if shallow:
            db.shallow()
        token = self.auth.fresh_token()
        url = db.build_request_url(token)
        response = self._send(lambda: self.http.get(url, headers=db.build_headers(token)))
        value = normalize(json_body(response))
        limits = (limit_to_first, limit_to_last)
        is_query = any(v is not None for v in (*query.values(), *limits))
        if is_query and value is None:
            return {}
        return value

    def get_with_etag(self, path: str) -> tuple[Any, str]:
        """The value at ``path`` and its ETag, for :meth:`set_if_match`."""
        db = self._ref(path)
        token = self.auth.fresh_token()
        got = self._call(lambda: db.get_etag(token))
        return normalize(got["value"]), got["ETag"]

    # -- writes ----------------------------------------------------------------------

    def set(self, path: str, value: Any) -> None:
        """Replace the value at ``path`` (``None`` deletes)."""
        db = self._ref(path)
        token = self.auth.fresh_token()
        self._call(lambda: db.set(value, token))

    def update(self, path: str, values: dict[str, Any]) -> None:
        """Multi-path update: each key (may be ``"a/b"``) below ``path`` is replaced, atomically."""
        if not values:
            return
        db = self._ref(path)
        token = self.auth.fresh_token()
        self._call(lambda: db.update(values, token))

    def push(self, path: str, value: Any) -> str:
        """Add a child under a server-made push id and return the id.

        A ``POST`` is never retried once it may have reached the server (it
        could add the child twice); prefer ``new_key()`` + :meth:`set` for
        writes that must survive a flaky network.
        """
        db = self._ref(path)
        token = self.auth.fresh_token()
        reply = self._call(lambda: db.push(value, token))
        if not isinstance(reply, dict) or not isinstance(reply.get("name"), str):
            raise RequestError(200, "the database did not return the new key")
        return reply["name"]

    def delete(self, path: str) -> None:
        """Remove the value at ``path`` (no error if absent)."""
        db = self._ref(path)
        token = self.auth.fresh_token()
        self._call(lambda: db.remove(token))

    def set_if_match(self, path: str, value: Any, etag: str) -> tuple[bool, Any, str]:
        """Write ``value`` only if ``path`` still has ``etag``: ``(ok, current value, etag)``.

        On a conflict nothing is written and the current value and its ETag
        come back for the next attempt. Not retried after a timeout: a replay
        would conflict with its own first attempt; the caller re-reads instead.
        """
        db = self._ref(path)
        token = self.auth.fresh_token()
        url = db.check_token(db.database_url, db.path, token)
        headers = {**db.build_headers(token), "if-match": etag}
        body = json.dumps(value, ensure_ascii=False).encode("utf-8")
        response = self._send(lambda: self.http.put(url, data=body, headers=headers), allow={412})
        current = normalize(json_body(response))
        new_etag = response.headers.get("ETag")
        if new_etag is None:  # some servers only tag conflicts; read the tag back
            current, new_etag = self.get_with_etag(path)
        return response.status_code != 412, current, new_etag

    def new_key(self) -> str:
        """A push id made here (same algorithm and order as Firebase's), for writes by PUT/PATCH."""
        return self._push_ids()

    # -- plumbing --------------------------------------------------------------------

    def _ref(self, path: str) -> Database:
        """A fresh pyrebase4 reference (its query state is per object, so one per call)."""
        db = Database(None, self.target.api_key, self.target.database_url, self.http)
        where = url_path(path)
        if where:
            db.child(where)
        return db

    def _send(
        self,
        request: Callable[[], requests.Response],
        *,
        allow: frozenset[int] | set[int] = frozenset(),
    ) -> requests.Response:
        try:
            response = request()
        except requests.RequestException as exc:
            raise network_error(exc, self.target.database_url, "database") from None
        if response.status_code not in allow:
            raise_for_database(response, self.target.database_url)
        return response

    def _call(self, fn: Callable[[], T]) -> T:
        """A pyrebase4 call, its ``HTTPError(original, text)`` mapped to our errors."""
        try:
            return fn()
        except requests.HTTPError as exc:
            original = exc.args[0] if exc.args else None
            response = getattr(original, "response", None)
            if response is None:
                response = exc.response
            if response is None:
                raise RequestError(0, str(exc)) from None
            raise_for_database(response, self.target.database_url)
            raise RequestError(response.status_code, str(exc)) from None
        except requests.RequestException as exc:
            raise network_error(exc, self.target.database_url, "database") from None
