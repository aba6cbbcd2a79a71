"""FAB's security API with a tenant: ``POST /api/v1/security/login`` names the tenant.

A user who is not a member of the tenant gets the same 401 as a wrong password,
so the endpoint reveals neither which tenants exist nor who belongs to them.

Each login opens a server-side session (:mod:`signoff.security.sessions`): the access
and refresh tokens carry its token in the ``sid`` claim, a refreshed access token keeps
it, and every token of the session is refused (401) once it is revoked, expired or idle.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request
from flask_appbuilder.api import safe
from flask_appbuilder.const import API_SECURITY_ACCESS_TOKEN_KEY, API_SECURITY_REFRESH_TOKEN_KEY
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.views import expose
from flask_jwt_extended import (
    create_access_token,
    create_refresh_token,
    get_jwt,
    get_jwt_identity,
    jwt_required,
)
from marshmallow import Schema, ValidationError, fields, validate

from signoff.db.binding import default_tenant_scope
from signoff.security import sessions
from signoff.tenancy.account_audit import account_tenants
from signoff.tenancy.models import Tenant
from signoff.text import InvalidText, check_text


def _plain_text(value: str) -> None:
    """No NUL, unpaired surrogate or control character (:func:`signoff.text.check_text`)."""
    try:
        check_text(value, field="value")
    except InvalidText as exc:
        raise ValidationError(exc.reason) from None


class LoginSchema(Schema):
    username = fields.String(required=True, validate=[validate.Length(min=1, max=128), _plain_text])
    password = fields.String(
        required=True, validate=[validate.Length(min=1, max=1024), _plain_text]
    )
    provider = fields.String(load_default="db", validate=validate.OneOf(["db"]))
    tenant = fields.String(validate=validate.Length(min=1, max=40))
    refresh = fields.Boolean(load_default=False)


class TenantsQuerySchema(Schema):
    username = fields.String(required=True, validate=[validate.Length(min=1, max=128), _plain_text])
    password = fields.String(
        required=True, validate=[validate.Length(min=1, max=1024), _plain_text]
    )
    provider = fields.String(load_default="db", validate=validate.OneOf(["db"]))


login_schema = LoginSchema()
tenants_schema = TenantsQuerySchema()

#: The answer to a login without ``tenant`` (the field, named; no token is issued).
TENANT_MISSING = (
    "is required: the slug of the organisation to log in to "
    "(POST /api/v1/security/tenants lists them)"
)


def _tenant_optional() -> bool:
    """Only an app with one tenant (the add-on) logs in without naming it."""
    return default_tenant_scope(current_app) is not None


def tenant_claims(tenant_id: Any) -> dict[str, str]:
    return {"tenant": str(tenant_id)} if tenant_id else {}


def session_claims(tenant_id: Any, sid: Any) -> dict[str, str]:
    """The claims of a token pair: its tenant and its session."""
    claims = tenant_claims(tenant_id)
    if isinstance(sid, str):
        claims[sessions.CLAIM] = sid
    return claims


class SignoffSecurityApi(SecurityApi):
    @expose("/login", methods=["POST"])
    @safe
    def login(self) -> Response:
        """Log in for one tenant and get a JWT carrying the tenant claim
        ---
        post:
          description: >-
            Authenticate with username and password for the tenant named by its slug.
            `tenant` is required: without it the answer is 400 naming the field (the
            organisations a user may log in to: `POST /api/v1/security/tenants`).
            A user who is not a member of that tenant gets the same 401 as a wrong
            password.
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [username, password, tenant]
                  properties:
                    username: {type: string}
                    password: {type: string}
                    provider: {type: string, enum: [db]}
                    tenant: {type: string, description: the tenant's slug}
                    refresh: {type: boolean}
          responses:
            200:
              description: Authentication successful
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      access_token: {type: string}
                      refresh_token: {type: string}
            400:
              $ref: '#/components/responses/400'
            401:
              $ref: '#/components/responses/401'
        """
        from signoff.tenancy.resolution import tenant_for_member

        payload, refused = self._json_body(login_schema)
        if refused is not None:
            return refused
        if not payload.get("tenant") and not _tenant_optional():
            return self.response_400(message={"tenant": [TENANT_MISSING]})
        sm = self.appbuilder.sm
        user = sm.auth_user_db(payload["username"], payload["password"])
        if not user:
            return self.response_401()
        tenant_id = None
        if payload.get("tenant"):
            tenant_id = tenant_for_member(sm.session, payload["tenant"], user.id)
            if tenant_id is None:
                return self.response_401()
        sid = sessions.open_session(int(user.id), kind=sessions.API, tenant_id=tenant_id)
        claims = session_claims(tenant_id, sid)
        resp = {
            API_SECURITY_ACCESS_TOKEN_KEY: create_access_token(
                identity=str(user.id), fresh=True, additional_claims=claims
            )
        }
        if payload["refresh"]:
            resp[API_SECURITY_REFRESH_TOKEN_KEY] = create_refresh_token(
                identity=str(user.id), additional_claims=claims
            )
        return self.response(200, **resp)

    def _json_body(self, schema: Any) -> tuple[dict[str, Any], Response | None]:
        """The body loaded by ``schema``, or the 400 that names what is wrong with it."""
        if not request.is_json:
            return {}, self.response_400(message={"body": ["must be JSON (application/json)"]})
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return {}, self.response_400(message={"body": ["must be a JSON object"]})
        try:
            return schema.load(body), None
        except ValidationError as error:
            return {}, self.response_400(message=error.messages)

    @expose("/tenants", methods=["POST"])
    @safe
    def tenants(self) -> Response:
        """The organisations a user may log in to
        ---
        post:
          description: >-
            With the user's own username and password, the tenants (slug and name) in
            which the account is an active member and that are active, for the `tenant`
            of `POST /api/v1/security/login`. Wrong credentials get 401, as a login
            does; the same rate limits apply. Memberships are read through
            `signoff.account_tenants`, never around row-level security.
          requestBody:
            required: true
            content:
              application/json:
                schema:
                  type: object
                  required: [username, password]
                  properties:
                    username: {type: string}
                    password: {type: string}
                    provider: {type: string, enum: [db]}
          responses:
            200:
              description: The organisations, by name
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      result:
                        type: array
                        items:
                          type: object
                          properties:
                            slug: {type: string}
                            name: {type: string}
            400:
              $ref: '#/components/responses/400'
            401:
              $ref: '#/components/responses/401'
        """
        payload, refused = self._json_body(tenants_schema)
        if refused is not None:
            return refused
        sm = self.appbuilder.sm
        user = sm.auth_user_db(payload["username"], payload["password"])
        if not user:
            return self.response_401()
        ids = account_tenants(sm.session, int(user.id))
        rows = []
        if ids:
            query = (
                sm.session.query(Tenant.slug, Tenant.name)
                .filter(Tenant.id.in_(ids), Tenant.status == "active")
                .order_by(Tenant.name, Tenant.slug)
            )
            rows = [{"slug": slug, "name": name} for slug, name in query]
        sm.session.commit()
        return self.response(200, result=rows)

    @expose("/refresh", methods=["POST"])
    @jwt_required(refresh=True)
    @safe
    def refresh(self) -> Response:
        """Exchange a refresh token for a new access token for the same tenant
        ---
        post:
          responses:
            200:
              description: Refresh successful
              content:
                application/json:
                  schema:
                    type: object
                    properties:
                      access_token: {type: string}
            401:
              $ref: '#/components/responses/401'
          security:
            - jwt_refresh: []
        """
        # The refresh token's session was checked when it was loaded (401 if revoked).
        jwt = get_jwt()
        claims = session_claims(jwt.get("tenant"), jwt.get(sessions.CLAIM))
        token = create_access_token(
            identity=get_jwt_identity(), fresh=False, additional_claims=claims
        )
        return self.response(200, **{API_SECURITY_ACCESS_TOKEN_KEY: token})
