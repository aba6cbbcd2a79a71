"""Free text from users: stripped of markup by a real HTML sanitizer (nh3), bounded in length.

Stored as plain text and escaped again on output (Jinja autoescape, JSON).
"""

from __future__ import annotations

import html
import unicodedata

import nh3

COMMENT_MAX = 4000
#: Every round removes one layer of entity encoding; honest text needs one or two.
_MAX_DECODE_ROUNDS = 16
TITLE_MAX = 200


class TextTooLong(ValueError):
    def __init__(self, field: str, limit: int) -> None:
        super().__init__(f"{field} is longer than {limit} characters")
        self.field = field
        self.limit = limit


def _strip(text: str) -> str:
    return nh3.clean(text, tags=set(), attributes={}, strip_comments=True)


def clean_text(value: str | None, *, field: str, limit: int) -> str | None:
    """Plain text: every tag removed (content of script/style dropped), entities decoded,
    control characters removed, whitespace trimmed; ``None`` for empty."""
    if value is None:
        return None
    text = str(value)
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
