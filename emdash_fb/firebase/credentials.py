"""Saved sign-ins: one small JSON file per profile, readable only by its owner.

``config_dir()/profiles/<profile>.json`` (file mode 0600, directory 0700) holds,
for each target (project + endpoints, see ``Target.key``), the signed-in
:class:`Identity` and a little per-profile state such as the current session.
Keeping targets apart means an emulator identity is never sent to a real
project, and switching back finds the old identity again. Profiles let one
person be several users on one machine (``--profile bob``), each with its own uid.

Writes are atomic (temp file + rename) and serialised between processes with
an advisory lock, so a token refresh in one process never loses a state change
made by another.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ConfigError
from .target import Target, config_dir

try:  # POSIX advisory locks; elsewhere the in-process lock is all there is
    import fcntl
except ImportError:  # pragma: no cover - not on Linux/macOS
    fcntl = None  # type: ignore[assignment]

FILE_VERSION = 1
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_process_lock = threading.Lock()


@dataclass
class Identity:
    """A signed-in Firebase user and the tokens that prove it."""

    uid: str
    name: str
    provider: str  # "anonymous" | "password"
    email: str | None
    id_token: str
    refresh_token: str
    expires_at: float  # epoch seconds when id_token stops being accepted

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Identity:
        return cls(
            uid=str(data["uid"]),
            name=str(data.get("name") or ""),
            provider=str(data.get("provider") or "anonymous"),
            email=data.get("email") if isinstance(data.get("email"), str) else None,
            id_token=str(data["id_token"]),
            refresh_token=str(data["refresh_token"]),
            expires_at=float(data["expires_at"]),
        )


class IdentityStore:
    """The saved identity and state of one profile, for one target."""

    def __init__(
        self, target: Target, profile: str = "default", env: Mapping[str, str] = os.environ
    ) -> None:
        if not _PROFILE_NAME.match(profile):
            raise ConfigError(
                f"profile names are letters, digits, '.', '_' and '-' (up to 64), not {profile!r}"
            )
        self.target = target
        self.profile = profile
        self.directory = config_dir(env) / "profiles"
        self.path = self.directory / f"{profile}.json"
        # Every database call asks for the token; re-parse the file only when it changed.
        self._cache: tuple[tuple[int, int, int], dict[str, Any]] | None = None

    # -- identity --------------------------------------------------------------

    def load(self) -> Identity | None:
        """The saved identity for this target, or ``None``."""
        entry = self._read().get("targets", {}).get(self.target.key, {})
        raw = entry.get("identity")
        if not isinstance(raw, dict):
            return None
        try:
            return Identity.from_json(raw)
        except (KeyError, TypeError, ValueError):
            raise ConfigError(
                f"{self.path} holds a damaged sign-in; delete it to sign in again"
            ) from None

    def save(self, ident: Identity) -> None:
        with self._editing() as entry:
            entry["identity"] = ident.to_json()

    def forget(self) -> None:
        """Drop the saved identity (sign out); state is kept."""
        with self._editing() as entry:
            entry.pop("identity", None)

    # -- small state -------------------------------------------------------------

    def get_state(self, key: str) -> Any:
        """A value saved with :meth:`set_state`, or ``None``."""
        entry = self._read().get("targets", {}).get(self.target.key, {})
        state = entry.get("state")
        return copy.deepcopy(state.get(key)) if isinstance(state, dict) else None

    def set_state(self, key: str, value: Any) -> None:
        """Save a small JSON value for this profile and target; ``None`` removes it."""
        with self._editing() as entry:
            state = entry.setdefault("state", {})
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value

    # -- file ----------------------------------------------------------------------

    def _read(self) -> dict[str, Any]:
        """The file's content (shared with the cache: don't mutate it)."""
        try:
            st = os.stat(self.path)
            # Writes replace the file, so a new inode means new content.
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if self._cache is not None and self._cache[0] == key:
                return self._cache[1]
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"can't read {self.path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigError(
                f"{self.path} is not valid JSON; delete it to sign in again"
            ) from None
        data = data if isinstance(data, dict) else {}
        self._cache = (key, data)
        return data

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        """Read-modify-write the entry of this target under both locks."""
        self._ensure_directory()
        with _process_lock, self._file_lock():
            data = copy.deepcopy(self._read())
            data["version"] = FILE_VERSION
            targets = data.setdefault("targets", {})
            entry = targets.setdefault(self.target.key, {})
            yield entry
            if not entry:
                targets.pop(self.target.key, None)
            self._write(data)

    def _ensure_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.directory, 0o700)
        except OSError as exc:
            raise ConfigError(f"can't create {self.directory}: {exc.strerror}") from None

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        if fcntl is None:
            yield
            return
        fd = os.open(self.directory / f".{self.profile}.lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, data: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{self.profile}.", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, indent=2, sort_keys=True)
                out.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
