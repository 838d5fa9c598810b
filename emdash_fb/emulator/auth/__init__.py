"""The bundled Firebase Auth emulator: the Identity Toolkit and Secure Token endpoints
a client needs (sign-up, password and custom-token sign-in, lookup, update, delete,
refresh), speaking the official emulator's wire format and issuing its unsigned
ID tokens.

Layout: ``accounts.py`` and ``tokens.py`` hold users and refresh tokens,
``custom_tokens.py`` reads custom tokens, ``project.py`` runs the operations,
and ``handlers.py`` and ``app.py`` are the HTTP side. (Pointing clients at an
emulator is the client layer's job: ``emdash_fb/firebase/auth_redirect.py``.)
"""

from .app import AUTH_PROJECT, create_auth_app
from .errors import AuthApiError
from .project import AuthProject

__all__ = [
    "AUTH_PROJECT",
    "AuthApiError",
    "AuthProject",
    "create_auth_app",
]
