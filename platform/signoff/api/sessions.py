"""The caller's sign-in sessions over the API (``/api/v1/security/sessions``).

A JWT (with or without a tenant claim) names its session in its ``sid`` claim
(:mod:`signoff.security.sessions`): ``POST /logout`` ends it, so the access token and
its refresh token are refused (401) from the next request on; ``GET /`` lists the
caller's live sessions (browsers and token pairs), ``POST /{id}/revoke`` ends one of
them and ``POST /revoke-others`` signs out everywhere else. API keys are refused: they
are not sessions (revoke a key with ``DELETE /api/v1/api-keys/{id}``).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g
from flask_appbuilder.api import expose
from werkzeug.wrappers import Response

from signoff.api.base import UUID_PATH, DocumentedApi, api_error, jwt_user, openapi
from signoff.api.sessions_schemas import SessionListSchema, SessionSchema, SessionsEndedSchema
from signoff.db.ids import as_uuid
from signoff.extensions import db
from signoff.security import sessions

_JWT = ("jwt",)


def _unauthorized() -> Response:
    return api_error(401, "unauthorized", "A valid access token is required")


class SessionsApi(DocumentedApi):
    """The calling person's sessions."""

    resource_name = "sessions"
    route_base = "/api/v1/security/sessions"
    openapi_spec_tag = "Sessions"
    allow_browser_login = False
    openapi_spec_component_schemas = (SessionSchema, SessionListSchema, SessionsEndedSchema)

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Blueprint:
        bp: Blueprint = super().create_blueprint(appbuilder, *args, **kwargs)

        @bp.before_request
        def _authenticate() -> Response | None:
            if jwt_user() is None or not sessions.current_session_token():
                return _unauthorized()
            return None

        return bp

    @expose("/", methods=["GET"])
    @openapi(
        "The caller's live sessions",
        ok={200: SessionListSchema},
        errors=(401,),
        security=_JWT,
    )
    def index(self) -> Response:
        rows = sessions.list_sessions(sessions.current_session_token())
        result = [
            {
                "id": r.id,
                "kind": r.kind,
                "tenant_id": r.tenant_id,
                "created_at": r.created_at,
                "last_seen_at": r.last_seen_at,
                "expires_at": r.expires_at,
                "user_agent": r.user_agent,
                "address": r.address,
                "current": r.is_current,
            }
            for r in rows
        ]
        return self.response(200, **SessionListSchema().dump({"result": result}))

    @expose("/logout", methods=["POST"])
    @openapi(
        "Log out: end this token's session",
        description=(
            "The access token and every token of its session (the refresh token included) "
            "are refused from the next request on."
        ),
        ok={200: SessionsEndedSchema},
        errors=(401,),
        security=_JWT,
    )
    def logout(self) -> Response:
        ended = sessions.end_session(sessions.current_session_token(), reason="logout")
        return self.response(200, ended=ended)

    @expose("/<id>/revoke", methods=["POST"])
    @openapi(
        "End one of the caller's sessions",
        path=[("id", UUID_PATH)],
        ok={200: SessionsEndedSchema},
        errors=(401, 404),
        security=_JWT,
    )
    def revoke(self, id: str) -> Response:
        session_id = as_uuid(id)
        ended = session_id is not None and sessions.end_session(
            sessions.current_session_token(), session_id=session_id, reason="signed_out"
        )
        if not ended:
            return api_error(404, "not_found", "No such session", "id")
        return self.response(200, ended=ended)

    @expose("/revoke-others", methods=["POST"])
    @openapi(
        "Sign out everywhere else: end every other session of the caller",
        ok={200: SessionsEndedSchema},
        errors=(401,),
        security=_JWT,
    )
    def revoke_others(self) -> Response:
        session = db.session
        ended = sessions.revoke_user_sessions(
            session,
            int(g.user.id),
            keep=sessions.current_session_token(),
            reason="signed_out_everywhere",
        )
        session.commit()
        return self.response(200, ended=ended)
