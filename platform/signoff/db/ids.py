"""Ids from URLs and bodies: one place that turns text into a row id."""

from __future__ import annotations

import uuid
from typing import Any

from signoff.errors import NotFound


def as_uuid(value: Any) -> uuid.UUID | None:
    """``value`` as a UUID, or ``None`` when it is not one (optional inputs)."""
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def parse_id(value: Any) -> uuid.UUID:
    """An id that must be a UUID; anything else is the same 404 as a missing row."""
    found = as_uuid(value)
    if found is None:
        raise NotFound("not_found", "Not found")
    return found
