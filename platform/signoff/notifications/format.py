"""How a notification shows people and request fields, the same in every channel."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask_appbuilder.security.sqla.models import User
from flask_babel import gettext as _

from signoff.languages import format_amount, translated, translated_like
from signoff.workflow.models import NOTE_TITLES, NotificationOutbox

#: Input fields shown in a notification, at most.
KEY_FIELDS = 6


def display_name(user: User | None) -> str:
    if user is None:
        return str(_("someone"))
    last = user.last_name if user.last_name != "-" else ""
    name = f"{user.first_name or ''} {last or ''}".strip()
    return name or str(user.username)


def field_value(value: Any, *, limit: int = 200) -> str:
    """A field as a person reads it: numbers grouped as the current language writes
    them (``5,000``, ``1,234.50``; ``5.000``, ``1.234,50`` in German)."""
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    if not isinstance(value, str | int | float | Decimal):
        return str(value)[:limit]
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)[:limit]
    if not number.is_finite():
        return str(value)[:limit]
    if number == number.to_integral_value():
        return format_amount(number.to_integral_value())
    return format_amount(number.quantize(Decimal("0.01")))


def key_fields(input_data: dict[str, Any], *, limit: int = 200) -> list[tuple[str, str]]:
    """The request's first few filled-in fields as (label, value)."""
    return [
        (k.replace("_", " ").capitalize(), field_value(v, limit=limit))
        for k, v in list(input_data.items())[:KEY_FIELDS]
        if v not in (None, "", [], {}) and not isinstance(v, dict | list)
    ]


def note_title(note: NotificationOutbox) -> str:
    """A notification's title in the current language: the stored title is English, made
    from :data:`~signoff.workflow.models.NOTE_TITLES` of its kind (or a marked constant),
    so it is read back into that msgid's values and translated."""
    msgid = NOTE_TITLES.get(note.kind)
    if msgid is not None:
        return translated_like(note.title, msgid)
    return translated(note.title)
