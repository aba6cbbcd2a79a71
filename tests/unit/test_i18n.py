"""Languages (issue 15 item 7): amounts parsed and formatted per locale, and the German
catalogue complete and in step with the code (.pot current, every msgid translated with
the same placeholders, the committed .mo compiled from the .po)."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from signoff.languages import TRANSLATIONS, AmountError, format_amount, parse_amount

ROOT = Path(__file__).resolve().parents[2]
POT = TRANSLATIONS / "messages.pot"
PO = TRANSLATIONS / "de" / "LC_MESSAGES" / "messages.po"
MO = TRANSLATIONS / "de" / "LC_MESSAGES" / "messages.mo"


@pytest.mark.parametrize(
    ("locale", "typed", "value"),
    [
        ("en", "1,500.50", Decimal("1500.50")),
        ("en", "1500.50", Decimal("1500.50")),
        ("en", "1,500", Decimal("1500")),
        ("en", "1,234,567.8", Decimal("1234567.8")),
        ("en", "0.125", Decimal("0.125")),
        ("en", "1.5", Decimal("1.5")),
        ("en", "-12", Decimal("-12")),
        ("en", " 250.5 ", Decimal("250.5")),
        ("de", "1.500,50", Decimal("1500.50")),
        ("de", "1500,50", Decimal("1500.50")),
        ("de", "1.500", Decimal("1500")),
        ("de", "1.234.567,8", Decimal("1234567.8")),
        ("de", "1,5", Decimal("1.5")),
        ("de", "0,125", Decimal("0.125")),
        ("de", "1,5000", Decimal("1.5")),
    ],
)
def test_amounts_parse_per_locale(locale: str, typed: str, value: Decimal) -> None:
    assert parse_amount(typed, locale) == value


@pytest.mark.parametrize(
    ("locale", "typed", "says"),
    [
        # The two readings of the issue: never silently misread.
        ("de", "1,500", "ambiguous"),
        ("en", "1,5", "ambiguous"),
        # Their mirror images.
        ("en", "1.500", "ambiguous"),
        ("de", "1.5", "ambiguous"),
        # The other language's full notation, and nonsense.
        ("en", "1.500,50", "not an amount"),
        ("de", "1,500.50", "not an amount"),
        ("en", "1,50,0", "not an amount"),
        ("en", "12abc", "not an amount"),
        ("en", "", "not an amount"),
        ("de", "1.50", "ambiguous"),
    ],
)
def test_ambiguous_and_foreign_amounts_are_refused(locale: str, typed: str, says: str) -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount(typed, locale)
    assert says in str(caught.value)


def test_the_refusal_says_what_to_write() -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount("1,500", "de")
    assert '"1.500"' in str(caught.value) and '"1,5000"' in str(caught.value)


@pytest.mark.parametrize(
    ("locale", "value", "shown"),
    [
        ("en", Decimal("1500.5"), "1,500.50"),
        ("de", Decimal("1500.5"), "1.500,50"),
        ("en", Decimal("1500"), "1,500"),
        ("de", Decimal("1500"), "1.500"),
        ("de", Decimal("1234.567"), "1.234,567"),
        ("en", "1234567.25", "1,234,567.25"),
    ],
)
def test_amounts_format_per_locale(locale: str, value: Decimal | str, shown: str) -> None:
    assert format_amount(value, locale) == shown


def test_a_formatted_amount_parses_back_to_itself() -> None:
    for locale in ("en", "de"):
        for value in (Decimal("1500.50"), Decimal("0.5"), Decimal("1234567.89"), Decimal("12")):
            assert parse_amount(format_amount(value, locale), locale) == value


# --- the catalogue -----------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


def _ids(path: Path) -> set[str | tuple[str, ...]]:
    with path.open("rb") as f:
        return {m.id if isinstance(m.id, str) else tuple(m.id) for m in read_po(f) if m.id}


def test_the_pot_is_current(tmp_path: Path) -> None:
    """A message added to the code or a template without `scripts/i18n update` fails here."""
    fresh = tmp_path / "messages.pot"
    subprocess.run(
        [
            str(Path(sys.executable).parent / "pybabel"),
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "--no-location",
            "--omit-header",
            "-o",
            str(fresh),
            "platform/signoff",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert _ids(fresh) == _ids(POT), "run scripts/i18n update and translate the new messages"


def test_every_msgid_of_the_pot_has_a_german_translation() -> None:
    with PO.open("rb") as f:
        catalog = read_po(f, locale="de")
    translated = {}
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else tuple(message.id)
        strings = [message.string] if isinstance(message.string, str) else list(message.string)
        if message.fuzzy or not all(strings):
            continue
        translated[key] = strings
    missing = sorted(str(k) for k in _ids(POT) if k not in translated)
    assert missing == [], f"{len(missing)} message(s) without a German translation: {missing}"
    # Every placeholder of the English text is in the German one, and no other.
    for key, strings in translated.items():
        english = key if isinstance(key, str) else key[0]
        for german in strings:
            assert set(_PLACEHOLDER.findall(german)) == set(_PLACEHOLDER.findall(english)), key


def test_the_committed_mo_is_compiled_from_the_po() -> None:
    with PO.open("rb") as f:
        po = {m.id if isinstance(m.id, str) else tuple(m.id): m.string for m in read_po(f) if m.id}
    with MO.open("rb") as f:
        mo = {m.id if isinstance(m.id, str) else tuple(m.id): m.string for m in read_mo(f) if m.id}
    po = {k: (v if isinstance(v, str) else tuple(v)) for k, v in po.items()}
    mo = {k: (v if isinstance(v, str) else tuple(v)) for k, v in mo.items()}
    assert mo == po, "run scripts/i18n compile"
