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
import re
import unicodedata

import nh3

from signoff.errors import N_

COMMENT_MAX = 4000
#: Every round removes one layer of entity encoding; honest text needs one or two.
_MAX_DECODE_ROUNDS = 16
TITLE_MAX = 200


class InvalidText(ValueError):
    """A text value that no field accepts; ``field`` names the input, ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        # The field name stays as it is; the reason is translated where it is shown.
        self.message = N_("%(field)s %(reason)s", field=field, reason=reason)
        super().__init__(self.message)
        self.field = field
        self.reason = reason


class TextTooLong(InvalidText):
    def __init__(self, field: str, limit: int) -> None:
        super().__init__(field, N_("is longer than %(limit)s characters", limit=limit))
        self.limit = limit


#: Control characters (Unicode category Cc) and unpaired surrogates (Cs); one scan in C,
#: so a 2 MiB body costs milliseconds.
_BAD_ANYWHERE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_BAD_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """Why ``value`` cannot be text of ours (``None`` when it can); no length check.
    ``multiline`` allows tab, line feed and carriage return."""
    found = (_BAD_MULTILINE if multiline else _BAD_ANYWHERE).search(value)
    if found is None:
        return None
    ch = found.group()
    if ch == "\x00":
        return N_("must not contain a NUL character")
    if "\ud800" <= ch <= "\udfff":
        return N_("must not contain an unpaired surrogate (not valid Unicode)")
    return N_("must not contain the control character U+%(code)s", code=f"{ord(ch):04X}")


def check_text(value: str, *, field: str, limit: int | None = None, multiline: bool = False) -> str:
    """``value`` unchanged if it is acceptable text, else :class:`InvalidText`."""
    if not isinstance(value, str):
        raise InvalidText(field, N_("must be a string"))
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
