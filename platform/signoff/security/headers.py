"""Security headers on every response, set by Flask-Talisman.

- ``Content-Security-Policy``: scripts only from this origin, or inline scripts that
  carry the request's nonce (FAB's own templates, its Swagger page, print them with
  ``csp_nonce()``; Signoff's templates have no inline script). An injected
  ``<script>`` or ``on...=`` attribute does not run. Styles allow ``'unsafe-inline'``:
  the layout's accent colour, ``style=`` attributes and the captured-mail page's
  ``srcdoc`` e-mail use them. ``frame-ancestors 'none'``: no page may be framed.
- ``X-Frame-Options: DENY`` for browsers without ``frame-ancestors``.
- ``X-Content-Type-Options: nosniff``.
- ``Referrer-Policy: strict-origin-when-cross-origin``, and ``no-referrer`` on the
  ``/act/`` pages, whose URL holds a signed action token.
- ``Strict-Transport-Security`` only when the request came over https (directly or,
  behind a proxy, ``X-Forwarded-Proto: https``). Plain http is never redirected: TLS
  ends at the deployment's proxy, and the quick start serves http.

Talisman sets its policy on every response, over one a view sets itself; a view that
serves an attachment's bytes says which policy it needs with :func:`file_headers`
(:data:`DOWNLOAD_POLICY` for a download, :data:`INLINE_FILE_POLICY` for a preview the
request page frames).

Session cookie flags stay as configured (``SESSION_COOKIE_SECURE``,
``SESSION_COOKIE_SAMESITE``): Talisman is told not to change them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, request
from flask_talisman import Talisman
from werkzeug.wrappers import Response

CONTENT_SECURITY_POLICY: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "frame-ancestors": "'none'",
}

REFERRER_POLICY = "strict-origin-when-cross-origin"

#: An attachment served as a download: nothing in it may load or run.
DOWNLOAD_POLICY = "default-src 'none'; sandbox"
#: An attachment shown inline (an image, or a PDF in the browser's own viewer, which a
#: ``sandbox`` or ``object-src 'none'`` would block): nothing else loads or runs, and
#: only this origin's pages may frame it.
INLINE_FILE_POLICY = (
    "default-src 'none'; img-src 'self'; object-src 'self'; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'"
)

_F = TypeVar("_F", bound=Callable[..., Any])


def file_headers(policy: str, *, frame_options: str = "DENY") -> Callable[[_F], _F]:
    """Talisman's per-view options for a view that serves a file's bytes."""

    def decorator(view: _F) -> _F:
        view.talisman_view_options = {  # type: ignore[attr-defined]
            "content_security_policy": policy,
            "frame_options": frame_options,
        }
        return view

    return decorator


#: Pages whose URL carries a secret (the signed e-mail action links).
TOKEN_URL_PREFIXES = ("/act/",)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(app: Flask) -> dict[str, str]:
    """The policy; with Stripe configured (``signoff.billing``), Stripe.js may load and
    talk to Stripe (the Billing page's card entry)."""
    policy = dict(CONTENT_SECURITY_POLICY)
    if not app.config.get("SIGNOFF_STRIPE_PUBLISHABLE_KEY"):
        return policy
    base = app.config.get("SIGNOFF_STRIPE_API_BASE")
    js = _origin(str(base)) if base else "https://js.stripe.com"
    api = _origin(str(base)) if base else "https://api.stripe.com"
    policy["script-src"] = f"'self' {js}"
    policy["connect-src"] = f"'self' {api}"
    policy["frame-src"] = js
    return policy


def install(app: Flask) -> Talisman:
    """Set the headers on every response of ``app``."""

    # Registered before Talisman's own hook: Flask runs after_request hooks in reverse
    # order, so this one runs last and its Referrer-Policy wins.
    @app.after_request
    def _no_referrer_for_token_urls(response: Response) -> Response:
        if request.path.startswith(TOKEN_URL_PREFIXES):
            response.headers["Referrer-Policy"] = "no-referrer"
        return response

    return Talisman(
        app,
        force_https=False,
        frame_options="DENY",
        content_security_policy=content_security_policy(app),
        content_security_policy_nonce_in=["script-src"],
        referrer_policy=REFERRER_POLICY,
        strict_transport_security=True,
        strict_transport_security_include_subdomains=False,
        session_cookie_secure=False,
        session_cookie_http_only=bool(app.config.get("SESSION_COOKIE_HTTPONLY", True)),
        session_cookie_samesite=app.config.get("SESSION_COOKIE_SAMESITE", "Lax"),
        x_content_type_options=True,
        # Talisman's defaults for these deprecated or experimental headers are noise.
        feature_policy={},
        permissions_policy={},
        document_policy={},
    )
