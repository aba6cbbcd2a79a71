"""The specification's ``FAB_APPROVAL_*`` keys, checked at start.

Every key either does what the specification says or is refused here with a message
that says why and what to set instead; :func:`check_settings` is called by
``create_app`` (the Signoff app) and by the add-on's constructor (a host app), so a
refused key stops the app before it serves anything. :func:`cache_config` turns the
specification's Flask-Caching 1 names (``'CACHE_TYPE': 'redis'``) into Flask-Caching 2's.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from signoff.config import APPROVAL_DEFAULTS
from signoff.workflow.definitions import parse_definitions
from signoff.workflow.errors import DefinitionError
from signoff.workflow.rules import parse_rules

#: A tenant slug, as the database's ``ck_tenant_slug`` allows it.
SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,38}[a-z0-9])")

#: Flask-Caching 1 names (the specification's) and Flask-Caching 2's.
CACHE_TYPES = {
    "redis": "RedisCache",
    "null": "NullCache",
    "simple": "SimpleCache",
    "filesystem": "FileSystemCache",
    "memcached": "MemcachedCache",
    "uwsgi": "UWSGICache",
}

#: What FAB_APPROVAL_CACHE_BACKEND accepts.
CACHE_BACKENDS = ("redis", "null")


class SettingsError(ValueError):
    """A ``FAB_APPROVAL_*`` key cannot run as given; the message says what to do."""


def _bool(cfg: Mapping[str, Any], key: str) -> bool:
    value = cfg.get(key, APPROVAL_DEFAULTS.get(key))
    if not isinstance(value, bool):
        raise SettingsError(f"{key} must be True or False, not {value!r}")
    return value


def _count(cfg: Mapping[str, Any], key: str, *, minimum: int) -> int:
    value = cfg.get(key, APPROVAL_DEFAULTS.get(key))
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise SettingsError(f"{key} must be a number of at least {minimum}, not {value!r}")
    return int(value)


def _names(cfg: Mapping[str, Any], key: str) -> list[str]:
    value = cfg.get(key, APPROVAL_DEFAULTS.get(key))
    if value is None:
        return []
    if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
        raise SettingsError(f"{key} must be a list of names, e.g. ['Admin'], not {value!r}")
    return list(value)


def cache_config(cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """``FAB_APPROVAL_CACHE_CONFIG`` for Flask-Caching 2 (``'redis'`` -> ``'RedisCache'``),
    or for ``FAB_APPROVAL_CACHE_BACKEND = 'redis'`` alone, Redis at ``SIGNOFF_REDIS_URL``;
    ``None`` when neither asks for a cache."""
    raw = cfg.get("FAB_APPROVAL_CACHE_CONFIG")
    backend = cfg.get("FAB_APPROVAL_CACHE_BACKEND")
    if raw is None:
        if backend == "redis" and cfg.get("SIGNOFF_REDIS_URL"):
            return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": cfg["SIGNOFF_REDIS_URL"]}
        return None
    if not isinstance(raw, Mapping):
        raise SettingsError(f"FAB_APPROVAL_CACHE_CONFIG must be a mapping, not {raw!r}")
    out = dict(raw)
    kind = out.get("CACHE_TYPE", "null" if backend != "redis" else "redis")
    out["CACHE_TYPE"] = CACHE_TYPES.get(str(kind).lower(), kind)
    if out["CACHE_TYPE"] == "NullCache":
        out.setdefault("CACHE_NO_NULL_WARNING", True)
    return out


def _check_cache(cfg: Mapping[str, Any]) -> None:
    backend = cfg.get("FAB_APPROVAL_CACHE_BACKEND")
    if backend is not None and backend not in CACHE_BACKENDS:
        raise SettingsError(
            f"FAB_APPROVAL_CACHE_BACKEND {backend!r} is not supported: use 'redis' "
            "(with FAB_APPROVAL_CACHE_CONFIG or SIGNOFF_REDIS_URL) or 'null'"
        )
    config = cache_config(cfg)
    if backend == "redis" and (config is None or config.get("CACHE_TYPE") != "RedisCache"):
        raise SettingsError(
            "FAB_APPROVAL_CACHE_BACKEND = 'redis' needs a Redis: set "
            "FAB_APPROVAL_CACHE_CONFIG = {'CACHE_TYPE': 'redis', 'CACHE_REDIS_URL': ...} "
            "or SIGNOFF_REDIS_URL"
        )
    redis = config is not None and config.get("CACHE_TYPE") == "RedisCache"
    if (
        redis
        and not (config or {}).get("CACHE_REDIS_URL")
        and not (config or {}).get("CACHE_REDIS_HOST")
    ):
        raise SettingsError(
            "FAB_APPROVAL_CACHE_CONFIG uses Redis but names none: set CACHE_REDIS_URL"
        )


def _check_tenant_workflows(cfg: Mapping[str, Any]) -> None:
    raw = cfg.get("FAB_APPROVAL_TENANT_WORKFLOWS") or {}
    if not isinstance(raw, Mapping):
        raise SettingsError("FAB_APPROVAL_TENANT_WORKFLOWS must map tenant slugs to workflows")
    base = cfg.get("FAB_APPROVAL_WORKFLOWS") or {}
    for slug, workflows in raw.items():
        if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug):
            hint = ""
            if isinstance(slug, str):
                fixed = re.sub(r"[^a-z0-9-]+", "-", slug.lower()).strip("-")
                if SLUG_RE.fullmatch(fixed):
                    hint = f" (did you mean {fixed!r}?)"
            raise SettingsError(
                f"FAB_APPROVAL_TENANT_WORKFLOWS key {slug!r} can never match a tenant: a tenant "
                "slug is 3 to 40 lowercase letters, digits and '-', starting and ending with a "
                f"letter or digit{hint}"
            )
        if not isinstance(workflows, Mapping):
            raise SettingsError(
                f"FAB_APPROVAL_TENANT_WORKFLOWS[{slug!r}] must map workflow keys to definitions"
            )
        try:
            parse_definitions({**base, **workflows})
        except DefinitionError as exc:
            raise SettingsError(
                f"FAB_APPROVAL_TENANT_WORKFLOWS[{slug!r}] is invalid: {exc}"
            ) from exc


def _check_slack(cfg: Mapping[str, Any], *, addon: bool) -> None:
    on = _bool(cfg, "FAB_APPROVAL_SLACK_NOTIFICATIONS")
    hook = cfg.get("FAB_APPROVAL_SLACK_WEBHOOK_URL")
    if hook is not None and not addon:
        raise SettingsError(
            "FAB_APPROVAL_SLACK_WEBHOOK_URL only applies to the add-on: in the Signoff app "
            "each tenant connects its own workspace (Admin → Slack); remove the key"
        )
    if hook is not None and (
        not isinstance(hook, str) or not hook.startswith(("https://", "http://"))
    ):
        raise SettingsError(
            f"FAB_APPROVAL_SLACK_WEBHOOK_URL must be the channel's incoming-webhook URL "
            f"(https://hooks.slack.com/services/...), not {hook!r}"
        )
    if addon and on and not hook:
        raise SettingsError(
            "FAB_APPROVAL_SLACK_NOTIFICATIONS = True needs FAB_APPROVAL_SLACK_WEBHOOK_URL in "
            "a host app: its notices go to one Slack channel through an incoming webhook "
            "(a host app has no Slack admin page or member links); set the URL, or set "
            "FAB_APPROVAL_SLACK_NOTIFICATIONS = False"
        )


def check_settings(cfg: Mapping[str, Any], *, addon: bool) -> None:
    """Refuse, with a message saying what to do, every ``FAB_APPROVAL_*`` value the app
    cannot honour. ``addon``: checking a host app (the add-on) rather than Signoff's."""
    unknown = sorted(k for k in cfg if k.startswith("FAB_APPROVAL_") and k not in APPROVAL_DEFAULTS)
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(APPROVAL_DEFAULTS), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SettingsError(f"{key} is not a setting of the approval workflow{hint}")
    enabled = _bool(cfg, "FAB_APPROVAL_ENABLED")
    if not enabled and not addon:
        raise SettingsError(
            "FAB_APPROVAL_ENABLED = False: the Signoff app is the approval workflow and "
            "cannot run without it; remove the key (it switches the add-on off in a host app)"
        )
    if not _bool(cfg, "FAB_APPROVAL_AUTO_CREATE_PERMISSIONS") and not addon:
        raise SettingsError(
            "FAB_APPROVAL_AUTO_CREATE_PERMISSIONS = False: the Signoff app's permissions are "
            "written by `signoff db upgrade`, never at start; the key only applies to the add-on"
        )
    _count(cfg, "FAB_APPROVAL_RATE_LIMIT_WINDOW", minimum=0)
    _count(cfg, "FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW", minimum=0)
    _names(cfg, "FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS")
    _count(cfg, "FAB_APPROVAL_MFA_TIMEOUT", minimum=1)
    if not _bool(cfg, "FAB_APPROVAL_USE_DATABASE_LOCKING"):
        raise SettingsError(
            "FAB_APPROVAL_USE_DATABASE_LOCKING = False is refused: on PostgreSQL every decision "
            "takes its request's advisory lock, which is what keeps two simultaneous decisions "
            "from both counting; it cannot be switched off. Remove the key (or set True) and "
            "tune FAB_APPROVAL_LOCK_TIMEOUT instead"
        )
    lock = cfg.get("FAB_APPROVAL_LOCK_TIMEOUT", APPROVAL_DEFAULTS["FAB_APPROVAL_LOCK_TIMEOUT"])
    if isinstance(lock, bool) or not isinstance(lock, int | float) or lock <= 0:
        raise SettingsError(
            f"FAB_APPROVAL_LOCK_TIMEOUT must be a positive number of seconds, not {lock!r}"
        )
    _bool(cfg, "FAB_APPROVAL_EMAIL_NOTIFICATIONS")
    _check_slack(cfg, addon=addon)
    _bool(cfg, "FAB_APPROVAL_DEBUG_TRACE")
    if not _bool(cfg, "FAB_APPROVAL_MULTI_TENANT") and not addon:
        raise SettingsError(
            "FAB_APPROVAL_MULTI_TENANT = False: the Signoff app is multi-tenant by construction "
            "(row-level security on every table); for a single organisation run one tenant, or "
            "embed the add-on, whose host app is one tenant"
        )
    isolation = cfg.get("FAB_APPROVAL_TENANT_ISOLATION", "strict")
    if isolation != "strict":
        raise SettingsError(
            f"FAB_APPROVAL_TENANT_ISOLATION = {isolation!r} is refused: isolation is never "
            "lowered. Every tenant table is under PostgreSQL row-level security and no "
            "setting shares rows between tenants ('soft' would); set 'strict' or remove the key"
        )
    try:
        parse_definitions(cfg.get("FAB_APPROVAL_WORKFLOWS") or {})
    except DefinitionError as exc:
        raise SettingsError(f"FAB_APPROVAL_WORKFLOWS is invalid: {exc}") from exc
    rules = cfg.get("FAB_APPROVAL_RULES") or []
    try:
        parse_rules(rules, path="FAB_APPROVAL_RULES")
    except DefinitionError as exc:
        raise SettingsError(f"FAB_APPROVAL_RULES is invalid: {exc}") from exc
    _check_tenant_workflows(cfg)
    _check_cache(cfg)
    _count(cfg, "FAB_APPROVAL_CACHE_DEFAULT_TIMEOUT", minimum=0)
    _names(cfg, "FAB_APPROVAL_USER_REFERENCES")
    slug = cfg.get("FAB_APPROVAL_TENANT_SLUG", "default")
    if not isinstance(slug, str) or not SLUG_RE.fullmatch(slug):
        raise SettingsError(
            f"FAB_APPROVAL_TENANT_SLUG {slug!r} is not a tenant slug: 3 to 40 lowercase "
            "letters, digits and '-'"
        )
