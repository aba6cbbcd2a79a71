"""MFA over the API: enrolment, step-up, recovery codes, and the tenant admin's reset.

``/api/v1/security/mfa/*`` act on the caller's own authenticator and need a JWT
(with or without a tenant claim; API keys are refused). A step-up verification
(``/verify``, ``/recovery``, or confirming an enrolment) is bound to the access
token that made it (its ``jti``): decisions made with that token within
``FAB_APPROVAL_MFA_TIMEOUT`` seconds count as MFA-verified.

``POST /api/v1/tenant-members/<user_id>/mfa/reset`` lets a tenant Admin, who must
have passed MFA with this token recently, reset another member's authenticator;
it is audited in that tenant's chain.

Errors are ``{code, message, field, errors}``: 400 for a malformed body (``field``
names the input), 401 without a valid token, 404/409 for missing or conflicting
state, 422 for a wrong or reused code, 429 (``Retry-After``) when failed codes are
rate limited or the authenticator is locked.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from flask import Blueprint, Flask, current_app, g, jsonify, request
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import expose
from marshmallow import Schema, ValidationError
from werkzeug.wrappers import Response

from signoff.api.base import DocumentedApi, TenantApiMixin, jwt_user, openapi
from signoff.api.mfa_schemas import (
    CODE_BODY,
    CONFIRMED,
    ENROLMENT,
    RECOVERY_CODE_BODY,
    RECOVERY_CODES,
    RECOVERY_VERIFIED,
    RESET,
    STATUS,
    VERIFIED,
    CodeSchema,
    EnrollSchema,
    RecoveryCodeSchema,
)
from signoff.errors import N_
from signoff.extensions import db
from signoff.roles import ADMIN_ROLE
from signoff.security import mfa
from signoff.security.mfa import MfaError

RECOVERY_PATH = "/api/v1/security/mfa/recovery"
#: The MFA endpoints take a JWT only (an API key is refused).
_JWT = ("jwt",)


def error(status: int, code: str, message: str, field: str | None = None, **extra: Any) -> Response:
    resp = jsonify(
        {
            "code": code,
            "message": message,
            "field": field,
            "errors": {field: [message]} if field else None,
            **extra,
        }
    )
    resp.status_code = status
    return resp


def _from_mfa_error(exc: MfaError) -> Response:
    resp = jsonify(exc.to_dict())
    resp.status_code = exc.status
    if exc.retry_after is not None:
        resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


def _from_validation(exc: ValidationError) -> Response:
    messages = exc.messages if isinstance(exc.messages, dict) else {"body": exc.messages}
    errors = {
        str(key): [str(m) for m in (value if isinstance(value, list) else [value])]
        for key, value in messages.items()
    }
    field = next(iter(errors), "body")
    first = errors[field][0] if errors.get(field) else "invalid"
    resp = jsonify(
        {"code": "invalid", "message": f"{field}: {first}", "field": field, "errors": errors}
    )
    resp.status_code = 400
    return resp


def body(schema: Schema) -> dict[str, Any]:
    """The JSON object of the request, validated (400 naming the field otherwise)."""
    raw = request.get_data(cache=True)
    if not raw:
        payload: Any = {}
    elif not request.is_json:
        raise ValidationError({"body": [N_("must be JSON (Content-Type: application/json)")]})
    else:
        payload = request.get_json(silent=True)
        if payload is None:
            raise ValidationError({"body": [N_("is not valid JSON")]})
    if not isinstance(payload, dict):
        raise ValidationError({"body": [N_("must be a JSON object")]})
    loaded: dict[str, Any] = schema.load(payload)
    return loaded


def _uid() -> int:
    return int(g.user.id)


def _verified_payload(at: Any) -> dict[str, Any]:
    return {
        "mfa_verified": True,
        "verified_at": at.isoformat(),
        "expires_in": mfa.timeout_seconds(),
    }


class MfaApi(DocumentedApi):
    """The caller's own authenticator (``/api/v1/security/mfa``)."""

    resource_name = "mfa"
    route_base = "/api/v1/security/mfa"
    openapi_spec_tag = "MFA"
    allow_browser_login = False

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Blueprint:
        bp: Blueprint = super().create_blueprint(appbuilder, *args, **kwargs)

        @bp.before_request
        def _authenticate() -> Response | None:
            if jwt_user() is None:
                return error(401, "unauthorized", "A valid access token is required")
            return None

        bp.register_error_handler(MfaError, _from_mfa_error)
        bp.register_error_handler(ValidationError, _from_validation)
        return bp

    @expose("/status", methods=["GET"])
    @openapi(
        "MFA status of the caller",
        ok={200: ("status", STATUS)},
        errors=(401,),
        security=_JWT,
    )
    def status(self) -> Response:
        # Whether the caller has an authenticator, and when this token last passed MFA.
        state = mfa.status(db.session, _uid())
        db.session.rollback()
        return self.response(200, **state)

    @expose("/enroll", methods=["POST"])
    @openapi(
        "Start (or restart) enrolling a TOTP authenticator",
        description=(
            "The secret is active only after POST /confirm with a valid code. Shown once; "
            "scan the QR code (an SVG data URI) or type the key."
        ),
        ok={201: ("the pending authenticator", ENROLMENT)},
        errors=(401, 409),
        security=_JWT,
    )
    def enroll(self) -> Response:
        # A new secret, its otpauth URI and a QR code.
        data = body(EnrollSchema())
        enrolment = mfa.begin_enrolment(db.session, g.user, restart=data["restart"])
        resp = self.response(201, **enrolment.to_dict())
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @expose("/confirm", methods=["POST"])
    @openapi(
        "Confirm the enrolment with a valid code",
        body=CODE_BODY,
        body_required=True,
        ok={200: ("active; the recovery codes are shown only now", CONFIRMED)},
        errors=(401, 404, 409, 422, 429),
        security=_JWT,
    )
    def confirm(self) -> Response:
        # Activates the pending authenticator; returns ten recovery codes, once.
        data = body(CodeSchema())
        codes = mfa.confirm_enrolment(db.session, _uid(), data["code"])
        at = mfa.verified_at(_uid())
        resp = self.response(200, recovery_codes=codes, **_verified_payload(at))
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @expose("/verify", methods=["POST"])
    @openapi(
        "Verify a code (MFA step-up for this token)",
        description=(
            "Decisions on steps that require MFA made with this token within "
            "FAB_APPROVAL_MFA_TIMEOUT seconds are MFA-verified. A code is accepted once."
        ),
        body=CODE_BODY,
        body_required=True,
        ok={200: ("verified", VERIFIED)},
        errors=(401, 409, 422, 429),
        security=_JWT,
    )
    def verify(self) -> Response:
        data = body(CodeSchema())
        at = mfa.verify_code(db.session, _uid(), data["code"])
        return self.response(200, **_verified_payload(at))

    @expose("/recovery", methods=["POST"])
    @openapi(
        "Verify with a recovery code",
        body=RECOVERY_CODE_BODY,
        body_required=True,
        ok={200: ("verified", RECOVERY_VERIFIED)},
        errors=(401, 409, 422, 429),
        security=_JWT,
    )
    def recovery(self) -> Response:
        # Spends a single-use recovery code as the step-up verification.
        data = body(RecoveryCodeSchema())
        at, left = mfa.use_recovery_code(db.session, _uid(), data["code"])
        return self.response(200, recovery_codes_left=left, **_verified_payload(at))

    @expose("/recovery-codes", methods=["POST"])
    @openapi(
        "New recovery codes",
        ok={200: ("ten new codes, shown only now", RECOVERY_CODES)},
        errors=(401, 403, 409),
        security=_JWT,
    )
    def recovery_codes(self) -> Response:
        # Replaces the recovery codes; needs a fresh verification with this token.
        body(Schema())
        codes = mfa.regenerate_recovery_codes(db.session, _uid())
        resp = self.response(200, recovery_codes=codes)
        resp.headers["Cache-Control"] = "no-store"
        return resp


class TenantMemberMfaApi(TenantApiMixin, DocumentedApi):
    """A tenant Admin resets a member's authenticator."""

    resource_name = "tenant-members"
    route_base = "/api/v1/tenant-members"
    openapi_spec_tag = "MFA"
    allow_browser_login = False
    tenant_roles: ClassVar[tuple[str, ...]] = (ADMIN_ROLE,)

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Blueprint:
        bp: Blueprint = super().create_blueprint(appbuilder, *args, **kwargs)
        bp.register_error_handler(MfaError, _from_mfa_error)
        return bp

    @expose("/<int:user_id>/mfa/reset", methods=["POST"])
    @openapi(
        "Reset a member's MFA authenticator",
        description=(
            "Deletes the member's authenticator, recovery codes and step-up verifications; "
            "the member enrols again. The acting Admin must have passed MFA with this token "
            "within FAB_APPROVAL_MFA_TIMEOUT and cannot reset their own. Audited in the "
            "tenant's chain as mfa.reset."
        ),
        path=[("user_id", {"type": "integer"})],
        ok={200: ("reset", RESET)},
        errors=(401, 403, 404, 429),
        security=_JWT,
    )
    def reset(self, user_id: int) -> Response:
        actor_id = int(g.user.id)
        if getattr(g, "api_key", None) is not None or not mfa.is_fresh(actor_id):
            return error(
                403,
                "mfa_required",
                "Resetting a member's authenticator needs a recent MFA check: verify a code at "
                f"POST {mfa.VERIFY_PATH} with this token, then retry",
                mfa_endpoint=mfa.VERIFY_PATH,
            )
        try:
            existed = mfa.admin_reset(db.session, actor_id=actor_id, user_id=user_id)
        except MfaError:
            db.session.rollback()
            raise
        db.session.commit()
        return self.response(200, user_id=user_id, had_authenticator=existed)


# --- wiring -----------------------------------------------------------------------------


def _name_step_up_endpoint(response: Response) -> Response:
    """An API refusal for a missing MFA step-up names the endpoint that fixes it."""
    if (
        response.status_code < 400
        or response.direct_passthrough
        or response.mimetype != "application/json"
        or not request.path.startswith("/api/")
    ):
        return response
    try:
        payload = json.loads(response.get_data(as_text=True) or "null")
    except ValueError:
        return response
    if (
        not isinstance(payload, dict)
        or payload.get("code") != "mfa_required"
        or "mfa_endpoint" in payload
    ):
        return response
    payload["mfa_endpoint"] = mfa.VERIFY_PATH
    payload["message"] = (
        f"{payload.get('message') or 'multi-factor authentication required'}: verify a code at "
        f"POST {mfa.VERIFY_PATH} (or a recovery code at POST {RECOVERY_PATH}) with this "
        "token, then retry"
    )
    response.set_data(json.dumps(payload))
    return response


def install(app: Flask) -> None:
    if app.extensions.get("signoff_mfa_api"):
        return
    app.extensions["signoff_mfa_api"] = True
    app.after_request(_name_step_up_endpoint)


def register(appbuilder: AppBuilder) -> None:
    """Add the MFA APIs to ``appbuilder`` (from ``register_apis``)."""
    appbuilder.add_api(MfaApi)
    appbuilder.add_api(TenantMemberMfaApi)
    install(current_app._get_current_object())  # type: ignore[attr-defined]
