"""What an upload must pass before it is stored, and where its bytes go.

- The type is **sniffed from the bytes** (:func:`sniff`: PDF, PNG, JPEG, GIF, WebP, plain
  UTF-8 text), never taken from the file name or the client's ``Content-Type``; anything
  else, or a type outside ``SIGNOFF_ATTACHMENT_TYPES``, is 415.
- **Limits** (:func:`check_quota`): bytes per file, files per request and bytes per
  tenant, from ``SIGNOFF_ATTACHMENT_MAX_BYTES``, ``SIGNOFF_ATTACHMENT_MAX_PER_REQUEST``
  and ``SIGNOFF_ATTACHMENT_TENANT_BYTES``. It is the one function a plan's quota will
  feed (pass ``limits``); too large is 413, too many 409.
- The **virus scanner hook** (:func:`scan`): ``SIGNOFF_ATTACHMENT_SCANNER`` is a
  ``module:function`` called with the bytes (it returns ``None`` when clean, else the
  reason), or a command (``cmd:/path/to/scanner --arg``) given the bytes on stdin and
  accepting with exit status 0. Default: none. A refusal is 422 ``infected``; a scanner
  that cannot answer is 503, never a silent pass.
- **Thumbnails** (:func:`thumbnail`): a small PNG of a raster image, made with Pillow
  when it is shown (nothing more is stored); an image too large to decode safely, or
  one Pillow cannot read, has none and the page shows a file icon.
- **Storage** (:class:`Store`): where the bytes live. The default, and the only store
  shipped, is the database (``bytea`` in ``attachment.content``), under row-level
  security like the row itself.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import shlex
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from signoff.attachments.models import Attachment
from signoff.errors import N_, ActionError, Conflict, Invalid, Refused

#: Types an upload may have (``SIGNOFF_ATTACHMENT_TYPES`` narrows it, never widens it).
KNOWN_TYPES: tuple[str, ...] = (
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "text/plain",
)
#: Types shown inline as a preview (raster images only: never SVG, never HTML).
PREVIEW_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
#: Types the request page shows in a frame of its own (the browser's PDF viewer).
FRAME_TYPES = frozenset({"application/pdf"})
#: A thumbnail's longest side in pixels, and the largest image decoded for one.
THUMBNAIL_SIDE = 320
THUMBNAIL_MAX_PIXELS = 40_000_000
EXTENSIONS = {
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "text/plain": ".txt",
}


class TooLarge(ActionError):
    status = 413


class UnsupportedType(ActionError):
    status = 415


class ScannerUnavailable(ActionError):
    status = 503


def sniff(data: bytes) -> str | None:
    """The media type of ``data`` from its first bytes, or ``None`` when it is none of
    :data:`KNOWN_TYPES`. Plain text is strict UTF-8 without NUL or other control
    characters (tab and line breaks allowed) in the whole file."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data and _is_plain_text(data):
        return "text/plain"
    return None


def _is_plain_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if text.lstrip().startswith("<"):
        return False  # markup is not plain text (it would be HTML or SVG to a browser)
    return not any((ord(c) < 32 and c not in "\t\r\n") or ord(c) == 127 for c in text)


@dataclass(frozen=True)
class Limits:
    """What one upload may add: the configured defaults, or a plan's quota."""

    max_bytes: int
    max_per_request: int
    tenant_bytes: int
    types: tuple[str, ...] = KNOWN_TYPES


def limits_from_config(config: Mapping[str, Any]) -> Limits:
    """The limits of ``SIGNOFF_ATTACHMENT_*`` (``config.py`` holds the defaults)."""
    wanted = [t.strip() for t in str(config["SIGNOFF_ATTACHMENT_TYPES"]).split(",") if t.strip()]
    return Limits(
        max_bytes=int(config["SIGNOFF_ATTACHMENT_MAX_BYTES"]),
        max_per_request=int(config["SIGNOFF_ATTACHMENT_MAX_PER_REQUEST"]),
        tenant_bytes=int(config["SIGNOFF_ATTACHMENT_TENANT_BYTES"]),
        types=tuple(t for t in KNOWN_TYPES if t in wanted),
    )


def check_content(data: bytes, limits: Limits) -> str:
    """The sniffed type of ``data`` if its size and type are allowed (413 / 415 / 422)."""
    if not data:
        raise Invalid("required", "The file is empty", field="file")
    if len(data) > limits.max_bytes:
        raise TooLarge(
            "too_large",
            f"The file is larger than {limits.max_bytes} bytes",
            field="file",
        )
    kind = sniff(data)
    if kind is None or kind not in limits.types:
        allowed = ", ".join(limits.types)
        raise UnsupportedType(
            "unsupported_type",
            f"This kind of file is not accepted (allowed: {allowed})",
            field="file",
        )
    return kind


def check_quota(session: Session, *, request_id: Any, size: int, limits: Limits) -> None:
    """Refuse a file of ``size`` bytes that would pass the request's count or the
    tenant's total (read under the request's lock and the tenant's binding, so two
    uploads cannot both take the last place). Billing passes its plan's ``limits``."""
    count = session.scalar(
        select(func.count()).select_from(Attachment).where(Attachment.request_id == request_id)
    )
    if (count or 0) >= limits.max_per_request:
        raise Conflict(
            "too_many_attachments",
            N_("A request has at most %(count)s attachments", count=limits.max_per_request),
            field="file",
        )
    used = session.scalar(select(func.coalesce(func.sum(Attachment.size_bytes), 0))) or 0
    if int(used) + size > limits.tenant_bytes:
        raise TooLarge(
            "storage_quota",
            "The organisation's attachment storage is full "
            f"({int(used)} of {limits.tenant_bytes} bytes used)",
            field="file",
        )


# --- the virus scanner hook -------------------------------------------------------------

Scanner = Callable[[bytes], str | None]


def load_scanner(spec: str | None) -> Scanner | None:
    """``SIGNOFF_ATTACHMENT_SCANNER``: ``module:function``, ``cmd:<command line>``, or
    nothing (no scanner)."""
    if not spec:
        return None
    if spec.startswith("cmd:"):
        argv = shlex.split(spec[4:])
        if not argv:
            raise ValueError("SIGNOFF_ATTACHMENT_SCANNER: cmd: names no command")
        return lambda data: _run_scanner(argv, data)
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError("SIGNOFF_ATTACHMENT_SCANNER must be module:function or cmd:<command>")
    found = getattr(importlib.import_module(module), name)
    if not callable(found):
        raise ValueError(f"SIGNOFF_ATTACHMENT_SCANNER: {spec} is not callable")
    scanner: Scanner = found
    return scanner


def _run_scanner(argv: list[str], data: bytes) -> str | None:
    try:
        # The command is the operator's own setting, never user input.
        done = subprocess.run(  # noqa: S603
            argv, input=data, capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ScannerUnavailable(
            "scanner_unavailable", f"The virus scanner did not answer: {exc}", field="file"
        ) from exc
    if done.returncode == 0:
        return None
    reason = done.stdout.decode("utf-8", "replace").strip()[:200]
    return reason or f"refused by the scanner (exit status {done.returncode})"


def scan(data: bytes, scanner: Scanner | None) -> None:
    """Run the configured scanner; a refusal is 422 ``infected`` naming its reason."""
    if scanner is None:
        return
    try:
        reason = scanner(data)
    except ActionError:
        raise
    except Exception as exc:  # a broken scanner must not let a file through silently
        raise ScannerUnavailable(
            "scanner_unavailable", f"The virus scanner failed: {exc}", field="file"
        ) from exc
    if reason:
        raise Refused(
            "infected",
            N_("The file was refused by the virus scanner: %(reason)s", reason=reason),
            field="file",
        )


# --- storage ------------------------------------------------------------------------------


class Store(Protocol):
    """Where the bytes of an attachment live."""

    name: str

    def put(self, session: Session, attachment: Attachment, data: bytes) -> None: ...

    def get(self, session: Session, attachment: Attachment) -> bytes: ...


class DatabaseStore:
    """The default store: the bytes in ``attachment.content`` (bytea), under RLS."""

    name = "database"

    def put(self, session: Session, attachment: Attachment, data: bytes) -> None:
        attachment.storage = self.name
        attachment.content = data

    def get(self, session: Session, attachment: Attachment) -> bytes:
        return bytes(attachment.content or b"")


STORES: dict[str, Store] = {"database": DatabaseStore()}


def store_for(name: str) -> Store:
    found = STORES.get(name)
    if found is None:
        raise ValueError(f"unknown attachment store {name!r} (known: {', '.join(STORES)})")
    return found


def thumbnail(data: bytes, content_type: str, side: int = THUMBNAIL_SIDE) -> bytes | None:
    """A PNG at most ``side`` pixels wide and high of a raster image (the first frame
    of an animation), or None: not an image, too many pixels to decode safely, or
    unreadable."""
    if content_type not in PREVIEW_TYPES:
        return None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > THUMBNAIL_MAX_PIXELS:
                return None
            img.seek(0)
            small = img.convert("RGBA")
            small.thumbnail((side, side))
            out = io.BytesIO()
            small.save(out, format="PNG", optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def safe_filename(name: str | None, content_type: str) -> str:
    """A display name: the client's base name without path or control characters, at most
    200 characters, with the extension of the sniffed type when it has none of its own."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable() and c not in '"<>').strip(" .")[:200]
    if not base:
        base = "attachment"
    ext = EXTENSIONS.get(content_type, "")
    if (
        ext
        and not base.lower().endswith(ext)
        and not (ext == ".jpg" and base.lower().endswith(".jpeg"))
    ):
        base += ext
    return base
