"""Rate-limit keys derived from the authenticated identity, never from a raw header."""

from __future__ import annotations

from flask import g, has_request_context, request

from signoff.db.binding import current_tenant_id


def client_address() -> str:
    """The peer address as the WSGI server saw it (a proxy fix, if any, sets it)."""
    return request.remote_addr or "unknown"


def rate_limit_key() -> str:
    """``tenant:<id>:user:<id>`` for authenticated calls, ``addr:<ip>`` otherwise."""
    if not has_request_context():
        return "none"
    user = getattr(g, "user", None)
    tenant = current_tenant_id()
    if user is not None and getattr(user, "is_authenticated", False) and user.id is not None:
        return f"tenant:{tenant or '-'}:user:{user.id}"
    return f"addr:{client_address()}"


def tenant_key() -> str:
    """``tenant:<id>`` — one bucket shared by every user of a tenant."""
    tenant = current_tenant_id()
    return f"tenant:{tenant}" if tenant else f"addr:{client_address()}"
