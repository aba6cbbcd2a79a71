"""Issue 15 item 5: the accent's contrast and the organisation name's messages."""

from __future__ import annotations

import pytest

from signoff.views.branding import (
    MIN_CONTRAST,
    accent_contrast,
    accent_problem,
    contrast,
    darker_shade,
    name_problem,
)


def test_contrast_matches_wcag_reference_values():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)
    # WebAIM's checker: #2563eb on white is 5.17:1, #777777 on white 4.48:1.
    assert contrast("#2563eb", "#ffffff") == pytest.approx(5.17, abs=0.01)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("color", ["#ffee00", "#777777", "#60a5fa", "#FFFFFF"])
def test_light_accents_are_refused_with_a_darker_shade_that_works(color):
    problem = accent_problem(color)
    assert problem is not None and "too light" in problem and f"{MIN_CONTRAST}:1" in problem
    shade = problem.rsplit(" ", 1)[-1].rstrip(".")
    assert accent_contrast(shade) >= MIN_CONTRAST
    assert shade == darker_shade(color.lower())


@pytest.mark.parametrize("color", ["#2563eb", "#aa3300", "#b91c1c", "#047857", "#000000"])
def test_readable_accents_pass(color):
    assert accent_problem(color) is None


@pytest.mark.parametrize("raw", ["red", "#12345", "red;}</style><script>", ""])
def test_malformed_accents_say_how_to_write_one(raw):
    assert "six hexadecimal digits" in (accent_problem(raw) or "")


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("", "A name is required."),
        ("   ", "A name is required."),
        ("<b>Acme</b>", "cannot contain < or >"),
        ("x" * 121, "121 characters long; at most 120"),
        ("Acme\u200bLtd", "control or invisible"),
    ],
)
def test_name_problems_say_what_is_wrong(raw, expected):
    assert expected in (name_problem(raw) or "")


def test_a_plain_name_passes():
    assert name_problem("  Acme   Ltd ") is None
