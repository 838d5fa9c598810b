"""Which Firebase project (or emulator) to talk to, resolved from the environment and a config file.

Precedence, highest first:

1. ``EMDASH_FB_API_KEY``, ``EMDASH_FB_DATABASE_URL``, ``EMDASH_FB_PROJECT_ID``;
2. ``config_dir()/config.json``, a Firebase web app config as the Firebase
   console shows it (``{"apiKey", "databaseURL", "projectId", ...}``).

The standard emulator variables switch to emulators. With
``FIREBASE_DATABASE_EMULATOR_HOST=host:port`` the database URL is
``http://host:port`` and the config file is not read at all (a local run never
picks up a production identity): the project id is ``EMDASH_FB_PROJECT_ID``,
else ``GCLOUD_PROJECT``, else ``demo-emdash``. pyrebase4 cannot send the
emulator's ``?ns=`` parameter, so every request goes to the emulator's default
namespace, ``<project_id>-default-rtdb`` for the project the emulator was
started with. With ``FIREBASE_AUTH_EMULATOR_HOST`` set, sign-in goes to that
emulator and the API key defaults to ``fake-api-key`` (emulators accept any).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .errors import ConfigError

APP_DIR_NAME = "emdash-fb"
CONFIG_FILE = "config.json"
DEFAULT_EMULATOR_PROJECT = "demo-emdash"
EMULATOR_API_KEY = "fake-api-key"

ENV_API_KEY = "EMDASH_FB_API_KEY"
ENV_DATABASE_URL = "EMDASH_FB_DATABASE_URL"
ENV_PROJECT_ID = "EMDASH_FB_PROJECT_ID"
ENV_DATABASE_EMULATOR = "FIREBASE_DATABASE_EMULATOR_HOST"
ENV_AUTH_EMULATOR = "FIREBASE_AUTH_EMULATOR_HOST"
#: Every variable that says which project to talk to.
ENV_VARS = (ENV_DATABASE_EMULATOR, ENV_AUTH_EMULATOR, ENV_PROJECT_ID, ENV_DATABASE_URL, ENV_API_KEY)

_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-]+:\d{1,5}$|^\[[0-9A-Fa-f:]+\]:\d{1,5}$")


@dataclass(frozen=True)
class Target:
    """One Firebase project as the end-user client sees it."""

    project_id: str
    api_key: str
    database_url: str
    database_emulator: str | None = None
    auth_emulator: str | None = None

    @property
    def is_emulator(self) -> bool:
        """True when the database is an emulator (sign-in may still be real)."""
        return self.database_emulator is not None

    @property
    def key(self) -> str:
        """Names this target in saved credentials, so identities never cross projects."""
        auth = f"auth-emulator:{self.auth_emulator}" if self.auth_emulator else "auth"
        return f"{self.project_id} {auth} {self.database_url}"

    def describe(self) -> str:
        """One line for ``config show``."""
        if self.database_emulator:
            where = (
                f"emulator database {self.database_url} "
                f"(namespace {self.project_id}-default-rtdb if the emulator runs this project)"
            )
        else:
            where = f"database {self.database_url}"
        auth = (
            f"auth emulator {self.auth_emulator}"
            if self.auth_emulator
            else f"Firebase Auth (api key {_mask(self.api_key)})"
        )
        return f"project {self.project_id}: {where}, {auth}"


def config_dir(env: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CONFIG_HOME/emdash-fb``, or ``~/.config/emdash-fb``."""
    xdg = env.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / APP_DIR_NAME
    home = env.get("HOME")
    base = Path(home) if home else Path.home()
    return base / ".config" / APP_DIR_NAME


def resolve_target(env: Mapping[str, str] = os.environ) -> Target:
    """The target the environment and config file name; :class:`ConfigError` if there is none."""
    db_emulator = _emulator_host(env, ENV_DATABASE_EMULATOR)
    auth_emulator = _emulator_host(env, ENV_AUTH_EMULATOR)
    if db_emulator is not None:
        return _emulator_target(env, db_emulator, auth_emulator)

    file_config = _read_config_file(config_dir(env) / CONFIG_FILE)
    database_url = env.get(ENV_DATABASE_URL) or _str(file_config, "databaseURL")
    api_key = env.get(ENV_API_KEY) or _str(file_config, "apiKey")
    project_id = env.get(ENV_PROJECT_ID) or _str(file_config, "projectId")
    if not api_key and auth_emulator:
        api_key = EMULATOR_API_KEY

    missing = []
    if not database_url:
        missing.append(f"{ENV_DATABASE_URL} (your Realtime Database URL)")
    if not api_key:
        missing.append(f"{ENV_API_KEY} (your web API key)")
    if missing:
        raise ConfigError(
            "no Firebase project configured: to try it locally run `make demo` (or "
            f"`emdash-fb emulators start` and set the {ENV_DATABASE_EMULATOR} and "
            f"{ENV_AUTH_EMULATOR} it prints); for a real project set {' and '.join(missing)} "
            f"or save your web app config as {config_dir(env) / CONFIG_FILE}"
        )
    assert database_url is not None and api_key is not None
    database_url = _check_database_url(database_url)
    if not project_id:
        project_id = _project_from_url(database_url)
    return Target(project_id, api_key, database_url, None, auth_emulator)


def _emulator_target(env: Mapping[str, str], db_host: str, auth_host: str | None) -> Target:
    project_id = env.get(ENV_PROJECT_ID) or env.get("GCLOUD_PROJECT") or DEFAULT_EMULATOR_PROJECT
    api_key = env.get(ENV_API_KEY) or (EMULATOR_API_KEY if auth_host else None)
    if not api_key:
        raise ConfigError(
            f"{ENV_DATABASE_EMULATOR} is set but {ENV_AUTH_EMULATOR} is not: set it to the Auth "
            f"emulator's host:port (emdash-fb emulators start prints both), or set {ENV_API_KEY} "
            "to sign in with real Firebase Auth"
        )
    return Target(project_id, api_key, f"http://{db_host}", db_host, auth_host)


def _emulator_host(env: Mapping[str, str], name: str) -> str | None:
    value = (env.get(name) or "").strip()
    if not value:
        return None
    if value.startswith(("http://", "https://")):
        value = value.split("://", 1)[1].rstrip("/")
    if not _HOST_PORT.match(value):
        raise ConfigError(f"{name} must be host:port (like 127.0.0.1:9000), not {value!r}")
    return value


def _read_config_file(path: Path) -> dict[str, object]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"can't read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not valid JSON ({exc}); paste the Firebase web config"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f'{path} must hold a JSON object like {{"apiKey": ..., "databaseURL": ...}}'
        )
    return data


def _str(config: Mapping[str, object], key: str) -> str | None:
    value = config.get(key)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _check_database_url(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ConfigError(
            f"the database URL must look like https://<db>.firebaseio.com, not {url!r}"
        )
    if parts.query or parts.fragment or parts.path.strip("/"):
        raise ConfigError(
            f"the database URL must be just scheme and host (no path or ?ns=): {url!r}; "
            f"for an emulator set {ENV_DATABASE_EMULATOR} instead"
        )
    return f"{parts.scheme}://{parts.netloc}"


def _project_from_url(url: str) -> str:
    """``https://foo-default-rtdb.europe-west1.firebasedatabase.app`` -> ``foo``."""
    label = urlsplit(url).netloc.split(".")[0]
    return label.removesuffix("-default-rtdb") or label


def _mask(api_key: str) -> str:
    return api_key if len(api_key) <= 8 else f"{api_key[:6]}…{api_key[-4:]}"
