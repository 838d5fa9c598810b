"""The RTDB REST protocol over aiohttp: requests in, calls on the model, responses out.

Parsing a request and changing state are different jobs: this module only
decodes URLs, bodies, credentials and options, calls ``database.Namespace``,
and encodes the result (JSON, ETags, ``print=``, ``shallow``, ``format=export``,
server-sent event streams). Every failure becomes Firebase's status with an
``{"error": "..."}`` body.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import re
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .database import (
    Caller,
    Database,
    IndexNotDefined,
    PermissionDenied,
    PreconditionFailed,
    etag_of,
)
from .idtoken import TokenError, decode_id_token
from .paths import PathError, split_path
from .query import Query, QueryError, parse_query, parse_query_string
from .rules import RulesError, RuleSet
from .streams import DEFAULT_BUFFER_LIMIT, KEEP_ALIVE, StreamListener
from .values import Json, children, is_leaf, plain
from .writes import PARSE_ERROR, DataError

log = logging.getLogger("emdash_fb.emulator.rtdb")

OWNER_TOKEN = "owner"
MAX_BODY_BYTES = 256 * 1024 * 1024
_TIMEOUT_RE = re.compile(r"^(\d+)(ms|s|min)$")
_TIMEOUT_UNITS = {"ms": 0.001, "s": 1.0, "min": 60.0}
_WRITE_SIZE_LIMITS = {"tiny", "small", "medium", "large", "unlimited"}
_RULES_PATH = ("/.settings/rules.json", "/.settings/rules.json/", "/.settings/rules/.json")


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class StreamSettings:
    keep_alive_seconds: float = 30.0
    buffer_limit: int = DEFAULT_BUFFER_LIMIT


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def _dumps(value: Json, pretty: bool) -> str:
    if pretty:
        return json.dumps(value, indent=2, ensure_ascii=False)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def parse_json_body(raw: bytes) -> Json:
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise HttpError(400, PARSE_ERROR) from None


class RtdbHandler:
    """The aiohttp handler for every RTDB URL of one emulator."""

    def __init__(
        self,
        database: Database,
        *,
        project_id: str,
        stream_settings: StreamSettings | None = None,
        clock: Any = time.time,
    ) -> None:
        self.database = database
        self.project_id = project_id
        self.streams = stream_settings or StreamSettings()
        self.clock = clock
        self.active_streams: set[StreamListener] = set()

    # -- entry point -------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except HttpError as exc:
            return _error(exc.status, exc.message)
        except (PathError, DataError, QueryError) as exc:
            return _error(400, str(exc))
        except IndexNotDefined as exc:
            return _error(400, str(exc))
        except PermissionDenied:
            return _error(401, "Permission denied")
        except PreconditionFailed as exc:
            return web.Response(
                status=412,
                text=_dumps(exc.current, False),
                content_type="application/json",
                headers={"ETag": etag_of(exc.current)},
            )
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:  # a bug in the emulator: say so without a traceback on the wire
            log.exception("internal error handling %s %s", request.method, request.rel_url)
            return _error(500, "Internal emulator error; see the emulator log.")

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        params = parse_query_string(request.rel_url.raw_query_string)
        method = request.method.upper()
        override = request.headers.get("X-HTTP-Method-Override") or params.get(
            "x-http-method-override"
        )
        if override and method == "POST":
            method = override.upper()
        raw_path = request.rel_url.raw_path
        if raw_path in _RULES_PATH:
            return await self._rules(request, method, params)
        if not raw_path.endswith(".json"):
            raise HttpError(404, "Not found: database URLs end in .json")
        path = tuple(split_path(raw_path[: -len(".json")]))
        _check_options(params)
        caller = self._caller(request, params)
        ns = self.database.namespace(params.get("ns"))
        pretty = params.get("print") == "pretty"
        silent = params.get("print") == "silent"

        if method == "GET":
            query = parse_query(params)
            if "text/event-stream" in request.headers.get("Accept", ""):
                return await self._stream(request, ns, path, caller, query)
            return self._get(request, ns, path, caller, query, params, pretty, silent)
        if method in ("PUT", "POST", "PATCH"):
            body = await _read_body(request)
            if method == "PUT":
                if_match = request.headers.get("if-match")
                result = ns.set(path, body, caller, if_match)
                return self._write_response(request, ns, path, result, pretty, silent, if_match)
            if request.headers.get("if-match") is not None:
                raise HttpError(400, f"if-match is only supported for PUT and DELETE, not {method}")
            if method == "POST":
                name = ns.push(path, body, caller)
                return self._respond({"name": name}, pretty, silent)
            return self._respond(ns.update(path, body, caller), pretty, silent)
        if method == "DELETE":
            if_match = request.headers.get("if-match")
            ns.delete(path, caller, if_match)
            return self._write_response(request, ns, path, None, pretty, silent, if_match)
        raise HttpError(405, f"Method {method} is not supported")

    # -- credentials ---------------------------------------------------------

    def _caller(self, request: web.Request, params: dict[str, str]) -> Caller:
        token = params.get("auth") or params.get("access_token")
        header = request.headers.get("Authorization", "")
        if not token and header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() not in ("bearer", "firebase") or not value.strip():
                raise HttpError(401, "Could not parse auth token.")
            token = value.strip()
        override = params.get("auth_variable_override")
        if token == OWNER_TOKEN:
            if override is None:
                return Caller(admin=True)
            try:
                auth = json.loads(override)
            except ValueError:
                raise HttpError(
                    400, "auth_variable_override must be a JSON object or null"
                ) from None
            if auth is not None and not isinstance(auth, dict):
                raise HttpError(400, "auth_variable_override must be a JSON object or null")
            return Caller(auth=auth)
        if override is not None:
            raise HttpError(401, "auth_variable_override needs admin credentials")
        if not token:
            return Caller()
        try:
            auth = decode_id_token(token, now=self.clock())
        except TokenError as exc:
            raise HttpError(401, f"Could not parse auth token: {exc}") from None
        exp = auth.get("token", {}).get("exp")
        return Caller(auth=auth, expires_at=float(exp) if isinstance(exp, int | float) else None)

    # -- reads ---------------------------------------------------------------

    def _get(
        self,
        request: web.Request,
        ns: Any,
        path: tuple[str, ...],
        caller: Caller,
        query: Query,
        params: dict[str, str],
        pretty: bool,
        silent: bool,
    ) -> web.Response:
        node = ns.get(path, caller, query)
        if params.get("format") == "export":
            value = node
        elif params.get("shallow") == "true":
            value = _shallow(node)
        else:
            value = plain(node)
        headers: dict[str, str] = {}
        wants_etag = request.headers.get("X-Firebase-ETag", "").lower() == "true"
        if_none_match = request.headers.get("if-none-match")
        if wants_etag or if_none_match is not None:
            tag = etag_of(plain(node)) if query.is_empty else etag_of(value)
            headers["ETag"] = tag
            if if_none_match is not None and if_none_match == tag:
                return web.Response(status=304, headers=headers)
        if silent:
            return web.Response(status=204, headers=headers)
        return web.Response(
            text=_dumps(value, pretty), content_type="application/json", headers=headers
        )

    async def _stream(
        self,
        request: web.Request,
        ns: Any,
        path: tuple[str, ...],
        caller: Caller,
        query: Query,
    ) -> web.StreamResponse:
        ns.check_read(path, caller, query)
        listener = StreamListener(ns, path, caller, query, buffer_limit=self.streams.buffer_limit)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                "Access-Control-Allow-Origin": "*",
            }
        )
        await response.prepare(request)
        if request.transport is not None:
            listener.on_overflow = functools.partial(_reset_connection, request.transport)
        listener.open()
        self.active_streams.add(listener)
        revoke_timer = None
        if caller.expires_at is not None:
            delay = max(0.0, caller.expires_at - self.clock())
            revoke_timer = asyncio.get_running_loop().call_later(delay, listener.revoke)
        try:
            while True:
                chunk = await listener.next_frames(self.streams.keep_alive_seconds)
                if chunk is None:
                    break
                await response.write(chunk or KEEP_ALIVE)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            if revoke_timer is not None:
                revoke_timer.cancel()
            listener.close("disconnected")
            self.active_streams.discard(listener)
        return response

    # -- writes --------------------------------------------------------------

    def _write_response(
        self,
        request: web.Request,
        ns: Any,
        path: tuple[str, ...],
        result: Json,
        pretty: bool,
        silent: bool,
        if_match: str | None,
    ) -> web.Response:
        headers: dict[str, str] = {}
        if if_match is not None or request.headers.get("X-Firebase-ETag", "").lower() == "true":
            headers["ETag"] = ns.etag(path)
        if silent:
            return web.Response(status=204, headers=headers)
        return web.Response(
            text=_dumps(result, pretty), content_type="application/json", headers=headers
        )

    def _respond(self, value: Json, pretty: bool, silent: bool) -> web.Response:
        if silent:
            return web.Response(status=204)
        return web.Response(text=_dumps(value, pretty), content_type="application/json")

    # -- rules ---------------------------------------------------------------

    async def _rules(
        self, request: web.Request, method: str, params: dict[str, str]
    ) -> web.Response:
        caller = self._caller(request, params)
        ns = self.database.namespace(params.get("ns"))
        if method == "GET":
            if not caller.admin:  # as on production: reading the rules takes an admin
                raise PermissionDenied()
            if params.get("format") == "strict":
                return web.json_response(ns.rules.strict())
            return web.Response(text=ns.rules.source, content_type="application/json")
        if method == "PUT":
            if not caller.admin:
                raise PermissionDenied()
            raw = await request.read()
            try:
                rules = RuleSet.from_text(raw.decode("utf-8"))
            except (RulesError, UnicodeDecodeError) as exc:
                raise HttpError(400, str(exc)) from None
            ns.set_rules(rules)
            return web.json_response({"status": "ok"})
        raise HttpError(405, f"Method {method} is not supported on rules")


def _reset_connection(transport: asyncio.BaseTransport) -> None:
    """Drop a connection at once, discarding what the kernel still buffers for it."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _shallow(node: Json) -> Json:
    if node is None or is_leaf(node):
        return plain(node)
    return {k: (True if not is_leaf(c) else plain(c)) for k, c in children(node).items()}


def _check_options(params: dict[str, str]) -> None:
    timeout = params.get("timeout")
    if timeout is not None:
        m = _TIMEOUT_RE.match(timeout)
        if not m or int(m.group(1)) * _TIMEOUT_UNITS[m.group(2)] > 900:
            raise HttpError(400, "timeout must be like 3ms, 3s or 3min, and at most 15min")
    limit = params.get("writeSizeLimit")
    if limit is not None and limit not in _WRITE_SIZE_LIMITS:
        raise HttpError(400, "writeSizeLimit must be tiny, small, medium, large or unlimited")
    pr = params.get("print")
    if pr is not None and pr not in ("pretty", "silent"):
        raise HttpError(400, "print must be pretty or silent")
    fmt = params.get("format")
    if fmt is not None and fmt != "export":
        raise HttpError(400, "format must be export")
    shallow = params.get("shallow")
    if shallow is not None and shallow not in ("true", "false"):
        raise HttpError(400, "shallow must be true or false")


async def _read_body(request: web.Request) -> Json:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise HttpError(413, "Request body too large: a single write is limited to 256 MB")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise HttpError(
            413, "Request body too large: a single write is limited to 256 MB"
        ) from None
    return parse_json_body(raw)
