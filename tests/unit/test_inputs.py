"""Bodies before anything reads them: strict UTF-8, bounded JSON depth, text without NUL
or unpaired surrogates, bounded dates (:mod:`signoff.inputs`)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from signoff.inputs import (
    MAX_JSON_DEPTH,
    BadInput,
    check_form,
    date_problem,
    json_depth_exceeds,
    parse_json,
)


def test_depth_limit_counts_brackets_outside_strings_only():
    ok = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert not json_depth_exceeds(ok)
    assert parse_json(ok.encode()) is not None
    too_deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    assert json_depth_exceeds(too_deep)
    assert not json_depth_exceeds('{"a": "' + "[" * 5000 + '"}')
    assert not json_depth_exceeds('["\\"[[[[", 1]', limit=1)


@pytest.mark.parametrize(
    "raw,field",
    [
        (b"[" * 5000 + b"]" * 5000, "body"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "body"),
        (b'{"t": "\xff"}', "body"),
        (b'{"t": "\xed\xa0\x80"}', "body"),  # an encoded surrogate is not UTF-8
        (b'{"title": "x\\ud800"}', "title"),
        (b'{"a": {"b": ["ok", "nul\\u0000"]}}', "a.b[1]"),
        (b'{"k\\u0000": 1}', "k?"),
        (b'{"n": 1e999}', "body"),
        (b'{"n": NaN}', "body"),
        (b'{"n": ' + b"9" * 5000 + b"}", "body"),
        (b'{"a": 1', "body"),
    ],
)
def test_bad_bodies_name_the_field(raw, field):
    with pytest.raises(BadInput) as exc:
        parse_json(raw)
    assert exc.value.field == field and exc.value.status == 400


def test_good_body_is_returned_as_parsed():
    assert parse_json('{"t": "é\\n😀", "n": -1.5, "l": [1, null]}'.encode()) == {
        "t": "é\n😀",
        "n": -1.5,
        "l": [1, None],
    }


@pytest.mark.parametrize(
    "raw,field",
    [(b"username=a%00b&password=x", "username"), (b"username=ok&password=%ed%a0%80", "password")],
)
def test_form_bodies(raw, field):
    with pytest.raises(BadInput) as exc:
        check_form(raw)
    assert exc.value.field == field
    check_form(b"username=%C3%A9+x&password=p%26q&empty=")


def test_date_bounds():
    assert date_problem(date(2026, 1, 1)) is None
    assert date_problem(date(1, 1, 1)) and date_problem(date(9999, 12, 31))
    assert date_problem(datetime(9999, 12, 31, tzinfo=UTC))
    far_west = datetime.fromisoformat("9999-12-31T23:00:00-12:00")  # overflows in UTC
    assert date_problem(far_west)


@pytest.mark.parametrize(
    "text,message",
    [
        ("a: " + "[" * 3000 + "]" * 3000, "deep"),
        ("".join(" " * i + "a:\n" for i in range(600)), "deep"),
        ('name: "a\\0b"', "NUL"),
        ('name: "\\ud800"', "surrogate"),
    ],
    ids=["deep flow", "deep block", "nul", "surrogate"],
)
def test_yaml_typed_on_a_page_is_checked_like_a_json_body(text, message):
    from signoff.views.forms import YamlProblem, from_yaml

    with pytest.raises(YamlProblem) as exc:
        from_yaml(text)
    assert message in exc.value.message
    assert from_yaml("name: x\nsteps: [1, {a: 2026-01-02}]") == {
        "name": "x",
        "steps": [1, {"a": "2026-01-02"}],
    }
