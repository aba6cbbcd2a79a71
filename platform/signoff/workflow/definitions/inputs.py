"""Validation of a request's ``input_data`` against the workflow's field schema."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any, Final

from signoff.errors import N_
from signoff.workflow.definitions.model import (
    CONTROL_OR_BREAK_RE,
    CONTROL_RE,
    DEFAULT_MAX_LENGTH,
    INT_RE,
    MAX_FREEFORM_KEYS,
    FieldDef,
    WorkflowDefinition,
    as_date,
)
from signoff.workflow.errors import FieldError, InputError
from signoff.workflow.rules import to_decimal

_INVALID: Final = object()


def _clean_text(value: Any, fdef: FieldDef, path: str, errors: list[FieldError]) -> str | None:
    if not isinstance(value, str):
        errors.append(FieldError(path, N_("must be a string")))
        return None
    bad = CONTROL_RE if fdef.type == "text" else CONTROL_OR_BREAK_RE
    if bad.search(value):
        errors.append(FieldError(path, N_("contains control characters")))
        return None
    limit = fdef.max_length or DEFAULT_MAX_LENGTH[fdef.type]
    if len(value) > limit:
        errors.append(FieldError(path, N_("is longer than %(limit)s characters", limit=limit)))
        return None
    return value


def _reasonable(number: Decimal) -> bool:
    """At most 30 integer digits and 20 decimals: keeps amounts sane and strings short."""
    exponent = number.as_tuple().exponent
    return number.adjusted() <= 30 and isinstance(exponent, int) and exponent >= -20


def _check_range(number: Decimal, fdef: FieldDef, path: str, errors: list[FieldError]) -> bool:
    if isinstance(fdef.min, Decimal) and number < fdef.min:
        errors.append(FieldError(path, N_("must be at least %(min)s", min=fdef.min)))
        return False
    if isinstance(fdef.max, Decimal) and number > fdef.max:
        errors.append(FieldError(path, N_("must be at most %(max)s", max=fdef.max)))
        return False
    return True


def _clean_value(value: Any, fdef: FieldDef, path: str, errors: list[FieldError]) -> Any:
    """The cleaned JSON value, or ``_INVALID`` after appending an error."""
    if fdef.type in ("string", "text"):
        text = _clean_text(value, fdef, path, errors)
        return _INVALID if text is None else text
    if fdef.type == "integer":
        if isinstance(value, str) and INT_RE.fullmatch(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 10**30:
            errors.append(FieldError(path, N_("must be a whole number")))
            return _INVALID
        return value if _check_range(Decimal(value), fdef, path, errors) else _INVALID
    if fdef.type == "decimal":
        number = to_decimal(value)
        if number is None or not _reasonable(number):
            errors.append(FieldError(path, N_("must be a decimal number like 12.50")))
            return _INVALID
        return format(number, "f") if _check_range(number, fdef, path, errors) else _INVALID
    if fdef.type == "boolean":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            errors.append(FieldError(path, N_("must be true or false")))
            return _INVALID
        return value
    if fdef.type == "date":
        day = as_date(value)
        if day is None:
            errors.append(FieldError(path, N_("must be a date like 2024-12-31")))
            return _INVALID
        if isinstance(fdef.min, date) and day < fdef.min:
            errors.append(
                FieldError(path, N_("must be on or after %(min)s", min=fdef.min.isoformat()))
            )
            return _INVALID
        if isinstance(fdef.max, date) and day > fdef.max:
            errors.append(
                FieldError(path, N_("must be on or before %(max)s", max=fdef.max.isoformat()))
            )
            return _INVALID
        return day.isoformat()
    # choice
    if not isinstance(value, str) or value not in fdef.choices:
        errors.append(
            FieldError(path, N_("must be one of %(choices)s", choices=", ".join(fdef.choices)))
        )
        return _INVALID
    return value


def _freeform(data: Mapping[Any, Any]) -> dict[str, Any]:
    """Schema-less input: at most 64 string keys with scalar JSON values."""
    errors: list[FieldError] = []
    if len(data) > MAX_FREEFORM_KEYS:
        raise InputError(
            [FieldError("input_data", N_("has more than %(count)s keys", count=MAX_FREEFORM_KEYS))]
        )
    out: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not key or len(key) > 64:
            errors.append(
                FieldError(
                    "input_data",
                    N_("bad key '%(key)s': keys are strings of 1-64 characters", key=key),
                )
            )
            continue
        path = f"input_data.{key}"
        if value is None or isinstance(value, bool | int):
            out[key] = value
        elif isinstance(value, float | Decimal):
            number = to_decimal(value)
            if number is None:
                errors.append(FieldError(path, N_("must be a finite number")))
            else:
                out[key] = value if isinstance(value, float) else format(number, "f")
        elif isinstance(value, str):
            if len(value) > DEFAULT_MAX_LENGTH["text"] or "\x00" in value:
                errors.append(
                    FieldError(path, N_("must be text without NUL, at most 10000 characters"))
                )
            else:
                out[key] = value
        else:
            errors.append(FieldError(path, N_("must be a string, number, boolean or null")))
    if errors:
        raise InputError(errors)
    return out


def validate_input(defn: WorkflowDefinition, data: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``input_data`` against ``defn.fields`` and return it cleaned and JSON-safe
    (decimals as strings, dates as ISO strings); raise :class:`InputError` listing every
    problem with paths ``input_data.<field>``. Absent, ``None`` and (for non-text fields)
    empty-string values count as missing; missing optional fields are left out."""
    if not isinstance(data, Mapping):
        raise InputError([FieldError("input_data", N_("must be an object"))])
    if not defn.fields:
        return _freeform(data)
    errors: list[FieldError] = []
    known = {f.name for f in defn.fields}
    for key in data:
        if key not in known:
            errors.append(FieldError(f"input_data.{key}", N_("unknown field")))
    out: dict[str, Any] = {}
    for fdef in defn.fields:
        path = f"input_data.{fdef.name}"
        value = data.get(fdef.name)
        is_text = fdef.type in ("string", "text")
        missing = value is None or (value == "" and (fdef.required or not is_text))
        if missing:
            if fdef.required:
                errors.append(FieldError(path, N_("is required")))
            continue
        cleaned = _clean_value(value, fdef, path, errors)
        if cleaned is not _INVALID:
            out[fdef.name] = cleaned
    if errors:
        raise InputError(errors)
    return out
