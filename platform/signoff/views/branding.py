"""Branding checks for the tenant admin's branding page: the accent's contrast and
the organisation name's problems, each as a message that says what is wrong.

The accent is used as text on white and on the light navigation pill (links, the
active navigation item, "Sign out" on hover) and as the background of white text
(buttons, counters). WCAG 2.x asks 4.5:1 for normal text, so an accent is accepted
only when it reaches 4.5:1 against white text and the pill's background; a refused
accent comes with the nearest darker shade that does.
"""

from __future__ import annotations

import re
import unicodedata

COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
#: WCAG 2.x minimum for normal text.
MIN_CONTRAST = 4.5
#: The colours the accent meets: white text on buttons, and the pill behind the
#: active navigation item (``.mainnav a.on`` in signoff.css).
AGAINST = ("#ffffff", "#eef2ff")


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4


def luminance(color: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    a, b = sorted((luminance(first), luminance(second)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def accent_contrast(color: str) -> float:
    """The accent's worst contrast against what it is used with."""
    return min(contrast(color, other) for other in AGAINST)


def darker_shade(color: str) -> str:
    """The lightest shade of ``color`` (same hue, scaled down) that reaches the minimum."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    for step in range(100, -1, -1):
        f = step / 100
        shade = f"#{round(r * f):02x}{round(g * f):02x}{round(b * f):02x}"
        if accent_contrast(shade) >= MIN_CONTRAST:
            return shade
    return "#000000"


def accent_problem(raw: str) -> str | None:
    """Why ``raw`` cannot be the accent, or ``None``."""
    color = raw.strip()
    if not COLOR_RE.fullmatch(color):
        return "Use a colour written as # and six hexadecimal digits, like #2563eb."
    ratio = accent_contrast(color.lower())
    if ratio < MIN_CONTRAST:
        return (
            f"{color.lower()} is too light to read: its contrast with white text and the "
            f"navigation background is {ratio:.1f}:1, and at least {MIN_CONTRAST}:1 is "
            f"needed. A darker shade that works: {darker_shade(color.lower())}."
        )
    return None


def name_problem(raw: str | None, *, limit: int = 120) -> str | None:
    """Why ``raw`` cannot be the organisation's name, or ``None`` (the same rules as
    :func:`signoff.tenancy.accounts.clean_name`, each with its own message)."""
    value = " ".join((raw or "").split())
    if not value:
        return "A name is required."
    if len(value) > limit:
        return f"The name is {len(value)} characters long; at most {limit} are allowed."
    if "<" in value or ">" in value:
        return "The name cannot contain < or > (markup is not allowed)."
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        return "The name cannot contain control or invisible formatting characters."
    return None
