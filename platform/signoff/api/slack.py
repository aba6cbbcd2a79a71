"""Slack: the tenant's connection and members' links (``/api/v1/slack``, tenant
``Admin``), and Slack's interactivity endpoint (``/slack/t/<slug>/interactivity``).

Connecting (a bot token, a signing secret, a webhook URL) is done on the admin page,
``/t/<slug>/admin/slack``; the API reads the connection (never a secret), disconnects,
lists confirmed links and removes one. Another tenant's links are 404 like missing ones.

The interactivity endpoint is called by Slack, not by a signed-in user: no session, no
CSRF token (its blueprint is exempt like every REST API's), no tenant API guard. What
it trusts is Slack's signature under the tenant's own signing secret
(:mod:`signoff.notifications.slack_interactivity`). It is left out of the OpenAPI
document (its own ``version``).
"""

from __future__ import annotations

from flask import current_app, g, jsonify, request
from flask_appbuilder.api import BaseApi, expose
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from signoff.api.base import TenantBaseApi, endpoint, openapi, transaction
from signoff.api.common_schemas import ErrorSchema
from signoff.api.input_guard import own_body
from signoff.api.slack_schemas import SlackLinkListSchema, SlackLinkSchema, SlackStatusSchema
from signoff.errors import NotFound
from signoff.extensions import db
from signoff.notifications import slack_interactivity
from signoff.notifications import slack_settings as settings
from signoff.roles import ADMIN_ROLE
from signoff.tenancy.access import current_tenant

_MAX_INT = 2**31 - 1


def _status_body() -> dict[str, object]:
    session = db.session()
    state = settings.status(session)
    tenant = current_tenant(session)
    return SlackStatusSchema().dump(
        {**state.to_dict(), "interactivity_url": settings.interactivity_url(tenant.slug)}
    )


class SlackApi(TenantBaseApi):
    resource_name = "slack"
    openapi_spec_tag = "Slack"
    openapi_spec_component_schemas = (
        ErrorSchema,
        SlackStatusSchema,
        SlackLinkSchema,
        SlackLinkListSchema,
    )
    tenant_roles = (ADMIN_ROLE,)

    @expose("/", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi(
        "The tenant's Slack connection (tenant Admin)",
        description="Never returns a secret. Connect on the admin page /t/<slug>/admin/slack.",
        ok={200: SlackStatusSchema},
        errors=(401, 403),
    )
    def get(self) -> Response:
        return self.response(200, **_status_body())

    @expose("/", methods=("DELETE",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Disconnect Slack (tenant Admin)",
        description=(
            "Forgets the bot token, signing secret and webhook URL and every member's link. "
            "Disconnecting twice is harmless."
        ),
        ok={200: SlackStatusSchema},
        errors=(401, 403),
    )
    def delete(self) -> Response:
        with transaction() as session:
            settings.disconnect(session, actor_id=int(g.user.id))
        return self.response(200, **_status_body())

    @expose("/links", methods=("GET",))
    @endpoint("read", roles=(ADMIN_ROLE,))
    @openapi(
        "Members' confirmed Slack links (tenant Admin)",
        ok={200: SlackLinkListSchema},
        errors=(401, 403),
    )
    def links(self) -> Response:
        rows = settings.confirmed_links(db.session())
        body = SlackLinkListSchema().dump({"count": len(rows), "result": rows})
        return self.response(200, **body)

    @expose("/links/<int:user_id>", methods=("DELETE",))
    @endpoint("write", roles=(ADMIN_ROLE,))
    @openapi(
        "Remove a member's Slack link (tenant Admin)",
        description="The member's Slack user can no longer decide; 404 when there is no link.",
        path=[("user_id", {"type": "integer", "minimum": 0})],
        ok={200: SlackLinkSchema},
    )
    def unlink(self, user_id: int) -> Response:
        if user_id > _MAX_INT:
            raise NotFound("not_found", "Not found")
        with transaction() as session:
            row = settings.link_of(session, user_id)
            if row is None:
                raise NotFound("not_found", "Not found")
            body = SlackLinkSchema().dump(row)
            settings.unlink(session, actor_id=int(g.user.id), user_id=user_id)
        return self.response(200, **body)


class SlackInteractivityApi(BaseApi):
    """``POST /slack/t/<slug>/interactivity``: Slack's button clicks (signed by Slack)."""

    route_base = "/slack"
    version = "slack"  # not part of /api/v1/_openapi
    resource_name = "slack-interactivity"
    openapi_spec_tag = "Slack"

    @expose("/t/<slug>/interactivity", methods=("POST",))
    @own_body
    def interactivity(self, slug: str) -> Response:
        """Slack interactivity, signed by Slack (not part of the published API document)."""
        # The cap holds for chunked bodies too (no Content-Length): werkzeug stops
        # reading at the limit instead of taking the whole body into memory.
        request.max_content_length = slack_interactivity.MAX_BODY
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            return Response("", status=413)
        answer = slack_interactivity.handle(
            db.session, slug=slug, body=body, headers=dict(request.headers)
        )
        if answer.status != 200:
            current_app.logger.info("Slack interactivity for %s refused: %s", slug, answer.code)
        resp = jsonify(answer.body())
        resp.status_code = answer.status
        if answer.response_url:
            # Slack shows what is posted to the click's response_url; post it once our
            # answer is on its way, so that Slack's 3 seconds are never spent waiting.
            app = current_app._get_current_object()  # type: ignore[attr-defined]

            def _respond() -> None:
                with app.app_context():
                    slack_interactivity.respond(answer)

            resp.call_on_close(_respond)
        return resp
