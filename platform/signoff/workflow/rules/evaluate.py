"""The interpreter: conditions evaluated against a context, exactly and without ``eval``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, Final

from signoff.workflow.rules.model import ORDERING, AllOf, AnyOf, Compare, Condition, Value

_NUMERIC_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,6})?")


def to_decimal(value: object) -> Decimal | None:
    """``value`` as an exact finite Decimal if it is a number or numeric string, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and len(value) <= 100 and _NUMERIC_RE.fullmatch(value):
        return Decimal(value)
    return None


_MISSING: Final = object()


def _resolve(context: Mapping[str, Any], path: str) -> object:
    current: object = context
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _equal(a: object, b: object) -> bool:
    da, db = to_decimal(a), to_decimal(b)
    if da is not None and db is not None:
        return da == db
    if da is not None or db is not None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    return False


def _order(a: object, b: object) -> int | None:
    """-1/0/1 when ``a`` and ``b`` are comparable (both numbers or both strings), else None."""
    da, db = to_decimal(a), to_decimal(b)
    if da is not None and db is not None:
        return (da > db) - (da < db)
    if da is not None or db is not None:
        return None
    if isinstance(a, str) and isinstance(b, str):
        return (a > b) - (a < b)
    return None


def _compare(actual: object, operator: str, value: Value) -> bool:
    if operator in ORDERING:
        order = _order(actual, value)
        if order is None:
            return False
        return {">": order > 0, ">=": order >= 0, "<": order < 0, "<=": order <= 0}[operator]
    if operator == "==":
        return _equal(actual, value)
    if operator == "!=":
        return not _equal(actual, value)
    if operator in ("in", "not_in"):
        assert isinstance(value, tuple)
        found = any(_equal(actual, v) for v in value)
        return found if operator == "in" else not found
    if operator == "contains":
        if isinstance(actual, list | tuple | set | frozenset):
            return any(_equal(item, value) for item in actual)
        if isinstance(actual, str) and isinstance(value, str):
            return value in actual
        return False
    raise ValueError(f"unknown operator {operator!r}")  # parse_condition never lets one through


def evaluate(condition: Condition, context: Mapping[str, Any]) -> bool:
    """Evaluate a parsed condition against ``context``; never raises for missing data."""
    if isinstance(condition, AllOf):
        return all(evaluate(c, context) for c in condition.conditions)
    if isinstance(condition, AnyOf):
        return any(evaluate(c, context) for c in condition.conditions)
    actual = _resolve(context, condition.field)
    if actual is _MISSING:
        return False
    return _compare(actual, condition.operator, condition.value)


def make_context(
    workflow: str,
    input_data: Mapping[str, Any],
    *,
    requester_id: int | None = None,
    requester_username: str | None = None,
    requester_roles: Iterable[str] = (),
) -> dict[str, Any]:
    """The mapping rule paths resolve in: ``workflow``, ``input_data.*``, ``requester.*``."""
    return {
        "workflow": workflow,
        "input_data": dict(input_data),
        "requester": {
            "id": requester_id,
            "username": requester_username,
            "roles": sorted(set(requester_roles)),
        },
    }


def referenced_fields(condition: Condition) -> Iterator[str]:
    """Every dotted field path used in ``condition`` (for cross-checks against a schema)."""
    if isinstance(condition, Compare):
        yield condition.field
    else:
        for sub in condition.conditions:
            yield from referenced_fields(sub)
