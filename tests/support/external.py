"""Running the product's own tests against any emulator (issue 14: hold ours to the official one).

With ``--emulator=external`` (or ``EMDASH_FB_TEST_EMULATOR=external``) and the
standard ``FIREBASE_DATABASE_EMULATOR_HOST`` / ``FIREBASE_AUTH_EMULATOR_HOST``
set, the ``emulator`` and ``rules_emu`` fixtures hand out an
:class:`ExternalEmulator` instead of starting the bundled one: the same
``database_host``, ``auth_host``, ``project_id`` and ``env()``, reached only over
HTTP. The rules file is loaded the documented way (``PUT /.settings/rules.json``
with the emulator's owner credential). A test that needs the bundled
emulator's insides (``emu.call(...)``, ``emu.server``) is skipped at that point,
saying so -- only in this mode.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest
import requests

MODE_ENV = "EMDASH_FB_TEST_EMULATOR"
NEEDS_BUNDLED = "needs the bundled emulator's internals (skipped with --emulator=external)"


def wanted(config: pytest.Config) -> bool:
    return (config.getoption("emulator", None) or os.environ.get(MODE_ENV, "")) == "external"


class ExternalEmulator:
    """An emulator someone else started (the official one, or ours in another process)."""

    def __init__(self, project_id: str | None = None) -> None:
        try:
            self.database_host = os.environ["FIREBASE_DATABASE_EMULATOR_HOST"]
            self.auth_host = os.environ["FIREBASE_AUTH_EMULATOR_HOST"]
        except KeyError as exc:
            raise pytest.UsageError(
                f"--emulator=external needs {exc.args[0]} (host:port of the running emulator)"
            ) from None
        self.project_id = project_id or os.environ.get("GCLOUD_PROJECT", "demo-emdash")

    def env(self) -> dict[str, str]:
        return {
            "FIREBASE_DATABASE_EMULATOR_HOST": self.database_host,
            "FIREBASE_AUTH_EMULATOR_HOST": self.auth_host,
            "GCLOUD_PROJECT": self.project_id,
        }

    def load_rules(self, text: str, namespace: str | None = None) -> None:
        ns = namespace or f"{self.project_id}-default-rtdb"
        r = requests.put(
            f"http://{self.database_host}/.settings/rules.json",
            params={"ns": ns},
            data=text,
            headers={"Authorization": "Bearer owner"},
            timeout=10,
        )
        r.raise_for_status()

    def call(self, *args: Any) -> NoReturn:
        pytest.skip(NEEDS_BUNDLED)

    @property
    def server(self) -> NoReturn:
        pytest.skip(NEEDS_BUNDLED)

    def __enter__(self) -> ExternalEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
