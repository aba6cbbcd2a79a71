"""How a notification shows people and request fields, the same in every channel."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask_appbuilder.security.sqla.models import User

#: Input fields shown in a notification, at most.
KEY_FIELDS = 6


def display_name(user: User | None) -> str:
    if user is None:
        return "someone"
    last = user.last_name if user.last_name != "-" else ""
    name = f"{user.first_name or ''} {last or ''}".strip()
    return name or str(user.username)


def field_value(value: Any, *, limit: int = 200) -> str:
    """A field as a person reads it: numbers grouped (``5,000``, ``1,234.50``)."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, str | int | float | Decimal):
        return str(value)[:limit]
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)[:limit]
    if not number.is_finite():
        return str(value)[:limit]
    return f"{number:,.0f}" if number == number.to_integral_value() else f"{number:,.2f}"


def key_fields(input_data: dict[str, Any], *, limit: int = 200) -> list[tuple[str, str]]:
    """The request's first few filled-in fields as (label, value)."""
    return [
        (k.replace("_", " ").capitalize(), field_value(v, limit=limit))
        for k, v in list(input_data.items())[:KEY_FIELDS]
        if v not in (None, "", [], {}) and not isinstance(v, dict | list)
    ]
