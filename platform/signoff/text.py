"""Text from users: one check for every text input, and the free-text sanitizer.

:func:`check_text` is the one validation of a text value, whatever carries it (JSON
field, form field, FAB's login, query parameter): no NUL, no lone surrogate (neither
UTF-8 nor PostgreSQL can hold one), no other control character (tab and line breaks
only where ``multiline``), at most ``limit`` characters. It raises :class:`InvalidText`
naming the field. :func:`clean_text` (free text: markup stripped by a real HTML
sanitizer, nh3) runs it first. Stored as plain text and escaped again on output
(Jinja autoescape, JSON).
"""

from __future__ import annotations

import html
import unicodedata

import nh3

COMMENT_MAX = 4000
#: Every round removes one layer of entity encoding; honest text needs one or two.
_MAX_DECODE_ROUNDS = 16
TITLE_MAX = 200


class InvalidText(ValueError):
    """A text value that no field accepts; ``field`` names the input, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} {reason}")
        self.field = field
        self.reason = reason


class TextTooLong(InvalidText):
    def __init__(self, field: str, limit: int) -> None:
        super().__init__(field, f"is longer than {limit} characters")
        self.limit = limit


_LINE_BREAKS = frozenset("\n\r\t")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be text of ours (``None`` when it can); no length check."""
    if "\x00" in value:
        return "must not contain a NUL character"
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            return "must not contain an unpaired surrogate (not valid Unicode)"
        if category == "Cc" and not (multiline and ch in _LINE_BREAKS):
            return f"must not contain the control character U+{ord(ch):04X}"
    return None


def check_text(value: str, *, field: str, limit: int | None = None, multiline: bool = False) -> str:
    """``value`` unchanged if it is acceptable text, else :class:`InvalidText`."""
    if not isinstance(value, str):
        raise InvalidText(field, "must be a string")
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise InvalidText(field, problem)
    if limit is not None and len(value) > limit:
        raise TextTooLong(field, limit)
    return value


def _strip(text: str) -> str:
    return nh3.clean(text, tags=set(), attributes={}, strip_comments=True)


def clean_text(value: str | None, *, field: str, limit: int) -> str | None:
    """Plain text: every tag removed (content of script/style dropped), entities decoded,
    control characters removed, whitespace trimmed; ``None`` for empty."""
    if value is None:
        return None
    # NUL and unpaired surrogates are refused, not stripped: the sanitizer cannot encode
    # a surrogate, and silently dropping characters would change what the user said.
    text = check_text(str(value), field=field, multiline=True)
    # Entity-encoded markup (``&lt;script&gt;``) must not survive as a tag once decoded,
    # so clean and decode until nothing changes, however deep the encoding.
    for _ in range(_MAX_DECODE_ROUNDS):
        cleaned = html.unescape(_strip(text))
        if cleaned == text:
            break
        text = cleaned
    else:
        # Still decoding after that many rounds: keep the last layer encoded. The text
        # then holds no tag at all, only entities, which read as literal text.
        text = _strip(text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C").strip()
    if not text:
        return None
    if len(text) > limit:
        raise TextTooLong(field, limit)
    return text


def clean_comment(value: str | None) -> str | None:
    return clean_text(value, field="comment", limit=COMMENT_MAX)
