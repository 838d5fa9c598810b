"""Reading the emulator settings from an official-format ``firebase.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PROJECT = "demo-emdash"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORTS = {"database": 9000, "auth": 9099}
SERVICES = ("database", "auth")


class ConfigError(ValueError):
    """A firebase.json problem, worded for the person running the command."""


def default_namespace(project_id: str) -> str:
    """Requests without ``?ns=`` go to the project's default instance name."""
    return f"{project_id}-default-rtdb"


@dataclass
class EmulatorConfig:
    project_id: str = DEFAULT_PROJECT
    hosts: dict[str, str] = field(default_factory=lambda: dict.fromkeys(SERVICES, DEFAULT_HOST))
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    rules_path: Path | None = None
    only: tuple[str, ...] = SERVICES
    import_dir: Path | None = None
    export_on_exit: Path | None = None

    @classmethod
    def from_file(cls, path: Path | str, **overrides: object) -> EmulatorConfig:
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file (pass --config FILE)") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a JSON object at the top level")
        cfg = cls()
        emulators = raw.get("emulators") or {}
        for service in SERVICES:
            entry = emulators.get(service) or {}
            if "host" in entry:
                cfg.hosts[service] = str(entry["host"])
            if "port" in entry:
                try:
                    cfg.ports[service] = int(entry["port"])
                except (TypeError, ValueError):
                    raise ConfigError(
                        f"{path}: emulators.{service}.port must be a number"
                    ) from None
        database = raw.get("database")
        if isinstance(database, list):  # multi-instance form: use the first entry's rules
            database = database[0] if database else None
        if isinstance(database, dict) and database.get("rules"):
            cfg.rules_path = (path.parent / str(database["rules"])).resolve()
            if not cfg.rules_path.exists():
                raise ConfigError(f"{path}: rules file {cfg.rules_path} does not exist")
        for key, value in overrides.items():
            if value is not None:
                setattr(cfg, key, value)
        return cfg


def parse_only(text: str | None) -> tuple[str, ...]:
    if not text:
        return SERVICES
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [n for n in names if n not in SERVICES]
    if unknown or not names:
        raise ConfigError(
            f"--only: unknown emulator {', '.join(unknown) or '(none)'}; choose from database,auth"
        )
    return names
