"""HTTP side of the Auth emulator: request bodies in, API replies out.

Each API operation is a small function that reads typed fields from a
:class:`RequestBody` and calls :class:`AuthProject`; :func:`api_handler` wraps
one in the checks every Google API call gets (an API key, a JSON or form body).
Routing lives in ``app.py``; state and rules live in ``project.py``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from .errors import AuthApiError, bad_request, internal_error, invalid_argument, missing_api_key
from .errors import not_found as not_found_error
from .project import AuthProject

logger = logging.getLogger(__name__)

Operation = Callable[[AuthProject, "RequestBody"], dict[str, Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_SNAKE_WORD = re.compile(r"_([a-z0-9])")


class RequestBody:
    """The fields of a request body, checked against the expected type on access.

    ``null`` reads as absent (pyrebase4 sends ``"photoURL": null``); numbers read
    as strings where a string is expected, as Google's API frontend does.
    """

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    def string(self, name: str) -> str | None:
        value = self.fields.get(name)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise invalid_argument(f"/{name} must be string")

    def boolean(self, name: str) -> bool | None:
        value = self.fields.get(name)
        if value is None or isinstance(value, bool):
            return value
        raise invalid_argument(f"/{name} must be boolean")

    def string_list(self, name: str) -> list[str] | None:
        value = self.fields.get(name)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise invalid_argument(f"/{name} must be array of strings")
        return value

    def object(self) -> dict[str, Any]:
        return self.fields


def camel_case(name: str) -> str:
    """``refresh_token`` -> ``refreshToken``; camelCase names are left alone."""
    return _SNAKE_WORD.sub(lambda match: match.group(1).upper(), name)


async def read_body(request: web.Request) -> RequestBody:
    """A JSON object or form-encoded body (empty means ``{}``), keys in camelCase."""
    try:
        text = await request.text()
    except UnicodeDecodeError as exc:
        raise invalid_argument("Body is not valid UTF-8.", reason="parseError") from exc
    is_form = request.content_type == "application/x-www-form-urlencoded"
    # `curl -d '{...}'` labels JSON as a form; a form body never starts with "{".
    if is_form and not text.lstrip().startswith("{"):
        fields: Any = dict(parse_qsl(text, keep_blank_values=True))
    elif not text.strip():
        fields = {}
    else:
        try:
            fields = json.loads(text)
        except ValueError as exc:
            raise invalid_argument(str(exc), reason="parseError") from exc
        if not isinstance(fields, dict):
            raise invalid_argument("The body must be a JSON object.", reason="parseError")
    return RequestBody({camel_case(key): value for key, value in fields.items()})


def api_key(request: web.Request) -> str | None:
    """The API key from ``?key=`` or the ``X-Goog-Api-Key`` header."""
    return request.query.get("key") or request.headers.get("X-Goog-Api-Key") or None


def api_handler(project: AuthProject, operation: Operation) -> Handler:
    """An aiohttp handler that runs ``operation`` for a keyed API request.

    Like the official emulator, any non-empty key is accepted and a missing
    one is refused with 403 PERMISSION_DENIED.
    """

    async def handle(request: web.Request) -> web.StreamResponse:
        if api_key(request) is None:
            raise missing_api_key()
        body = await read_body(request)
        return web.json_response(operation(project, body))

    return handle


# -- Identity Toolkit and Secure Token operations ---------------------------------------


def sign_up(project: AuthProject, body: RequestBody) -> dict[str, Any]:
    return project.sign_up(
        email=body.string("email"),
        password=body.string("password"),
        display_name=body.string("displayName"),
    )


def sign_in_with_password(project: AuthProject, body: RequestBody) -> dict[str, Any]:
    return project.sign_in_with_password(
        email=body.string("email"), password=body.string("password")
    )


def sign_in_with_custom_token(project: AuthProject, body: RequestBody) -> dict[str, Any]:
    return project.sign_in_with_custom_token(body.string("token"))


def lookup(project: AuthProject, body: RequestBody) -> dict[str, Any]:
    return project.lookup(body.string("idToken"))


def update(project: AuthProject, body: RequestBody) -> dict[str, Any]:
    # The API field is photoUrl; pyrebase4 and the JS SDK docs spell it photoURL.
    photo_url = body.string("photoUrl")
    if photo_url is None:
        photo_url = body.string("photoURL")
    return project.update_account(
        id_token=body.string("idToken"),
        display_name=body.string("displayName"),
        photo_url=photo_url,
        email=body.string("email"),
        password=body.string("password"),
        delete_attributes=body.string_list("deleteAttribute"),
    )


def delete(project: AuthProject, body: RequestBody) -> dict[str, Any]:
    return project.delete_account(body.string("idToken"))


def refresh(project: AuthProject, body: RequestBody) -> dict[str, Any]:
    return project.exchange_refresh_token(
        grant_type=body.string("grantType"), refresh_token=body.string("refreshToken")
    )


# -- emulator-only endpoints ------------------------------------------------------------


async def emulator_info(request: web.Request) -> web.StreamResponse:
    return web.json_response({"authEmulator": {"ready": True, "implementation": "emdash-fb"}})


def emulator_handlers(project: AuthProject) -> dict[str, Handler]:
    """Handlers of ``/emulator/v1/projects/{project}/...`` (no API key needed)."""

    def own_project(request: web.Request) -> None:
        requested = request.match_info["project"]
        if requested != project.project_id:
            raise bad_request(
                f"Project {requested} is not served here; this emulator serves {project.project_id}."
            )

    async def clear_accounts(request: web.Request) -> web.StreamResponse:
        own_project(request)
        project.delete_all_accounts()
        return web.json_response({})

    async def get_config(request: web.Request) -> web.StreamResponse:
        own_project(request)
        return web.json_response(project.config())

    async def update_config(request: web.Request) -> web.StreamResponse:
        own_project(request)
        body = await read_body(request)
        return web.json_response(project.update_config(body.object()))

    return {
        "clear_accounts": clear_accounts,
        "get_config": get_config,
        "update_config": update_config,
    }


# -- errors -----------------------------------------------------------------------------


@web.middleware
async def render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure as Google's JSON error; an unexpected exception is a 500, logged."""
    try:
        return await handler(request)
    except AuthApiError as error:
        return _error_response(error)
    except web.HTTPNotFound:
        return _error_response(not_found_error())
    except web.HTTPMethodNotAllowed:
        return _error_response(not_found_error())
    except web.HTTPException:
        raise
    except Exception as exc:
        logger.exception("Auth emulator failed on %s %s", request.method, request.path)
        return _error_response(internal_error(f"{type(exc).__name__}: {exc}"))


def _error_response(error: AuthApiError) -> web.Response:
    return web.json_response(error.to_json(), status=error.code)
