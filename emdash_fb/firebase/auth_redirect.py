"""Point ``requests``-based clients that hardcode Google's Auth hosts at an emulator.

:class:`EmulatorRedirectAdapter` rewrites ``https://<google auth host>/<path>``
to ``http://<emulator host:port>/<google auth host>/<path>``, the URL form every
Firebase Auth emulator serves. :func:`point_session_at_emulator` mounts it on a
session for the Auth hosts only, so other Google APIs on that session are left
alone. pyrebase4's ``Auth`` needs one more step, :func:`send_pyrebase_auth_through`,
because it bypasses the session it is given.
"""

from __future__ import annotations

import inspect
import types
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

# URL prefixes of the Auth APIs; www.googleapis.com also hosts unrelated APIs.
AUTH_URL_PREFIXES = (
    "https://identitytoolkit.googleapis.com/",
    "https://securetoken.googleapis.com/",
    "https://www.googleapis.com/identitytoolkit/",
)


def emulator_url(url: str, host_port: str) -> str:
    """``https://H/p?q`` -> ``http://host_port/H/p?q``; other URLs are returned as-is."""
    if not url.startswith(AUTH_URL_PREFIXES):
        return url
    parts = urlsplit(url)
    return urlunsplit(("http", host_port, f"/{parts.netloc}{parts.path}", parts.query, ""))


class EmulatorRedirectAdapter(HTTPAdapter):
    """A transport adapter that delivers Auth API requests to an emulator."""

    def __init__(self, host_port: str, **kwargs: Any) -> None:
        if "//" in host_port or "/" in host_port:
            raise ValueError(f"expected host:port without scheme or path, got {host_port!r}")
        super().__init__(**kwargs)
        self.host_port = host_port

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        request.url = emulator_url(request.url or "", self.host_port)
        # Proxies were chosen for the Google URL; the emulator is reached directly.
        kwargs["proxies"] = {}
        return super().send(request, **kwargs)


def point_session_at_emulator(session: requests.Session, host_port: str) -> requests.Session:
    """Send ``session``'s Auth API calls to the emulator at ``host_port``; returns it."""
    adapter = EmulatorRedirectAdapter(host_port)
    for prefix in AUTH_URL_PREFIXES:
        session.mount(prefix, adapter)
    return session


class _SessionAsRequestsModule:
    """Stands in for the ``requests`` module, sending its verb functions through a session."""

    def __init__(self, session: requests.Session) -> None:
        self._session = session

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        return self._session.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._session.get(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._session.post(url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> requests.Response:
        return self._session.put(url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> requests.Response:
        return self._session.patch(url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return self._session.delete(url, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(requests, name)


def send_pyrebase_auth_through(auth: object, session: requests.Session) -> None:
    """Make one pyrebase4 ``Auth`` object send its HTTP calls through ``session``.

    pyrebase4's ``Auth`` methods call the module function ``requests.post``
    (a fresh session per call) rather than the session pyrebase holds, so an
    adapter mounted on that session never sees them. This gives *this object*
    copies of those methods in which the name ``requests`` means ``session``;
    other objects and the ``requests`` module itself are untouched.
    """
    stand_in = _SessionAsRequestsModule(session)
    for name, function in inspect.getmembers(type(auth), inspect.isfunction):
        if name.startswith("__") or "requests" not in function.__code__.co_names:
            continue
        rebound = types.FunctionType(
            function.__code__,
            {**function.__globals__, "requests": stand_in},
            function.__name__,
            function.__defaults__,
            function.__closure__,
        )
        rebound.__kwdefaults__ = function.__kwdefaults__
        setattr(auth, name, types.MethodType(rebound, auth))
