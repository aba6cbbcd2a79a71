"""Unbound extension singletons, bound to an app in :func:`signoff.app.create_app`."""

from __future__ import annotations

from flask_appbuilder import AppBuilder
from flask_appbuilder.models.sqla.base import SQLA
from flask_caching import Cache

from signoff.security.ratelimit import SignoffLimiter, rate_limit_key

db = SQLA()
cache = Cache()


def new_appbuilder() -> AppBuilder:
    """A fresh AppBuilder for one app.

    FAB's AppBuilder keeps the list of registered views on the instance and skips
    views it has seen, so one instance cannot serve two apps (tests build several).
    ``create_app`` makes one per app; ``current_app.appbuilder`` finds it.
    """
    return AppBuilder(update_perms=False)


# One Flask-Limiter instance, shared with FAB through SecurityManager.create_limiter
# (DESIGN.md §6); storage and strategy come from config when it is bound.
limiter = SignoffLimiter(key_func=rate_limit_key)
