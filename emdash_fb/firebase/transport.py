"""HTTP plumbing shared by sign-in and the database client: timeouts, retries, error mapping.

Both pyrebase4 objects (``Auth`` and ``Database``) send every request through a
``requests.Session`` from :func:`make_session`. Its transport adapter gives
each request a default timeout and retries transient failures (connection
errors, timeouts, 5xx, 429) with capped exponential backoff and jitter.

A request is retried after it may have reached the server only if replaying it
is harmless. ``GET``, ``PUT``, ``DELETE`` and ``PATCH`` are idempotent on RTDB
except when they carry an ``increment`` server value or an ``if-match``
precondition (a replayed conditional write would report a conflict with
itself); those, and every ``POST``, are retried only when the connection was
never made. The session layer therefore writes with client-made keys
(``Rtdb.new_key()`` + ``PUT``/``PATCH``) rather than ``POST``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, ReadTimeoutError
from urllib3.util.retry import Retry

from .errors import NetworkError, PermissionDenied, RequestError

DEFAULT_TIMEOUT = 10.0
RETRIES = 3
BACKOFF_BASE = 0.2
BACKOFF_CAP = 5.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})

ReplaySafe = Callable[[requests.PreparedRequest], bool]


class JitteredRetry(Retry):
    """urllib3's ``Retry`` with full-range jitter: ``base * 2**n`` scaled by 0.5..1, capped."""

    def get_backoff_time(self) -> float:
        errors = 0
        for attempt in reversed(self.history):
            if attempt.redirect_location is not None:
                break
            errors += 1
        if errors == 0:
            return 0.0
        delay = min(BACKOFF_CAP, self.backoff_factor * (2 ** (errors - 1)))
        return delay * random.uniform(0.5, 1.0)


def retry_policy(*, replayable: bool, retries: int = RETRIES) -> Retry:
    """Retries for one request: everything transient, or (``replayable=False``) connects only."""
    if replayable:
        return JitteredRetry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=5,
            allowed_methods=None,  # this policy is only chosen for replay-safe requests
            status_forcelist=RETRY_STATUSES,
            backoff_factor=BACKOFF_BASE,
            raise_on_status=False,
            respect_retry_after_header=False,  # keep every call's worst case bounded
        )
    return JitteredRetry(
        total=retries,
        connect=retries,
        read=False,  # a read error means the request may have arrived: raise it as is
        status=0,
        other=0,
        redirect=5,
        backoff_factor=BACKOFF_BASE,
        raise_on_status=False,
    )


def database_replay_safe(request: requests.PreparedRequest) -> bool:
    """Whether sending this database request twice leaves the same result as once."""
    if (request.method or "").upper() not in IDEMPOTENT_METHODS:
        return False
    if "if-match" in request.headers:
        return False
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    return not (body and b'".sv"' in body and b"increment" in body)


def always_replay_safe(request: requests.PreparedRequest) -> bool:
    """Auth calls: a replayed sign-in, refresh or profile update is harmless."""
    return True


class ResilientAdapter(HTTPAdapter):
    """An adapter with a default timeout and a retry policy chosen per request.

    ``HTTPAdapter`` reads its retry policy from ``self.max_retries``; a second,
    connect-only adapter serves requests that must not be replayed, so the
    choice is made per request without mutating shared state.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        replay_safe: ReplaySafe = database_replay_safe,
        retries: int = RETRIES,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("max_retries", retry_policy(replayable=True, retries=retries))
        super().__init__(**kwargs)
        self.timeout = timeout
        self.replay_safe = replay_safe
        self._once = HTTPAdapter(max_retries=retry_policy(replayable=False, retries=retries))

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.replay_safe(request):
            return super().send(request, **kwargs)
        return self._once.send(request, **kwargs)

    def close(self) -> None:
        self._once.close()
        super().close()


def make_session(
    *,
    timeout: float = DEFAULT_TIMEOUT,
    replay_safe: ReplaySafe = database_replay_safe,
    retries: int = RETRIES,
) -> requests.Session:
    """A session whose every request has a timeout and bounded, jittered retries."""
    session = requests.Session()
    adapter = ResilientAdapter(timeout=timeout, replay_safe=replay_safe, retries=retries)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def error_message(text: str) -> str:
    """The ``error`` of a Firebase error body (RTDB: a string; Google APIs: ``{message}``),
    else the start of the body ("" when it is empty)."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        error = error.get("message")
    if isinstance(error, str) and error.strip():
        return error.strip()
    return text.strip()[:200]


def error_text(response: requests.Response) -> str:
    """``error_message`` of a response, or its status when the body says nothing."""
    return error_message(response.text or "") or response.reason or f"HTTP {response.status_code}"


def raise_for_database(response: requests.Response, where: str) -> None:
    """Map an RTDB response to our errors: 401, other 4xx, 5xx (after retries)."""
    status = response.status_code
    if status < 400:
        return
    message = error_text(response)
    if status == 401:
        raise PermissionDenied(f"permission denied: {message}")
    if status in RETRY_STATUSES:
        raise NetworkError(f"the database at {where} kept failing ({status}: {message})")
    raise RequestError(status, message)


def network_error(exc: requests.RequestException, where: str, what: str) -> NetworkError:
    """``can't reach the <what> at <where>``, with the low-level reason in brief."""
    return NetworkError(f"can't reach the {what} at {where} ({failure_reason(exc)})")


def failure_reason(exc: requests.RequestException) -> str:
    """A few words on why a request failed, looking through urllib3's retry wrapper."""
    cause: object = exc.args[0] if exc.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    if isinstance(exc, requests.Timeout) or isinstance(cause, TimeoutError | ReadTimeoutError):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


def json_body(response: requests.Response) -> Any:
    """The JSON body of a successful response (``None`` when empty)."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        raise RequestError(
            response.status_code, "the server sent a response that is not JSON"
        ) from None
