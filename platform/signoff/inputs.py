"""Bodies from the network, before anything else reads them: strict UTF-8, bounded JSON.

:func:`parse_json` decodes strictly (invalid UTF-8 is refused, not replaced), refuses
nesting deeper than :data:`MAX_JSON_DEPTH` before the parser sees it (Python's parser
recurses and a few thousand brackets exhaust its stack), and refuses any string or key
holding a NUL or an unpaired surrogate (``"\\ud800"``), which neither UTF-8 nor
PostgreSQL can hold. :func:`check_form` does the same for URL-encoded form bodies. Each
failure is :class:`BadInput` naming the field (``body`` when it is the whole body).
A leaf: it imports nothing of ours but :mod:`signoff.text`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

from signoff.errors import N_
from signoff.text import text_problem

#: Deepest nesting of arrays and objects a JSON body may have.
MAX_JSON_DEPTH = 64
#: Dates and times a user may give: far enough for any real use, and far from the ends
#: of Python's calendar (a day after 9999-12-31 or a time-zone shift overflows).
DATE_MIN = date(1970, 1, 1)
DATE_MAX = date(2999, 12, 31)


def date_problem(value: date) -> str | None:
    """Why ``value`` (a date or datetime) is out of bounds, or ``None``."""
    day = value
    if isinstance(value, datetime):
        try:
            day = value.astimezone(UTC).date() if value.tzinfo else value.date()
        except OverflowError:  # 9999-12-31T23:00-05:00 is past the calendar in UTC
            day = DATE_MAX + (DATE_MAX - DATE_MIN)
    if not DATE_MIN <= day <= DATE_MAX:
        return N_(
            "must be between %(min)s and %(max)s",
            min=DATE_MIN.isoformat(),
            max=DATE_MAX.isoformat(),
        )
    return None


class BadInput(ValueError):
    """Input refused before any endpoint sees it; ``field`` names it."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


#: A JSON string (unrolled, so that a long one is one quick match) or a bracket.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]')


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``text`` nests arrays/objects deeper than ``limit`` (a scan, no recursion)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


def decode_utf8(raw: bytes, field: str = "body") -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(field, N_("is not valid UTF-8 (byte %(byte)s)", byte=exc.start)) from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:20]} is out of range")
    return number


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """``(path, text)`` of every key and string value (iterative, depth is bounded)."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{where}.{key}" if where else str(key)
                yield child_path, key
                stack.append((child, child_path))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))


def _printable_path(path: str) -> str:
    """A field path safe to echo back (a bad key may itself hold the bad character)."""
    return "".join(ch if text_problem(ch) is None else "?" for ch in path) or "body"


def check_strings(value: Any, root: str = "") -> None:
    for path, text in _walk(value, root):
        problem = text_problem(text, multiline=True)
        if problem is not None:
            raise BadInput(_printable_path(path), problem)


def parse_json(raw: bytes) -> Any:
    """The JSON value of ``raw``, or :class:`BadInput`."""
    text = decode_utf8(raw)
    if json_depth_exceeds(text):
        raise BadInput("body", N_("nests deeper than %(depth)s levels", depth=MAX_JSON_DEPTH))
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except (ValueError, RecursionError) as exc:
        raise BadInput("body", N_("is not valid JSON: %(error)s", error=str(exc)[:120])) from None
    check_strings(value)
    return value


def check_form(raw: bytes) -> None:
    """A URL-encoded body: each name and value strict UTF-8 text (no NUL, no surrogate)."""
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name_raw, _, value_raw = pair.partition(b"=")
        name = decode_utf8(unquote_to_bytes(name_raw.replace(b"+", b" ")), "body")
        field = _printable_path(name)
        value = decode_utf8(unquote_to_bytes(value_raw.replace(b"+", b" ")), field)
        for text in (name, value):
            problem = text_problem(text, multiline=True)
            if problem is not None:
                raise BadInput(field, problem)
