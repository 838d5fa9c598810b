"""Routes of the Auth emulator: Google's hosts become path prefixes.

A client with ``FIREBASE_AUTH_EMULATOR_HOST=host:port`` calls
``http://host:port/identitytoolkit.googleapis.com/v1/accounts:signUp?key=K``
where production has ``https://identitytoolkit.googleapis.com/v1/...``; the
legacy ``www.googleapis.com/identitytoolkit/v3/relyingparty/*`` names that
pyrebase4 uses map onto the same operations, as in the official emulator.
"""

from __future__ import annotations

from aiohttp import web

from ..cors import cors
from . import handlers
from .project import AuthProject

AUTH_PROJECT = web.AppKey("auth_project", AuthProject)

IDENTITY_TOOLKIT_V1 = "/identitytoolkit.googleapis.com/v1/"
RELYING_PARTY_V3 = "/www.googleapis.com/identitytoolkit/v3/relyingparty/"
SECURE_TOKEN_V1 = "/securetoken.googleapis.com/v1/token"

V1_OPERATIONS: dict[str, handlers.Operation] = {
    "accounts:signUp": handlers.sign_up,
    "accounts:signInWithPassword": handlers.sign_in_with_password,
    "accounts:signInWithCustomToken": handlers.sign_in_with_custom_token,
    "accounts:lookup": handlers.lookup,
    "accounts:update": handlers.update,
    "accounts:delete": handlers.delete,
}

# Legacy v3 name -> v1 name, the mapping the official emulator applies.
V3_TO_V1 = {
    "signupNewUser": "accounts:signUp",
    "verifyPassword": "accounts:signInWithPassword",
    "verifyCustomToken": "accounts:signInWithCustomToken",
    "getAccountInfo": "accounts:lookup",
    "setAccountInfo": "accounts:update",
    "deleteAccount": "accounts:delete",
}


def create_auth_app(project_id: str, *, project: AuthProject | None = None) -> web.Application:
    """The Auth emulator for ``project_id`` as an aiohttp application.

    Pass ``project`` to share or pre-load the state; either way it is reachable
    as ``app[AUTH_PROJECT]`` (for export/import by the server that runs it).
    """
    state = project if project is not None else AuthProject(project_id)
    app = web.Application(middlewares=[cors, handlers.render_errors])
    app[AUTH_PROJECT] = state

    for name, operation in V1_OPERATIONS.items():
        app.router.add_post(IDENTITY_TOOLKIT_V1 + name, handlers.api_handler(state, operation))
    for old_name, new_name in V3_TO_V1.items():
        handler = handlers.api_handler(state, V1_OPERATIONS[new_name])
        app.router.add_post(RELYING_PARTY_V3 + old_name, handler)
    app.router.add_post(SECURE_TOKEN_V1, handlers.api_handler(state, handlers.refresh))

    emulator = handlers.emulator_handlers(state)
    projects = "/emulator/v1/projects/{project}"
    app.router.add_delete(f"{projects}/accounts", emulator["clear_accounts"])
    app.router.add_get(f"{projects}/config", emulator["get_config"])
    app.router.add_patch(f"{projects}/config", emulator["update_config"])
    app.router.add_get("/", handlers.emulator_info)
    return app
