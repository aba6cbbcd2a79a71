"""The rate limiter (docs/ARCHITECTURE.md §6): one Flask-Limiter
instance, the keys it counts by, Signoff's rules and :func:`enforce`.

One :class:`SignoffLimiter` (:data:`limiter`) is shared with FAB through
``SecurityManager.create_limiter``; its Redis storage and sliding-window strategy
also serve Signoff's own checks, which run where the identity is known. Keys come
from the authenticated identity (the loaded user and the tenant bound from the URL
or the verified JWT), never from a raw header. A login's account key is a hash of
the username being tried. Failed logins are counted per address, per account *and*
address (so an attacker elsewhere cannot lock the owner out), and per account across
all addresses (a much higher ceiling that only refuses addresses which have failed for
that account); repeated failures from one address are paced (:func:`login_guard`).

Redis unreachable: ``SIGNOFF_RATELIMIT_FAIL_OPEN`` (default true) lets every
request through and logs. ``false`` makes the brute-force limits (logins, token
refresh, MFA codes) answer 503 while Redis is down; everything else always fails
open, so approvals keep working either way.

This module is infrastructure: the hooks, error pages and their wiring into the app
are in :mod:`signoff.security.ratelimit`, the decision budget beside the actions
(:mod:`signoff.workflow.actions.budget`).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, has_app_context, has_request_context, request
from flask_limiter import Limiter
from flask_limiter._manager import LimitManager
from flask_limiter.errors import RateLimitExceeded
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter
from redis.exceptions import NoScriptError
from werkzeug.exceptions import ServiceUnavailable, TooManyRequests

from signoff.db.binding import current_tenant_id

log = logging.getLogger(__name__)

_STATE_KEY = "signoff_limiter_state"

#: Scopes (bucket names) of Signoff's own limits.
SCOPE_API_TENANT = "api-tenant"
SCOPE_DECISIONS = "decisions"
SCOPE_LOGIN_ACCOUNT = "login-account"
SCOPE_LOGIN_ADDRESS = "login-address"
SCOPE_LOGIN_CEILING = "login-ceiling"
SCOPE_LOGIN_PACE = "login-pace"
SCOPE_REFRESH_USER = "refresh-user"
SCOPE_REFRESH_ADDRESS = "refresh-address"
SCOPE_MFA_ACCOUNT = "mfa-account"
SCOPE_MFA_ADDRESS = "mfa-address"


# --- one limiter per app ----------------------------------------------------------------


class _PerApp:
    """A Flask-Limiter attribute kept per Flask app instead of per Limiter instance.

    Flask-Limiter keeps its storage, strategy and error policy on the instance, so
    a second ``init_app`` (a second app in one process: tests, the CLI next to the
    web app) would silently re-point the first app's limits at the second app's
    Redis. With these descriptors every app keeps its own.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        state = obj._app_state()
        if state is not None and self.name in state:
            return state[self.name]
        return obj.__dict__.get(self.name)

    def __set__(self, obj: Any, value: Any) -> None:
        state = obj._app_state()
        if state is None:
            obj.__dict__[self.name] = value
        else:
            state[self.name] = value


class SignoffLimiter(Limiter):
    """Flask-Limiter with per-app storage and Signoff's fail-open/fail-closed policy."""

    enabled = _PerApp()
    _storage = _PerApp()
    _limiter = _PerApp()
    _storage_dead = _PerApp()
    _fallback_storage = _PerApp()
    _fallback_limiter = _PerApp()
    _in_memory_fallback_enabled = _PerApp()
    _swallow_errors = _PerApp()
    _key_prefix = _PerApp()
    _Limiter__check_backend_count = _PerApp()
    _Limiter__last_check_backend = _PerApp()
    #: Limits bound to blueprints (FAB's login limit) and the application's and default
    #: limits come from one app's configuration: each app keeps its own. Limits
    #: decorated on view functions are code, the same for every app, and are shared.
    limit_manager = _PerApp()

    def _app_state(self) -> dict[str, Any] | None:
        app = self.__dict__.get("_initializing")
        if app is None:
            if not has_app_context():
                return None
            app = current_app
        state: dict[str, Any] | None = app.extensions.get(_STATE_KEY)
        return state

    def init_app(self, app: Flask) -> None:
        state = app.extensions.setdefault(_STATE_KEY, {})
        shared: LimitManager = self.__dict__["limit_manager"]
        state["limit_manager"] = LimitManager(
            application_limits=[],
            default_limits=[],
            decorated_limits=shared._decorated_limits,
            blueprint_limits={},
            route_exemptions=shared._route_exemptions,
            blueprint_exemptions=shared._blueprint_exemptions,
        )
        self.__dict__["_initializing"] = app
        try:
            super().init_app(app)
        finally:
            self.__dict__["_initializing"] = None

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        try:
            super()._check_request_limit(callable_name=callable_name, in_middleware=in_middleware)
        except RateLimitExceeded:
            raise
        except Exception as exc:  # reached only when failing closed (errors not swallowed)
            storage_unavailable(exc)


# --- identity and keys ------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    user_id: int | None
    tenant_id: str | None


def client_address() -> str:
    """The peer address as the WSGI server saw it (a proxy fix, if any, sets it)."""
    return request.remote_addr or "unknown"


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        return None
    return header[7:].strip() or None


def verified_claims() -> dict[str, Any] | None:
    """Claims of this request's JWT, if it is valid (signature and expiry checked).

    Uses the JWT flask-jwt-extended already verified in this request, else verifies
    the bearer token itself (without loading the user): the limiter runs before the
    API's own authentication. API keys (``sk_...``) and invalid tokens give ``None``.
    """
    if not has_request_context():
        return None
    decoded = g.get("_jwt_extended_jwt")
    if decoded:
        return dict(decoded)
    token = _bearer_token()
    if token is None or token.startswith("sk_"):
        return None
    from flask_jwt_extended import decode_token

    try:
        claims = decode_token(token)
    except Exception:
        return None
    return dict(claims)


def identity() -> Identity:
    """The authenticated user and tenant of this request, as far as they are known."""
    if not has_request_context():
        return Identity(None, None)
    user = getattr(g, "user", None)
    if user is not None and getattr(user, "is_authenticated", False) and user.id is not None:
        tenant = current_tenant_id()
        return Identity(int(user.id), str(tenant) if tenant else None)
    claims = verified_claims()
    if claims:
        sub = str(claims.get("sub", ""))
        tenant_claim = claims.get("tenant")
        return Identity(
            int(sub) if sub.isdigit() else None, str(tenant_claim) if tenant_claim else None
        )
    return Identity(None, None)


def rate_limit_key() -> str:
    """``tenant:<id>:user:<id>`` for authenticated calls, ``addr:<ip>`` otherwise."""
    if not has_request_context():
        return "none"
    who = identity()
    if who.user_id is not None:
        return f"tenant:{who.tenant_id or '-'}:user:{who.user_id}"
    return f"addr:{client_address()}"


def tenant_key() -> str:
    """``tenant:<id>`` — one bucket shared by every user of a tenant."""
    who = identity()
    return f"tenant:{who.tenant_id}" if who.tenant_id else f"addr:{client_address()}"


def user_key() -> str:
    """``user:<id>`` — one bucket per person, whatever the tenant."""
    who = identity()
    return f"user:{who.user_id}" if who.user_id is not None else f"addr:{client_address()}"


def address_key() -> str:
    return f"addr:{client_address()}"


def account_key(username: str) -> str:
    """The bucket of a login name being tried (hashed: usernames stay out of Redis)."""
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"account:{digest}"


def account_address_key(username: str) -> str:
    """The bucket of one login name tried from this request's address."""
    return f"{account_key(username)}:{address_key()}"


def submitted_username() -> str | None:
    """The username a login form or JSON body names (the account under attack)."""
    name: Any = None
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, Mapping):
            name = body.get("username")
    else:
        name = request.form.get("username")
    if not isinstance(name, str) or not name.strip():
        return None
    return name[:256]


#: The one limiter of the process, bound per app in ``create_app``.
limiter = SignoffLimiter(key_func=rate_limit_key)


def app_has_limiter() -> bool:
    """Whether the current app initialised the shared limiter (and limits are on)."""
    return (
        has_app_context()
        and _STATE_KEY in current_app.extensions
        and bool(limiter.enabled)
        and limiter._limiter is not None
    )


# --- checks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One bucket: ``limit`` (``"10 per 5 minute"``) for ``key`` within ``scope``."""

    scope: str
    limit: str
    key: str


class RateLimited(TooManyRequests):
    """A Signoff limit is exhausted: 429 with ``Retry-After``."""

    def __init__(self, rule: Rule, retry_after: int) -> None:
        super().__init__(
            description=f"Too many requests ({rule.limit}); retry in {retry_after} s",
            retry_after=retry_after,
        )
        self.rule = rule
        self.retry_after_seconds = retry_after


class RateLimitUnavailable(ServiceUnavailable):
    """The limiter's Redis is unreachable and the setting is to fail closed."""

    def __init__(self) -> None:
        super().__init__(
            description="Rate limiting is temporarily unavailable; retry shortly",
            retry_after=5,
        )


@functools.lru_cache(maxsize=256)
def limit_item(limit: str) -> RateLimitItem:
    return parse(limit)


def _args(rule: Rule) -> list[str]:
    prefix = limiter._key_prefix
    return [prefix, rule.key, rule.scope] if prefix else [rule.key, rule.scope]


def _retry_after(item: RateLimitItem, reset_time: float) -> int:
    seconds = math.ceil(reset_time - time.time())
    # The sliding-window counter reports "now" right after a window opens; the
    # honest answer then is a whole window.
    return seconds if seconds >= 1 else int(item.get_expiry())


def fail_open() -> bool:
    return bool(current_app.config.get("SIGNOFF_RATELIMIT_FAIL_OPEN", True))


def storage_unavailable(exc: BaseException, *, always_open: bool = False) -> None:
    """Redis did not answer a limit check: let the request through, or raise 503.

    Only the brute-force limits (logins, token refresh, MFA codes) may fail closed;
    ``always_open`` checks (tenant API quota, decisions) pass whatever the setting.
    """
    passes = always_open or fail_open()
    state = current_app.extensions.get(_STATE_KEY, {})
    last = state.get("_signoff_last_warning", 0.0)
    if time.monotonic() - last > 30:
        state["_signoff_last_warning"] = time.monotonic()
        log.warning(
            "rate-limit storage unreachable (%s: %s); %s",
            type(exc).__name__,
            exc,
            "letting requests through" if passes else "refusing logins and MFA codes (503)",
        )
    if not passes:
        raise RateLimitUnavailable() from exc


def _sliding_window_storage() -> Any | None:
    """The limiter's Redis storage when it counts with the sliding-window counter (the
    default), so that every rule of a call can go to Redis in one pipeline."""
    strategy = limiter.limiter
    storage = getattr(strategy, "storage", None)
    if not isinstance(strategy, SlidingWindowCounterRateLimiter) or not isinstance(
        storage, RedisStorage
    ):
        return None
    return storage


def _windows(storage: RedisStorage, item: RateLimitItem, rule: Rule) -> list[str]:
    key = item.key_for(*_args(rule))
    return [
        storage.prefixed_key(storage._previous_window_key(key)),
        storage.prefixed_key(storage._current_window_key(key)),
    ]


def _pipelined(storage: RedisStorage, rules: Sequence[Rule], consume: bool) -> Rule | None:
    """Hit (or only test) every rule in **one** Redis round trip: one ``EVALSHA`` of the
    limits library's own sliding-window script per rule, sent as one pipeline (the same
    keys and arithmetic as :meth:`SlidingWindowCounterRateLimiter.hit`/``test``).
    Returns the first rule that refused, or ``None``.

    The scripts are called by their digest; after a Redis restart or ``SCRIPT FLUSH``
    they are loaded and the calls that found none are sent again (once).
    """
    acquire: Any = storage.lua_acquire_sliding_window
    window: Any = storage.lua_sliding_window
    client: Any = storage.get_connection()
    items = [limit_item(rule.limit) for rule in rules]
    todo = list(range(len(rules)))
    answers: dict[int, Any] = {}
    for attempt in (0, 1):
        pipe = client.pipeline(transaction=False)
        for i in todo:
            keys = _windows(storage, items[i], rules[i])
            expiry = items[i].get_expiry()
            if consume:
                pipe.evalsha(acquire.sha, 2, *keys, items[i].amount, expiry, 1)
            else:
                pipe.evalsha(window.sha, 2, *keys, expiry)
        results = pipe.execute(raise_on_error=False)
        missing = []
        for i, result in zip(todo, results, strict=True):
            if isinstance(result, NoScriptError) and attempt == 0:
                missing.append(i)
            elif isinstance(result, Exception):
                raise result
            else:
                answers[i] = result
        if not missing:
            break
        for script in (acquire, window):
            client.script_load(script.script)
        todo = missing
    for i, rule in enumerate(rules):
        if not _allowed(items[i], answers[i], consume):
            return rule
    return None


def _allowed(item: RateLimitItem, answer: Any, consumed: bool) -> bool:
    if consumed:
        return bool(answer)
    previous, previous_ttl_ms, current = (int(answer[0] or 0), answer[1], int(answer[2] or 0))
    previous_expires_in = max(0.0, float(previous_ttl_ms or 0)) / 1000
    weighted = previous * previous_expires_in / item.get_expiry() + current
    return weighted < item.amount


def _refusal(rules: Sequence[Rule], consume: bool) -> Rule | None:
    """The first of ``rules`` that refuses (after hitting every one that fits, when
    ``consume``), in one Redis round trip when the storage allows it."""
    if not rules:
        return None
    storage = _sliding_window_storage()
    if storage is not None:
        return _pipelined(storage, rules, consume)
    strategy = limiter.limiter
    for rule in rules:
        item = limit_item(rule.limit)
        args = _args(rule)
        if not (strategy.hit(item, *args) if consume else strategy.test(item, *args)):
            return rule
    return None


def enforce(rules: Iterable[Rule], *, consume: bool = True, always_open: bool = False) -> None:
    """Count this request against each rule (or only test them); 429 when one is exhausted.

    Every rule goes to Redis in one round trip (:func:`_pipelined`): a caller with
    several limits passes them together. Each rule that fits is counted; the answer
    is the first that refused (its wait costs one more round trip, on refusal only).
    """
    if not app_has_limiter():
        return
    try:
        refused = _refusal(list(rules), consume)
        if refused is not None:
            item = limit_item(refused.limit)
            stats = limiter.limiter.get_window_stats(item, *_args(refused))
            raise RateLimited(refused, _retry_after(item, stats.reset_time))
    except RateLimited as exc:
        if has_request_context():
            g.signoff_retry_after = exc.retry_after_seconds
        raise
    except Exception as exc:
        storage_unavailable(exc, always_open=always_open)


def record(rules: Iterable[Rule]) -> None:
    """Count one event (a failed code) against each rule; never raises."""
    if not app_has_limiter():
        return
    try:
        _refusal(list(rules), True)
    except Exception as exc:
        log.warning("rate-limit storage unreachable (%s); event not counted", type(exc).__name__)


def tally(key: str, amount: int = 1, *, expiry: int = 86400) -> int | None:
    """Add ``amount`` to a plain counter ``key`` in the limiter's storage and return
    its new value; ``None`` without a limiter or when Redis does not answer. Never
    raises. The counter expires ``expiry`` seconds after its last change."""
    if not app_has_limiter():
        return None
    try:
        parts = ("signoff-tally", limiter._key_prefix, key)
        name = "/".join(str(p) for p in parts if p)
        return int(limiter.limiter.storage.incr(name, expiry, amount=amount))
    except Exception as exc:
        log.warning("rate-limit storage unreachable (%s); counter not kept", type(exc).__name__)
        return None


def reset(rules: Iterable[Rule]) -> None:
    """Clear the buckets of ``rules`` (tests, an operator unlocking an account)."""
    if not app_has_limiter():
        return
    strategy = limiter.limiter
    for rule in rules:
        strategy.clear(limit_item(rule.limit), *_args(rule))


def config_limit(key: str) -> str | None:
    value = current_app.config.get(key)
    return str(value) if value else None


# --- the limits -------------------------------------------------------------------------


def plan_limit(plan: str | None) -> str | None:
    plans: Mapping[str, str] = current_app.config.get("SIGNOFF_RATELIMIT_API_PLANS") or {}
    return plans.get(plan or "free") or plans.get("free")


def login_rules(username: str | None) -> list[Rule]:
    """The buckets of failed logins that refuse this address: per address (across
    accounts: credential stuffing) and per account tried *from this address*.

    An attacker elsewhere never fills the owner's bucket; see :func:`login_guard`
    for the per-account ceiling across addresses and the pacing.
    """
    rules = []
    address = config_limit("SIGNOFF_RATELIMIT_LOGIN_ADDRESS")
    if address:
        rules.append(Rule(SCOPE_LOGIN_ADDRESS, address, address_key()))
    account = config_limit("SIGNOFF_RATELIMIT_LOGIN_ACCOUNT")
    if username and account:
        rules.append(Rule(SCOPE_LOGIN_ACCOUNT, account, account_address_key(username)))
    return rules


def login_ceiling_rule(username: str | None) -> Rule | None:
    """Failed logins of one account from every address (``..._ACCOUNT_CEILING``)."""
    ceiling = config_limit("SIGNOFF_RATELIMIT_LOGIN_ACCOUNT_CEILING")
    if not username or not ceiling:
        return None
    return Rule(SCOPE_LOGIN_CEILING, ceiling, account_key(username))


#: Failures of one account from one address before each attempt must wait; the wait
#: then doubles with every failure (1 s, 2 s, 4 s ...) up to LOGIN_PACE_MAX seconds.
LOGIN_PACE_AFTER = 3
LOGIN_PACE_MAX = 60


def login_pace_rule(username: str, failures: int) -> Rule | None:
    """The wait owed after ``failures`` failures of ``username`` from this address."""
    if failures < LOGIN_PACE_AFTER:
        return None
    seconds = min(2 ** (failures - LOGIN_PACE_AFTER), LOGIN_PACE_MAX)
    return Rule(SCOPE_LOGIN_PACE, f"1 per {seconds} second", account_address_key(username))


def _failures(rule: Rule) -> int:
    item = limit_item(rule.limit)
    stats = limiter.limiter.get_window_stats(item, *_args(rule))
    return max(0, item.amount - int(stats.remaining))


def _pace_strategy() -> FixedWindowRateLimiter:
    # A fixed window opens at the first hit: exactly the wait after the last failure.
    return FixedWindowRateLimiter(limiter.limiter.storage)


def login_guard(username: str | None) -> None:
    """Before a login attempt: 429 (with ``Retry-After``) for *this address* when

    - it has too many recent failures, across accounts or for ``username``;
    - it has failed for ``username`` at least ``LOGIN_PACE_AFTER`` times and the
      growing wait since its last failure has not passed (no sleeping: the worker
      is free at once);
    - ``username`` reached its ceiling across all addresses *and* this address has
      failed for it. An address without failures for the account is never refused by
      the ceiling, so its owner still logs in while an attacker is at work elsewhere.

    Only failures count (:func:`login_failed`); nothing here consumes.
    """
    enforce(login_rules(username), consume=False)
    account = config_limit("SIGNOFF_RATELIMIT_LOGIN_ACCOUNT")
    if not username or not account or not app_has_limiter():
        return
    try:
        failed = _failures(Rule(SCOPE_LOGIN_ACCOUNT, account, account_address_key(username)))
        if failed == 0:
            return
        pace = login_pace_rule(username, failed)
        if pace is not None:
            item = limit_item(pace.limit)
            fixed = _pace_strategy()
            if not fixed.test(item, *_args(pace)):
                stats = fixed.get_window_stats(item, *_args(pace))
                raise RateLimited(pace, _retry_after(item, stats.reset_time))
        ceiling = login_ceiling_rule(username)
        if ceiling is not None:
            item = limit_item(ceiling.limit)
            strategy = limiter.limiter
            if not strategy.test(item, *_args(ceiling)):
                stats = strategy.get_window_stats(item, *_args(ceiling))
                raise RateLimited(ceiling, _retry_after(item, stats.reset_time))
    except RateLimited as exc:
        if has_request_context():
            g.signoff_retry_after = exc.retry_after_seconds
        raise
    except Exception as exc:
        storage_unavailable(exc)


def login_failed(username: str | None) -> None:
    """Count one failed login (address, account from this address, account ceiling)
    and start the wait owed before the next attempt; never raises."""
    ceiling = login_ceiling_rule(username)
    record([*login_rules(username), *([ceiling] if ceiling else [])])
    account = config_limit("SIGNOFF_RATELIMIT_LOGIN_ACCOUNT")
    if not username or not account or not app_has_limiter():
        return
    try:
        pace = login_pace_rule(
            username, _failures(Rule(SCOPE_LOGIN_ACCOUNT, account, account_address_key(username)))
        )
        if pace is not None:
            _pace_strategy().hit(limit_item(pace.limit), *_args(pace))
    except Exception as exc:
        log.warning("rate-limit storage unreachable (%s); login pace not set", type(exc).__name__)


def mfa_rules(user_id: int) -> list[Rule]:
    """The buckets of failed MFA codes: per account and per address."""
    rules = []
    account = config_limit("SIGNOFF_RATELIMIT_MFA_ACCOUNT")
    if account:
        rules.append(Rule(SCOPE_MFA_ACCOUNT, account, f"user:{user_id}"))
    address = config_limit("SIGNOFF_RATELIMIT_MFA_ADDRESS")
    if address and has_request_context():
        rules.append(Rule(SCOPE_MFA_ADDRESS, address, address_key()))
    return rules
