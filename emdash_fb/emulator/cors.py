"""CORS for the emulator's HTTP services, answered as Google's production endpoints do.

A browser page (the web viewer) calls RTDB REST with ``fetch`` and
``EventSource`` and the Auth REST API, from its own origin. Production answers
every response with ``Access-Control-Allow-Origin: *`` and answers a preflight
(``OPTIONS`` with ``Access-Control-Request-Method``) with the methods it serves
and the headers asked for. Credentials are never cookies (an ID token travels
in ``auth=`` or ``Authorization``), so ``*`` gives a page nothing it couldn't
send anyway. This middleware owns that, for both services.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
METHODS = "GET, PUT, POST, PATCH, DELETE, OPTIONS"
EXPOSED = "ETag, Content-Type, Content-Length"
MAX_AGE_S = "3600"


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return web.Response(
            status=204,
            headers={
                ALLOW_ORIGIN: "*",
                "Access-Control-Allow-Methods": METHODS,
                "Access-Control-Allow-Headers": request.headers.get(
                    "Access-Control-Request-Headers", ""
                ),
                "Access-Control-Max-Age": MAX_AGE_S,
                "Vary": "Access-Control-Request-Headers",
            },
        )
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[ALLOW_ORIGIN] = "*"
        raise
    if not response.prepared:  # a stream sets its own headers before it starts
        response.headers.setdefault(ALLOW_ORIGIN, "*")
        response.headers.setdefault("Access-Control-Expose-Headers", EXPOSED)
    return response
