"""Languages: which one a request speaks, and numbers, amounts and dates in it.

Signoff speaks English (``en``, the message ids) and German (``de``); the catalogue is
``signoff/translations/de/LC_MESSAGES/messages.po`` (``scripts/i18n`` extracts, updates
and compiles it). Flask-Babel, which FAB sets up, does the translating; :func:`install`
points it at our catalogue (beside FAB's own) and replaces FAB's session-based locale
selector with :func:`select_locale`:

1. the signed-in person's profile language (``ab_user.language``, migration 0037), read
   with the person's own row when the user is loaded, or by ``signoff.api_caller`` for
   an access token's user (migration 0047), with no statement of its own,
2. else the browser's ``Accept-Language``,
3. else English.

Amounts typed by a person go through :func:`parse_amount`, the one locale-aware parser:
"1.500,50" in German and "1,500.50" in English; a separator that could be read either
way ("1,500" in German, "1,5" in English) is refused with :class:`AmountError`, never
guessed. The API's JSON keeps plain numbers ("1500.50"), whatever the language.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from babel import Locale
from babel.numbers import format_decimal as babel_format_decimal
from babel.numbers import get_decimal_symbol, get_group_symbol
from flask import Flask, g, has_request_context, request
from flask import session as web_session
from flask_babel import force_locale, get_locale
from flask_babel import format_date as babel_format_date
from flask_babel import format_datetime as babel_format_datetime
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import inspect, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from signoff.errors import N_, Message
from signoff.extensions import db

#: The languages Signoff speaks, the first the default.
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch"}
DEFAULT = "en"
TRANSLATIONS = Path(__file__).parent / "translations"

log = logging.getLogger(__name__)

_USER_LANGUAGE = text("SELECT language FROM ab_user WHERE id = :id")
_SET_USER_LANGUAGE = text("UPDATE ab_user SET language = :language WHERE id = :id")

__all__ = [
    "DEFAULT",
    "LANGUAGES",
    "N_",
    "AmountError",
    "add_templates",
    "force_locale",
    "format_amount",
    "format_date",
    "format_datetime",
    "install",
    "install_in_host",
    "locale_name",
    "note_profile_language",
    "parse_amount",
    "profile_language",
    "select_locale",
    "set_user_language",
    "status_word",
    "translated",
    "translated_errors",
    "translated_like",
    "user_language",
]


def translated(message: str) -> str:
    """``message`` in the current language when the catalogue has it (constants marked
    with :func:`N_`), else as it is: the one place where messages made in English by the
    lower floors (refusals, input errors) are translated for a person or an API caller.

    A :class:`~signoff.errors.Message` (``N_(msgid, **params)``) is translated by its
    msgid, then its values are filled in (a value named ``status`` as a status word).
    marshmallow's own messages, English sentences with the values already in
    (``Length must be between 1 and 200.``), are matched against :data:`TEMPLATES`."""
    if not message:
        return message
    if isinstance(message, Message):
        return _fill(message.msgid, message.params)
    plain = str(_(message))
    if plain != message:
        return plain
    for msgid, pattern in _TEMPLATE_PATTERNS:
        found = pattern.fullmatch(message)
        if found is not None:
            return _fill(msgid, found.groupdict())
    return plain


def _fill(msgid: str, params: Mapping[str, Any]) -> str:
    values = {key: _value(key, value) for key, value in params.items()}
    return str(_(msgid, **values))


#: Values that are themselves messages of ours (a delivery's ``%(problem)s``, an
#: address's ``%(reason)s``): translated too when their message is filled in.
_NESTED = frozenset({"problem", "reason"})


def _value(key: str, value: Any) -> Any:
    if key in _NESTED and isinstance(value, str):
        return translated(value)
    if isinstance(value, list | tuple):
        return "; ".join(translated(v) if isinstance(v, str) else str(v) for v in value)
    if key == "status" and isinstance(value, str) and not isinstance(value, Message):
        return status_word(value)
    return translated(value) if isinstance(value, Message) else value


#: Messages made in English with their values already in (marshmallow's own, which it
#: formats itself; the notifications' stored titles): their msgids, whose ``%(name)s``
#: placeholders :func:`translated` reads the values back from.
TEMPLATES: tuple[str, ...] = (
    N_("Length must be between %(min)s and %(max)s."),
    N_("Length must be %(equal)s."),
    N_("Longer than maximum length %(max)s."),
    N_("Shorter than minimum length %(min)s."),
    N_("Must be one of: %(choices)s."),
    N_("Must be greater than or equal to %(min)s and less than or equal to %(max)s."),
    N_("Must be greater than or equal to %(min)s and less than %(max)s."),
    N_("Must be greater than %(min)s and less than or equal to %(max)s."),
    N_("Must be greater than %(min)s and less than %(max)s."),
    N_("Must be greater than or equal to %(min)s."),
    N_("Must be greater than %(min)s."),
    N_("Must be less than or equal to %(max)s."),
    N_("Must be less than %(max)s."),
    N_("Must be equal to %(other)s."),
    N_("One or more of the choices you made was not in: %(choices)s."),
    N_("Not a valid %(obj_type)s."),
    N_('"%(input)s" cannot be formatted as a %(obj_type)s.'),
)

#: marshmallow's messages without values, for the catalogue.
PLAIN_MARSHMALLOW: tuple[str, ...] = (
    N_("Missing data for required field."),
    N_("Unknown field."),
    N_("Field may not be null."),
    N_("Invalid value."),
    N_("Invalid input."),
    N_("Invalid input type."),
    N_("Invalid type."),
    N_("Not a valid boolean."),
    N_("Not a valid integer."),
    N_("Not a valid number."),
    N_("Not a valid string."),
    N_("Not a valid utf-8 string."),
    N_("Not a valid date."),
    N_("Not a valid datetime."),
    N_("Not a valid aware datetime."),
    N_("Not a valid naive datetime."),
    N_("Not a valid mapping type."),
    N_("Not a valid email address."),
    N_("Not a valid list."),
    N_("Not a valid URL."),
    N_("Not a valid UUID."),
    N_("Number too large."),
    N_("Special numeric values (nan or infinity) are not permitted."),
    N_("String does not match expected pattern."),
)


def _pattern(msgid: str) -> re.Pattern[str]:
    parts = re.split(r"%\((\w+)\)s", msgid)
    out = ""
    for i, part in enumerate(parts):
        out += re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+?)"
    return re.compile(out, re.DOTALL)


def translated_like(message: str, msgid: str) -> str:
    """``message``, an English sentence made from ``msgid`` (``"Approval needed: Laptop"``
    from ``"Approval needed: %(title)s"``), in the current language; a message that does
    not fit ``msgid`` is translated as :func:`translated` does."""
    found = _pattern(msgid).fullmatch(message or "")
    return _fill(msgid, found.groupdict()) if found is not None else translated(message)


_TEMPLATE_PATTERNS: list[tuple[str, re.Pattern[str]]] = [(m, _pattern(m)) for m in TEMPLATES]


def add_templates(*msgids: str) -> None:
    """More messages that are stored in English with their values in (a delivery's
    ``last_error``), for :func:`translated` to read back, in the order given (put the
    more specific of two overlapping ones first). Called by the module that makes them."""
    known = {m for m, _p in _TEMPLATE_PATTERNS}
    for msgid in msgids:
        if msgid not in known:
            _TEMPLATE_PATTERNS.append((msgid, _pattern(msgid)))
            known.add(msgid)


def translated_errors(errors: Mapping[str, list[str]] | None) -> dict[str, list[str]] | None:
    """Every message of an ``{"input_data.amount": [...]}`` mapping, translated."""
    if not errors:
        return None
    return {path: [translated(m) for m in messages] for path, messages in errors.items()}


def user_language(user_id: int, session: Session | None = None) -> str | None:
    """The language ``user_id`` chose on their profile, or ``None`` (one statement: for
    people other than the request's user, such as the readers of a notification)."""
    found = (session or db.session).execute(_USER_LANGUAGE, {"id": user_id}).scalar()
    return found if found in LANGUAGES else None


def set_user_language(user_id: int, language: str | None) -> None:
    """Store (``None``: forget) ``user_id``'s language; the caller commits. When that is
    the request's user, the rest of the request speaks it."""
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}")
    db.session.execute(_SET_USER_LANGUAGE, {"language": language, "id": user_id})
    if has_request_context() and g.get("signoff_profile_language", _UNSET)[0] == user_id:
        g.signoff_profile_language = (user_id, language)
        g.pop("signoff_locale", None)


#: ``g.signoff_profile_language`` before the user was loaded: (no user, no language).
_UNSET: tuple[int | None, str | None] = (None, None)


def note_profile_language(user: Any) -> None:
    """Keep the request's user's profile language, read with the user's own row (FAB's
    user model maps ``ab_user.language``: :func:`signoff.db.base.map_language_column`),
    for :func:`select_locale`. Nothing is loaded here: a model without the column, or a
    user built without it (the API caller's on a schema before 0047), leaves the
    language to :func:`profile_language`'s lookup."""
    if not has_request_context():
        return
    state = inspect(user, raiseerr=False)
    if state is None or "language" not in state.dict:
        return
    g.signoff_profile_language = (int(user.id), state.dict["language"])


def _signed_in_user_id() -> int | None:
    """The request's signed-in user: flask_login's, else the user of the request's
    access token, whom flask_login's ``current_user`` does not know, read from the
    token's caller (``g.signoff_caller``, :mod:`signoff.security.caller`, cleared as each
    request starts), not from the user (an error's rollback expires the user, and
    reading it then would load it again)."""
    if current_user and current_user.is_authenticated:
        return int(current_user.id)
    caller_user = getattr(g.get("signoff_caller"), "user_id", None)
    return None if caller_user is None else int(caller_user)


def profile_language() -> str | None:
    """The signed-in user's profile language, or ``None``: what the user load (or the
    token's caller) brought (:func:`note_profile_language`, no statement of its own);
    only a user loaded some other way is looked up, inside a savepoint, so a failed
    lookup never touches the request's transaction."""
    user_id = _signed_in_user_id()
    if user_id is None:
        return None
    noted_id, noted = g.get("signoff_profile_language", _UNSET)
    if noted_id == user_id:
        return noted if noted in LANGUAGES else None
    try:
        with db.session.begin_nested():
            return user_language(user_id)
    except SQLAlchemyError:
        log.warning("profile language of user %s not read", user_id, exc_info=True)
        return None


def select_locale() -> str:
    """The language of the current request: profile, else Accept-Language, else English."""
    if not has_request_context():
        return DEFAULT
    chosen: str | None = g.get("signoff_locale")
    if chosen:
        return chosen
    chosen = profile_language()
    if chosen is None:
        chosen = request.accept_languages.best_match(list(LANGUAGES)) or DEFAULT
    g.signoff_locale = chosen
    return chosen


def locale_name() -> str:
    """The current language's code (``en`` outside a request)."""
    locale = get_locale()
    return locale.language if locale is not None and locale.language in LANGUAGES else DEFAULT


# --- numbers, amounts, dates -------------------------------------------------------------


class AmountError(ValueError):
    """A typed amount that is not a number in the language, or could be read two ways."""


def _symbols(locale: str) -> tuple[str, str]:
    loc = Locale.parse(locale)
    return get_decimal_symbol(loc), get_group_symbol(loc)


def parse_amount(raw: str, locale: str | None = None) -> Decimal:
    """``raw`` as typed in ``locale`` (default: the request's) as an exact Decimal.

    Accepted: digits with the language's decimal symbol and, optionally, its group
    symbol between groups of three ("1.500,50" in German, "1,500.50" in English).
    Refused as ambiguous rather than guessed:

    - the other language's decimal symbol ("1,5" in English, "1.5" in German);
    - one to three digits, the decimal symbol and exactly three digits ("1,500" in
      German, "1.500" in English): a thousand to one reader, one and a half to another.
    """
    lang = locale or locale_name()
    decimal_sym, group_sym = _symbols(lang)
    other = "," if decimal_sym == "." else "."
    value = raw.strip()
    sign = ""
    if value[:1] in ("+", "-"):
        sign, value = ("-" if value[0] == "-" else ""), value[1:].strip()
    grouped = re.escape(group_sym)
    match = re.fullmatch(
        r"(?P<int>\d{1,3}(?:"
        + grouped
        + r"\d{3})+|\d+)(?:"
        + re.escape(decimal_sym)
        + r"(?P<frac>\d+))?",
        value,
    )
    if match is None:
        if re.fullmatch(r"\d+" + re.escape(other) + r"\d+", value):
            raise AmountError(
                _(
                    'is ambiguous: "%(value)s" uses "%(other)s", but the decimal separator '
                    'here is "%(decimal)s"',
                    value=raw.strip(),
                    other=other,
                    decimal=decimal_sym,
                )
            )
        raise AmountError(
            _(
                'is not an amount: write it like "%(example)s"',
                example=format_amount(Decimal("1500.50"), lang),
            )
        )
    whole, frac = match.group("int"), match.group("frac")
    if frac is not None and len(frac) == 3 and len(whole) <= 3 and not whole.startswith("0"):
        raise AmountError(
            _(
                'is ambiguous: write "%(thousands)s" for thousands, or "%(fraction)s" '
                "for a fraction",
                thousands=format_amount(Decimal(whole + frac), lang),
                fraction=f"{whole}{decimal_sym}{frac}0",
            )
        )
    return Decimal(sign + whole.replace(group_sym, "") + ("." + frac if frac else ""))


def format_amount(value: Decimal | int | float | str, locale: str | None = None) -> str:
    """An amount grouped as ``locale`` writes it, exactly: ``1,500.50`` / ``1.500,50``;
    whole amounts without decimals (``1,500`` / ``1.500``)."""
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    whole = number == number.to_integral_value()
    fmt = "#,##0" if whole else "#,##0.00" + "#" * 18
    return str(
        babel_format_decimal(
            number, format=fmt, locale=locale or locale_name(), decimal_quantization=False
        )
    )


def format_date(value: date | datetime | None) -> str:
    """A day in the request's language (``3 Dec 2026`` / ``03.12.2026``)."""
    if value is None:
        return "—"
    return str(babel_format_date(value, format="medium"))


def format_datetime(value: datetime | None) -> str:
    """A moment in the request's language, in UTC."""
    if value is None:
        return "—"
    return str(babel_format_datetime(value, format="medium")) + " UTC"


#: Status words of requests, steps and the like, as badges show them.
STATUS_WORDS: dict[str, Any] = {
    "pending": _l("pending"),
    "changes_requested": _l("changes requested"),
    "approved": _l("approved"),
    "rejected": _l("rejected"),
    "withdrawn": _l("withdrawn"),
    "expired": _l("expired"),
    "waiting": _l("waiting"),
    "active": _l("active"),
    "skipped": _l("skipped"),
    "cancelled": _l("cancelled"),
    "suspended": _l("suspended"),
}


def status_word(value: str | None) -> str:
    """A status code (``changes_requested``) as a person reads it, in their language."""
    word = STATUS_WORDS.get(value or "")
    return str(word) if word is not None else (value or "").replace("_", " ")


def _amount_filter(value: Any) -> str:
    try:
        return format_amount(value)
    except (InvalidOperation, ValueError, TypeError):
        return str(value)


def _translated_filter(value: Any) -> Any:
    """``{{ message|translated }}``: a message from a lower floor, in the reader's language
    (markup and non-text left as they are)."""
    if not isinstance(value, str) or isinstance(value, Markup):
        return value
    return translated(value)


def install(app: Flask) -> None:
    """Before FAB's init: our catalogue and languages. Call :func:`use_selector` after."""
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT
    app.config["LANGUAGES"] = {
        code: {"flag": code, "name": name} for code, name in LANGUAGES.items()
    }
    install_filters(app)


def install_filters(app: Flask) -> None:
    """The template filters and globals Signoff's templates use (also in a host app,
    whose e-mails and add-on pages render them, while its own language settings stay)."""
    filters: dict[str, Callable[..., str]] = {
        "amount": _amount_filter,
        "day": format_date,
        "moment": format_datetime,
        "status_word": status_word,
        "translated": _translated_filter,
    }
    app.jinja_env.filters.update(filters)
    app.jinja_env.globals.update(locale_name=locale_name, LANGUAGES=LANGUAGES)


def install_in_host(app: Flask, pages: tuple[str, ...]) -> None:
    """The add-on in a host FAB app (after FAB's init), without touching the host's own
    translations or pages:

    - Signoff's catalogue joins the host's ``translation_directories``, after FAB's and
      before the host's own: on a message both translate, the host's wins, as Flask-Babel
      merges the directories in order.
    - On the add-on's pages (endpoints starting with one of ``pages``), when the host kept
      FAB's own session-based locale selector (which never reads the browser), the
      language is the one the person chose in FAB's language menu (other than the host's
      default), else the browser's ``Accept-Language`` among Signoff's and the host's
      ``LANGUAGES``, else the host's ``BABEL_DEFAULT_LOCALE``. The host's other pages,
      and every page of a host with a selector of its own, keep the host's selector."""
    babel = app.extensions.get("babel")
    if babel is None or app.extensions.get("signoff_host_languages"):
        return
    app.extensions["signoff_host_languages"] = True
    ours = str(TRANSLATIONS)
    directories: list[str] = babel.translation_directories
    if ours not in directories:
        fab = [
            i
            for i, d in enumerate(directories)
            if Path(d).resolve().parent.name == "flask_appbuilder"
        ]
        directories.insert(fab[-1] + 1 if fab else 0, ours)
        domain = babel.instance.__dict__.get("domain_instance")
        if domain is not None:
            domain.cache.clear()  # translations merged before this point: merge again
    host: Callable[[], str | None] | None = babel.locale_selector
    appbuilder = getattr(app, "appbuilder", None)
    fab_selector = getattr(getattr(appbuilder, "bm", None), "get_locale", None)
    if host is None or fab_selector is None or host != fab_selector:
        return
    host_selector = host

    def add_on_pages_selector() -> str | None:
        if not has_request_context():
            return host_selector()
        endpoint = request.endpoint or ""
        if not endpoint.startswith(pages) or "_l_" in request.args:
            return host_selector()
        default = str(app.config.get("BABEL_DEFAULT_LOCALE") or DEFAULT)
        chosen = web_session.get("locale")
        if isinstance(chosen, str) and chosen and chosen != default:
            return chosen
        offered = list(dict.fromkeys([*LANGUAGES, *(app.config.get("LANGUAGES") or {})]))
        return request.accept_languages.best_match(offered) or default

    babel.locale_selector = add_on_pages_selector


def use_selector(app: Flask) -> None:
    """After FAB's init: the locale comes from :func:`select_locale`, not FAB's session."""
    app.extensions["babel"].locale_selector = select_locale
