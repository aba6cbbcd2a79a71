"""Configuration: defaults, then ``SIGNOFF_*`` environment variables, then a mapping.

Nothing here runs at import time: :func:`load_config` is called by ``create_app``.
The specification's ``FAB_APPROVAL_*`` keys are accepted with the meaning the
specification gives them; they may be passed in the mapping or as JSON in the
environment variable of the same name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from signoff.roles import FAB_ADMIN_ROLE

#: Environment variables read by :func:`load_config` and the config key each one sets.
ENV_KEYS: dict[str, str] = {
    "SIGNOFF_DATABASE_URL": "SQLALCHEMY_DATABASE_URI",
    "SIGNOFF_MIGRATION_DATABASE_URL": "SIGNOFF_MIGRATION_DATABASE_URL",
    "SIGNOFF_REDIS_URL": "SIGNOFF_REDIS_URL",
    "SIGNOFF_SECRET_KEY": "SECRET_KEY",
    "SIGNOFF_AUDIT_KEY": "SIGNOFF_AUDIT_KEY",
    "SIGNOFF_AUDIT_KEY_ID": "SIGNOFF_AUDIT_KEY_ID",
    "SIGNOFF_AUDIT_OLD_KEYS": "SIGNOFF_AUDIT_OLD_KEYS",
    "SIGNOFF_DATA_DIR": "SIGNOFF_DATA_DIR",
    "SIGNOFF_RATELIMIT_FAIL_OPEN": "SIGNOFF_RATELIMIT_FAIL_OPEN",
    "SIGNOFF_RATELIMIT_API_PLANS": "SIGNOFF_RATELIMIT_API_PLANS",
    "SIGNOFF_RATELIMIT_LOGIN_ADDRESS": "SIGNOFF_RATELIMIT_LOGIN_ADDRESS",
    "SIGNOFF_RATELIMIT_LOGIN_ACCOUNT": "SIGNOFF_RATELIMIT_LOGIN_ACCOUNT",
    "SIGNOFF_RATELIMIT_LOGIN_ACCOUNT_CEILING": "SIGNOFF_RATELIMIT_LOGIN_ACCOUNT_CEILING",
    "SIGNOFF_RATELIMIT_REFRESH": "SIGNOFF_RATELIMIT_REFRESH",
    "SIGNOFF_RATELIMIT_MFA_ACCOUNT": "SIGNOFF_RATELIMIT_MFA_ACCOUNT",
    "SIGNOFF_RATELIMIT_MFA_ADDRESS": "SIGNOFF_RATELIMIT_MFA_ADDRESS",
    "SIGNOFF_MFA_MAX_FAILURES": "SIGNOFF_MFA_MAX_FAILURES",
    "SIGNOFF_MFA_LOCKOUT_SECONDS": "SIGNOFF_MFA_LOCKOUT_SECONDS",
    "SIGNOFF_SESSION_IDLE_MINUTES": "SIGNOFF_SESSION_IDLE_MINUTES",
    "SIGNOFF_SESSION_MAX_HOURS": "SIGNOFF_SESSION_MAX_HOURS",
    "SIGNOFF_BASE_URL": "SIGNOFF_BASE_URL",
    "SIGNOFF_LOG_LEVEL": "SIGNOFF_LOG_LEVEL",
    "SIGNOFF_SMTP_URL": "SIGNOFF_SMTP_URL",
    "SIGNOFF_MAIL_FROM": "SIGNOFF_MAIL_FROM",
    "SIGNOFF_BROKER_URL": "SIGNOFF_BROKER_URL",
    "SIGNOFF_ACTION_LINK_MAX_AGE": "SIGNOFF_ACTION_LINK_MAX_AGE",
    "SIGNOFF_NOTIFY_MAX_ATTEMPTS": "SIGNOFF_NOTIFY_MAX_ATTEMPTS",
    "SIGNOFF_NOTIFY_BACKOFF_SECONDS": "SIGNOFF_NOTIFY_BACKOFF_SECONDS",
    "SIGNOFF_NOTIFY_BACKOFF_MAX_SECONDS": "SIGNOFF_NOTIFY_BACKOFF_MAX_SECONDS",
    "SIGNOFF_OUTBOUND_ALLOW": "SIGNOFF_OUTBOUND_ALLOW",
    "SIGNOFF_SLACK_API_URL": "SIGNOFF_SLACK_API_URL",
    "SIGNOFF_DEV_MAILBOX": "SIGNOFF_DEV_MAILBOX",
    "SIGNOFF_WORKER_QUEUE": "SIGNOFF_WORKER_QUEUE",
    "SIGNOFF_OUTBOX_SWEEP_SECONDS": "SIGNOFF_OUTBOX_SWEEP_SECONDS",
    "SIGNOFF_SLA_SWEEP_SECONDS": "SIGNOFF_SLA_SWEEP_SECONDS",
    "SIGNOFF_VERIFY_LINK_MAX_AGE": "SIGNOFF_VERIFY_LINK_MAX_AGE",
    "SIGNOFF_RESET_LINK_MAX_AGE": "SIGNOFF_RESET_LINK_MAX_AGE",
    "SIGNOFF_RATELIMIT_ACCOUNT_MAIL_ADDRESS": "SIGNOFF_RATELIMIT_ACCOUNT_MAIL_ADDRESS",
    "SIGNOFF_RATELIMIT_ACCOUNT_MAIL_EMAIL": "SIGNOFF_RATELIMIT_ACCOUNT_MAIL_EMAIL",
    "SIGNOFF_RATELIMIT_ACCOUNT_LINK": "SIGNOFF_RATELIMIT_ACCOUNT_LINK",
    "SIGNOFF_RATELIMIT_PASSWORD_CHANGE": "SIGNOFF_RATELIMIT_PASSWORD_CHANGE",
    "SIGNOFF_MAX_CONTENT_LENGTH": "SIGNOFF_MAX_CONTENT_LENGTH",
    "SIGNOFF_STRIPE_SECRET_KEY": "SIGNOFF_STRIPE_SECRET_KEY",
    "SIGNOFF_STRIPE_PUBLISHABLE_KEY": "SIGNOFF_STRIPE_PUBLISHABLE_KEY",
    "SIGNOFF_STRIPE_WEBHOOK_SECRET": "SIGNOFF_STRIPE_WEBHOOK_SECRET",
    "SIGNOFF_STRIPE_API_BASE": "SIGNOFF_STRIPE_API_BASE",
    "SIGNOFF_STRIPE_WEBHOOK_TOLERANCE": "SIGNOFF_STRIPE_WEBHOOK_TOLERANCE",
    "SIGNOFF_BILLING_PLANS": "SIGNOFF_BILLING_PLANS",
    "SIGNOFF_BILLING_GRACE_DAYS": "SIGNOFF_BILLING_GRACE_DAYS",
    "SIGNOFF_ATTACHMENT_MAX_BYTES": "SIGNOFF_ATTACHMENT_MAX_BYTES",
    "SIGNOFF_ATTACHMENT_MAX_PER_REQUEST": "SIGNOFF_ATTACHMENT_MAX_PER_REQUEST",
    "SIGNOFF_ATTACHMENT_TENANT_BYTES": "SIGNOFF_ATTACHMENT_TENANT_BYTES",
    "SIGNOFF_ATTACHMENT_TYPES": "SIGNOFF_ATTACHMENT_TYPES",
    "SIGNOFF_ATTACHMENT_SCANNER": "SIGNOFF_ATTACHMENT_SCANNER",
    "SIGNOFF_ATTACHMENT_STORE": "SIGNOFF_ATTACHMENT_STORE",
}

#: The plans and their quotas (``signoff.billing``). ``None`` is unlimited; prices are
#: in the currency's smallest unit per ``interval``. The API call rate of each plan is
#: ``SIGNOFF_RATELIMIT_API_PLANS``. Operators replace the whole mapping with
#: ``SIGNOFF_BILLING_PLANS`` (JSON); ``signoff billing sync-plans`` pushes it to Stripe.
BILLING_PLANS: dict[str, Any] = {
    "free": {
        "name": "Free",
        "price": 0,
        "currency": "usd",
        "interval": "month",
        "quotas": {
            "members": 5,
            "workflows": 3,
            "requests_per_month": 100,
            "attachment_mb": 100,
        },
        "channels": {"slack": False, "webhooks": False},
    },
    "team": {
        "name": "Team",
        "price": 2900,
        "currency": "usd",
        "interval": "month",
        "quotas": {
            "members": 50,
            "workflows": 25,
            "requests_per_month": 5000,
            "attachment_mb": 10240,
        },
        "channels": {"slack": True, "webhooks": True},
    },
    "enterprise": {
        "name": "Enterprise",
        "price": 29900,
        "currency": "usd",
        "interval": "month",
        "quotas": {
            "members": None,
            "workflows": None,
            "requests_per_month": None,
            "attachment_mb": None,
        },
        "channels": {"slack": True, "webhooks": True},
    },
}

#: Specification keys (``FAB_APPROVAL_*``) and their defaults.
APPROVAL_DEFAULTS: dict[str, Any] = {
    "FAB_APPROVAL_ENABLED": True,
    "FAB_APPROVAL_AUTO_CREATE_PERMISSIONS": True,
    "FAB_APPROVAL_RATE_LIMIT_WINDOW": 300,
    "FAB_APPROVAL_MAX_APPROVALS_PER_WINDOW": 20,
    "FAB_APPROVAL_RATE_LIMIT_EXEMPTIONS": [],
    "FAB_APPROVAL_MFA_TIMEOUT": 1800,
    "FAB_APPROVAL_USE_DATABASE_LOCKING": True,
    "FAB_APPROVAL_LOCK_TIMEOUT": 10,
    "FAB_APPROVAL_EMAIL_NOTIFICATIONS": True,
    "FAB_APPROVAL_SLACK_NOTIFICATIONS": False,
    "FAB_APPROVAL_WORKFLOWS": {},
    "FAB_APPROVAL_RULES": [],
    "FAB_APPROVAL_MULTI_TENANT": True,
    "FAB_APPROVAL_TENANT_ISOLATION": "strict",
    "FAB_APPROVAL_TENANT_WORKFLOWS": {},
    "FAB_APPROVAL_DEBUG_TRACE": False,
    "FAB_APPROVAL_CACHE_BACKEND": None,
    "FAB_APPROVAL_CACHE_CONFIG": None,
    "FAB_APPROVAL_CACHE_DEFAULT_TIMEOUT": 300,
    # Add-on only: the host app's one tenant, and the host model's user references
    # that may never decide on it (besides the submitter).
    "FAB_APPROVAL_TENANT_SLUG": "default",
    # Add-on only: the Slack channel's incoming webhook (a host app has no Slack admin).
    "FAB_APPROVAL_SLACK_WEBHOOK_URL": None,
    "FAB_APPROVAL_USER_REFERENCES": [
        "created_by",
        "owner",
        "owner_id",
        "requester",
        "requester_id",
        "user_id",
        "submitted_by",
    ],
}

_BOOL_TRUE = {"1", "true", "yes", "on"}


def _coerce(value: str, like: Any) -> Any:
    """Parse an environment string into the type of the default it overrides."""
    if isinstance(like, bool):
        return value.strip().lower() in _BOOL_TRUE
    if isinstance(like, int):
        return int(value)
    if like is None and value.lstrip().startswith(("{", "[")):
        return json.loads(value)  # FAB_APPROVAL_CACHE_CONFIG
    if isinstance(like, list | dict):
        parsed = json.loads(value)
        if not isinstance(parsed, type(like)):
            raise ValueError(f"expected JSON {type(like).__name__}")
        return parsed
    return value


def defaults() -> dict[str, Any]:
    """The built-in configuration, before the environment is read."""
    cfg: dict[str, Any] = {
        "APP_NAME": "Signoff",
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        # No pre-ping round trip: pooled connections are checked at checkout by polling
        # their socket (signoff/db/liveness.py) and renewed after half an hour.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": False, "pool_recycle": 1800},
        # Alembic owns the schema; FAB must never create_all or rewrite permissions
        # on every start.
        "FAB_CREATE_DB": False,
        "FAB_UPDATE_PERMS": False,
        "FAB_ADD_SECURITY_API": False,
        "FAB_API_SWAGGER_UI": True,
        "FAB_SECURITY_MANAGER_CLASS": "signoff.security.manager.SignoffSecurityManager",
        # "/" is the person's home (their organisations), not FAB's Welcome page.
        "FAB_INDEX_VIEW": "signoff.views.home.HomeView",
        "AUTH_TYPE": 1,  # AUTH_DB
        "AUTH_ROLE_ADMIN": FAB_ADMIN_ROLE,
        "AUTH_ROLE_PUBLIC": "Public",
        "AUTH_USER_REGISTRATION": False,
        # FAB disables every limiter unless this is set (docs/ARCHITECTURE.md §6).
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STRATEGY": "sliding-window-counter",
        "RATELIMIT_HEADERS_ENABLED": True,
        "AUTH_RATE_LIMITED": True,
        "AUTH_RATE_LIMIT": "10 per 20 second",
        "SIGNOFF_RATELIMIT_FAIL_OPEN": True,
        # Per tenant, by plan, for every tenant API call (signoff.security.ratelimit).
        "SIGNOFF_RATELIMIT_API_PLANS": {
            "free": "300 per minute",
            "team": "1200 per minute",
            "enterprise": "6000 per minute",
        },
        # Failed logins (web and API) per address, per account tried from one address,
        # and per account from all addresses (the ceiling never refuses an address
        # that has not failed for that account).
        "SIGNOFF_RATELIMIT_LOGIN_ADDRESS": "30 per 10 minute",
        "SIGNOFF_RATELIMIT_LOGIN_ACCOUNT": "10 per 10 minute",
        "SIGNOFF_RATELIMIT_LOGIN_ACCOUNT_CEILING": "100 per hour",
        "SIGNOFF_RATELIMIT_REFRESH": "30 per 10 minute",
        # Failed MFA codes per account and per address.
        "SIGNOFF_RATELIMIT_MFA_ACCOUNT": "5 per 5 minute",
        "SIGNOFF_RATELIMIT_MFA_ADDRESS": "20 per 5 minute",
        "SIGNOFF_MFA_MAX_FAILURES": 10,
        "SIGNOFF_MFA_LOCKOUT_SECONDS": 900,
        # Sign-in sessions (web cookie and API token pair, signoff.security.sessions):
        # ended after this long without a request, and this long after sign-in.
        "SIGNOFF_SESSION_IDLE_MINUTES": 480,
        "SIGNOFF_SESSION_MAX_HOURS": 168,
        "JWT_ACCESS_TOKEN_EXPIRES": timedelta(minutes=30),
        "WTF_CSRF_ENABLED": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SIGNOFF_REDIS_URL": None,
        "SIGNOFF_AUDIT_KEY": None,
        "SIGNOFF_AUDIT_KEY_ID": "k1",
        # Earlier checkpoint keys, "id:key,id:key", for verifying after a rotation.
        "SIGNOFF_AUDIT_OLD_KEYS": None,
        "SIGNOFF_DATA_DIR": None,
        "SIGNOFF_BASE_URL": "http://127.0.0.1:8080",
        "SIGNOFF_LOG_LEVEL": "INFO",
        "SIGNOFF_SMTP_URL": None,
        "SIGNOFF_MAIL_FROM": "signoff@localhost",
        # The worker's broker (Celery); default: SIGNOFF_REDIS_URL.
        "SIGNOFF_BROKER_URL": None,
        # The Celery queue the app publishes to and workers consume.
        "SIGNOFF_WORKER_QUEUE": "signoff",
        # Beat: how often the outbox sweep and the SLA sweep run.
        "SIGNOFF_OUTBOX_SWEEP_SECONDS": 15,
        "SIGNOFF_SLA_SWEEP_SECONDS": 60,
        # E-mail approve/reject links: seconds until they expire.
        "SIGNOFF_ACTION_LINK_MAX_AGE": 72 * 3600,
        # Notification delivery: attempts per channel, then the dead letter; the
        # first retry waits about BACKOFF seconds, doubling up to BACKOFF_MAX.
        "SIGNOFF_NOTIFY_MAX_ATTEMPTS": 8,
        "SIGNOFF_NOTIFY_BACKOFF_SECONDS": 30,
        "SIGNOFF_NOTIFY_BACKOFF_MAX_SECONDS": 3600,
        # Outbound HTTP (webhooks, Slack) may reach these networks despite being
        # private or loopback: comma-separated CIDRs ("127.0.0.1/32"); none by default.
        "SIGNOFF_OUTBOUND_ALLOW": "",
        # Slack's Web API base URL (tests point it at a receiver on 127.0.0.1).
        "SIGNOFF_SLACK_API_URL": "https://slack.com/api/",
        # E-mailed links that prove an address (sign-up, joining by invitation) and
        # password-reset links: seconds until they expire.
        "SIGNOFF_VERIFY_LINK_MAX_AGE": 24 * 3600,
        "SIGNOFF_RESET_LINK_MAX_AGE": 3600,
        # Those e-mails per client address and per address written to, links used
        # (or tried) per client address, failed password changes per account.
        "SIGNOFF_RATELIMIT_ACCOUNT_MAIL_ADDRESS": "10 per hour",
        "SIGNOFF_RATELIMIT_ACCOUNT_MAIL_EMAIL": "3 per hour",
        "SIGNOFF_RATELIMIT_ACCOUNT_LINK": "30 per 10 minute",
        "SIGNOFF_RATELIMIT_PASSWORD_CHANGE": "5 per 10 minute",
        # The quick start's captured-mail page (/dev/mail): the directory of the
        # embedded SMTP server's mailbox. Never set in production.
        "SIGNOFF_DEV_MAILBOX": None,
        # Largest request body in bytes (Flask's MAX_CONTENT_LENGTH follows it): larger
        # bodies answer 413 before anything reads them.
        "SIGNOFF_MAX_CONTENT_LENGTH": 2 * 1024 * 1024,
        # Billing (signoff.billing): off unless the secret key is set. The API base
        # points the stripe library elsewhere (tests: localstripe on 127.0.0.1).
        "SIGNOFF_STRIPE_SECRET_KEY": None,
        "SIGNOFF_STRIPE_PUBLISHABLE_KEY": None,
        "SIGNOFF_STRIPE_WEBHOOK_SECRET": None,
        "SIGNOFF_STRIPE_API_BASE": None,
        # Seconds a signed webhook stays acceptable (older ones are refused as stale).
        "SIGNOFF_STRIPE_WEBHOOK_TOLERANCE": 300,
        "SIGNOFF_BILLING_PLANS": BILLING_PLANS,
        # Days after a failed payment before new requests are refused.
        "SIGNOFF_BILLING_GRACE_DAYS": 7,
        # Attachments (signoff.attachments.content): bytes per file (an upload's body may
        # be this plus 64 KiB, whatever SIGNOFF_MAX_CONTENT_LENGTH says), files per
        # request, bytes per tenant (a plan's quota replaces these three), the accepted
        # types (detected from the content), the virus scanner ("module:function" or
        # "cmd:<command>"; none by default) and where the bytes live.
        "SIGNOFF_ATTACHMENT_MAX_BYTES": 10 * 1024 * 1024,
        "SIGNOFF_ATTACHMENT_MAX_PER_REQUEST": 20,
        "SIGNOFF_ATTACHMENT_TENANT_BYTES": 1024 * 1024 * 1024,
        "SIGNOFF_ATTACHMENT_TYPES": (
            "application/pdf,image/png,image/jpeg,image/gif,image/webp,text/plain"
        ),
        "SIGNOFF_ATTACHMENT_SCANNER": None,
        "SIGNOFF_ATTACHMENT_STORE": "database",
        "SQLALCHEMY_DATABASE_URI": None,
        "SIGNOFF_MIGRATION_DATABASE_URL": None,
        "SECRET_KEY": None,
    }
    cfg["SIGNOFF_BILLING_PLANS"] = json.loads(json.dumps(BILLING_PLANS))
    cfg.update(json.loads(json.dumps(APPROVAL_DEFAULTS)))
    return cfg


def setting(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """One environment variable, empty meaning unset: the only way code outside this
    module reads the environment (the CLI's own settings, ``SIGNOFF_HOME``)."""
    env = os.environ if environ is None else environ
    return env.get(name) or None


def load_config(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Build the configuration: defaults, then the environment, then ``overrides``."""
    env = os.environ if environ is None else environ
    cfg = defaults()
    for env_key, cfg_key in ENV_KEYS.items():
        if env_key in env and env[env_key] != "":
            cfg[cfg_key] = _coerce(env[env_key], cfg.get(cfg_key))
    for key, default in APPROVAL_DEFAULTS.items():
        if key in env and env[key] != "":
            try:
                cfg[key] = _coerce(env[key], default)
            except ValueError as exc:
                raise ValueError(f"{key}: cannot parse {env[key]!r}: {exc}") from exc
    if overrides:
        cfg.update(overrides)
    return cfg
