"""Files attached to a message: which ones, how big, how they are stored.

What it owns: reading a file someone attaches (``/attach PATH``) into an
:class:`Attached` with a one-line error for every way that fails, the limits the
rules enforce (``rules/build_rules.py`` imports them), and the two records a
send writes: the small metadata in ``sessions/<sid>/transcript/<mid>/attachments``
that everyone sees (``[image screenshot.png 180 KB]``) and the data itself under
``attachments/<sid>/<mid>``, outside the session tree, so following a session
never downloads files.
"""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadMessage

MAX_FILES = 4
MAX_BYTES = 512 * 1024
#: base64 of MAX_BYTES
MAX_DATA = 4 * math.ceil(MAX_BYTES / 3)
MAX_FILE_NAME = 120
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
TEXT_TYPE = "text/plain"
TYPES = (*sorted(set(IMAGE_TYPES.values())), TEXT_TYPE)
KEYS = tuple(f"a{i}" for i in range(MAX_FILES))
_MAGIC = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


def as_dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


@dataclass(frozen=True)
class Attached:
    name: str
    media_type: str
    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")

    def meta(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.media_type, "size": self.size}

    def record(self) -> dict[str, Any]:
        return {**self.meta(), "data": base64.b64encode(self.data).decode("ascii")}


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def label(name: str, media_type: str, size: int) -> str:
    """How an attachment is shown: ``[image screenshot.png 180 KB]``, ``[file notes.txt 2 KB]``."""
    kind = "image" if media_type.startswith("image/") else "file"
    return f"[{kind} {name} {human_size(size)}]"


def clean_name(name: str) -> str:
    """A file name fit to store and show: its last path part, no control characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch if ch.isprintable() else "_" for ch in base).strip()
    return base[:MAX_FILE_NAME] or "file"


def read_file(path: str | Path) -> Attached:
    """Read a file to attach; BadMessage (one line, saying what to do) when it can't be."""
    p = Path(path).expanduser()
    shown = str(path)
    try:
        if p.is_dir():
            raise BadMessage(f"{shown} is a folder: attach a file")
        size = p.stat().st_size
    except FileNotFoundError:
        raise BadMessage(f"no such file: {shown}") from None
    except OSError as exc:
        raise BadMessage(f"can't read {shown}: {exc.strerror or exc}") from None
    if size > MAX_BYTES:
        raise BadMessage(
            f"{shown} is {human_size(size)}: attachments may be up to {human_size(MAX_BYTES)}"
        )
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise BadMessage(f"can't read {shown}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise BadMessage(f"{shown} grew past {human_size(MAX_BYTES)} while being read")
    if not data:
        raise BadMessage(f"{shown} is empty: nothing to attach")
    media_type = IMAGE_TYPES.get(p.suffix.lower())
    if media_type is not None:
        if not data.startswith(_MAGIC[media_type]):
            raise BadMessage(f"{shown} is not a {media_type.split('/')[1].upper()} image")
    else:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadMessage(
                f"{shown} is neither an image (png, jpg, gif, webp) nor UTF-8 text: "
                "it can't be attached"
            ) from None
        if b"\x00" in data:
            raise BadMessage(f"{shown} looks binary: only images and text files can be attached")
        media_type = TEXT_TYPE
    return Attached(clean_name(p.name), media_type, data)


@dataclass(frozen=True)
class AttachmentMeta:
    """What everyone sees of an attachment (no data)."""

    key: str
    name: str
    media_type: str
    size: int

    @property
    def label(self) -> str:
        return label(self.name, self.media_type, self.size)


def parse_meta(raw: Any) -> tuple[AttachmentMeta, ...]:
    out = []
    for key in KEYS:
        d = as_dict(as_dict(raw).get(key))
        name, kind, size = d.get("name"), d.get("type"), d.get("size")
        if isinstance(name, str) and kind in TYPES and isinstance(size, int | float):
            out.append(AttachmentMeta(key, name, str(kind), int(size)))
    return tuple(out)


def decode_records(raw: Any) -> list[Attached]:
    """The data records of one message (``attachments/<sid>/<mid>``), in order; a record
    that is malformed is left out."""
    out = []
    for key in KEYS:
        d = as_dict(as_dict(raw).get(key))
        name, kind, data = d.get("name"), d.get("type"), d.get("data")
        if not (isinstance(name, str) and kind in TYPES and isinstance(data, str)):
            continue
        try:
            out.append(Attached(clean_name(name), str(kind), base64.b64decode(data, validate=True)))
        except (binascii.Error, ValueError):
            continue
    return out
