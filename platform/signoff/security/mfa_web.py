"""MFA in the web app: the tenant's "MFA at login" policy as a redirect before a
portal page or a 403 after a tenant API call, and the safe ``next`` target."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import g, jsonify, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from signoff.extensions import db
from signoff.security.mfa import (
    ENROLL_PATH,
    VERIFY_PATH,
    is_enrolled,
    login_verified,
    tenant_requires_mfa,
)


def mfa_required_body(message: str) -> dict[str, Any]:
    return {
        "code": "mfa_required",
        "message": message,
        "field": None,
        "errors": None,
        "mfa_endpoint": VERIFY_PATH,
    }


def api_login_policy() -> Response | None:
    """After a tenant API call is authenticated: 403 ``mfa_required`` when the tenant
    requires MFA and this access token has not passed a check (API keys exempt)."""
    if getattr(g, "api_key", None) is not None:
        return None
    user = getattr(g, "user", None)
    if user is None or not tenant_requires_mfa(db.session) or login_verified(int(user.id)):
        return None
    resp = jsonify(
        mfa_required_body(
            "This organisation requires multi-factor authentication: verify a code at "
            f"POST {VERIFY_PATH} with this token (enrol first at POST {ENROLL_PATH})"
        )
    )
    resp.status_code = 403
    return resp


def safe_next(target: str | None, slug: str) -> str:
    """``target`` if it is a path inside this tenant's portal, else the portal home."""
    home = f"/t/{slug}/"
    if not target or "\\" in target:
        return home
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(home):
        return home
    return target


def web_login_policy() -> Response | None:
    """Before a ``/t/<slug>/`` page: members of a tenant that requires MFA pass a check
    once per login (enrolling first if they have no authenticator)."""
    slug = g.get("tenant_slug")
    endpoint = request.endpoint or ""
    if not slug or endpoint.startswith("MfaView.") or endpoint.endswith(".static"):
        return None
    if not current_user.is_authenticated:
        return None
    if not tenant_requires_mfa(db.session):
        return None
    user_id = int(current_user.id)
    if login_verified(user_id):
        return None
    target = "MfaView.verify" if is_enrolled(db.session, user_id) else "MfaView.enroll"
    here = request.full_path.rstrip("?")
    return redirect(url_for(target, next=here))
