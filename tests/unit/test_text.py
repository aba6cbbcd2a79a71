"""Free text is stored as plain text: no tag survives, however deeply it is encoded."""

from __future__ import annotations

import html

import pytest

from signoff.text import InvalidText, TextTooLong, check_text, clean_text

PAYLOAD = "<script>alert(1)</script><img src=x onerror=alert(2)>hello"


def _encoded(text: str, depth: int) -> str:
    for _ in range(depth):
        text = html.escape(text)
    return text


@pytest.mark.parametrize("depth", [0, 1, 2, 4, 5, 15, 16, 17, 40])
def test_no_tag_survives_any_depth_of_entity_encoding(depth):
    cleaned = clean_text(_encoded(PAYLOAD, depth), field="comment", limit=10_000)
    assert cleaned is not None
    assert "<" not in cleaned and ">" not in cleaned
    assert "hello" in cleaned


def test_honest_text_is_kept_as_written():
    text = "Fish & chips for 3 < 4 people, \"quoted\" and 'single' — ok"
    assert clean_text(text, field="comment", limit=200) == text
    assert clean_text("  <b>bold</b> move  ", field="comment", limit=200) == "bold move"
    assert clean_text("a\tb\nc", field="comment", limit=200) == "a\tb\nc"
    assert clean_text("  <p></p> ", field="comment", limit=200) is None


def test_too_long_after_cleaning_is_refused_with_the_field():
    with pytest.raises(TextTooLong) as exc:
        clean_text("x" * 11, field="title", limit=10)
    assert str(exc.value) == "title is longer than 10 characters"
    assert clean_text("<i>" + "x" * 10 + "</i>", field="title", limit=10) == "x" * 10


@pytest.mark.parametrize(
    "bad,reason",
    [
        ("a\x00b", "NUL"),
        ("a\ud800b", "surrogate"),
        ("\udfff", "surrogate"),
        ("bell\x07", "U+0007"),
        ("esc\x1b[0m", "U+001B"),
        ("del\x7f", "U+007F"),
    ],
)
def test_check_text_refuses_what_no_field_may_hold(bad, reason):
    for multiline in (False, True):
        with pytest.raises(InvalidText) as exc:
            check_text(bad, field="title", multiline=multiline)
        assert exc.value.field == "title" and reason in exc.value.reason
    # The sanitizer refuses them too (nh3 cannot even encode a surrogate).
    with pytest.raises(InvalidText):
        clean_text(bad, field="comment", limit=200)


def test_check_text_line_breaks_only_where_multiline_and_length():
    assert check_text("two\nlines", field="c", multiline=True) == "two\nlines"
    with pytest.raises(InvalidText):
        check_text("two\nlines", field="name")
    assert check_text("é 😀 中", field="name", limit=5) == "é 😀 中"
    with pytest.raises(TextTooLong) as exc:
        check_text("x" * 6, field="name", limit=5)
    assert exc.value.field == "name" and isinstance(exc.value, InvalidText)


def test_the_action_layer_answers_invalid_text_as_invalid_input():
    """Paths the input guard does not stand in front of (the FAB add-on's pages, the CLI,
    Slack) reach the sanitizer directly: a NUL is an invalid field there, never a crash."""
    from signoff.errors import Invalid
    from signoff.workflow.actions.core import _comment, _text

    with pytest.raises(Invalid) as exc:
        _comment("a\x00b")
    assert exc.value.field == "comment" and exc.value.code == "invalid"
    with pytest.raises(Invalid) as exc:
        _text("\ud800", field="title", limit=10)
    assert exc.value.field == "title" and exc.value.code == "invalid"
    with pytest.raises(Invalid) as exc:
        _text("x" * 11, field="title", limit=10)
    assert exc.value.code == "too_long"
