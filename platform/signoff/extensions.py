"""Unbound extension singletons, bound to an app in :func:`signoff.app.create_app`."""

from __future__ import annotations

from flask import Flask, current_app
from flask_appbuilder import AppBuilder
from flask_appbuilder.models.sqla.base import SQLA
from flask_caching import Cache

from signoff.limiter import limiter

db = SQLA()
cache = Cache()

__all__ = ["cache", "current_appbuilder", "db", "limiter", "new_appbuilder"]


def new_appbuilder() -> AppBuilder:
    """A fresh AppBuilder for one app.

    FAB's AppBuilder keeps the list of registered views on the instance and skips
    views it has seen, so one instance cannot serve two apps (tests build several).
    ``create_app`` makes one per app; ``current_app.appbuilder`` finds it.
    """
    return AppBuilder(update_perms=False)


def current_appbuilder(app: Flask | None = None) -> AppBuilder:
    """The AppBuilder of ``app`` or the current app (``create_app`` or a host app sets
    it): the one typed way to reach it."""
    appbuilder: AppBuilder = (app or current_app).appbuilder  # type: ignore[attr-defined]
    return appbuilder
