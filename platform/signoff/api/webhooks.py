"""``/api/v1/webhooks``: the tenant's webhook endpoints and their deliveries (tenant Admin).

Register an endpoint (URL, event types; the signing secret is in the answer once),
change it, delete it, rotate its secret, send it a test event, read its delivery log
and redeliver a delivery. The work is :mod:`signoff.notifications.webhook_endpoints`
(audited); another tenant's endpoint or delivery is 404 like a random id.
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_appbuilder.api import expose
from werkzeug.wrappers import Response

from signoff.api.base import (
    UUID_PATH,
    TenantBaseApi,
    endpoint,
    json_body,
    link,
    openapi,
    query_args,
    transaction,
)
from signoff.api.common_schemas import ErrorSchema
from signoff.api.paging import PageQuerySchema
from signoff.api.requests import current_user_id
from signoff.api.webhooks_schemas import (
    WebhookCreatedSchema,
    WebhookCreateSchema,
    WebhookDeliveryListSchema,
    WebhookDeliveryQuerySchema,
    WebhookDeliverySchema,
    WebhookEventTypesSchema,
    WebhookListSchema,
    WebhookSchema,
    WebhookSecretSchema,
    WebhookUpdateSchema,
)
from signoff.db.binding import current_tenant_id
from signoff.extensions import db
from signoff.notifications import webhook_endpoints as hooks
from signoff.notifications.models import WebhookEndpoint
from signoff.notifications.webhooks import EVENT_TYPES
from signoff.roles import ADMIN_ROLE
from signoff.workflow.actions import NotFound

_ID = [("id", UUID_PATH)]
_DELIVERY = [("delivery_id", UUID_PATH)]
_ADMIN = (ADMIN_ROLE,)


def _endpoint_dict(row: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": row.id,
        "url": row.url,
        "description": row.description,
        "event_types": list(row.event_types),
        "active": row.active,
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _tenant() -> Any:
    tenant_id = current_tenant_id()
    if tenant_id is None:  # the blueprint's guard makes this moot
        raise NotFound("not_found", "Not found")
    return tenant_id


class WebhooksApi(TenantBaseApi):
    resource_name = "webhooks"
    openapi_spec_tag = "Webhooks"
    openapi_spec_component_schemas = (
        ErrorSchema,
        WebhookCreateSchema,
        WebhookUpdateSchema,
        WebhookSchema,
        WebhookCreatedSchema,
        WebhookSecretSchema,
        WebhookListSchema,
        WebhookEventTypesSchema,
        WebhookDeliverySchema,
        WebhookDeliveryListSchema,
    )
    tenant_roles = _ADMIN

    @expose("/", methods=("GET",))
    @endpoint("read", roles=_ADMIN)
    @openapi(
        "List webhook endpoints (tenant Admin)",
        query=PageQuerySchema,
        ok={200: WebhookListSchema},
        errors=(401, 403, 422),
    )
    def get_list(self) -> Response:
        args = query_args(PageQuerySchema())
        total, rows = hooks.list_endpoints(
            db.session, limit=args["page_size"], offset=args["page"] * args["page_size"]
        )
        body = WebhookListSchema().dump(
            {
                "count": total,
                "page": args["page"],
                "page_size": args["page_size"],
                "result": [_endpoint_dict(r) for r in rows],
            }
        )
        return self.response(200, **body)

    @expose("/", methods=("POST",))
    @endpoint("write", roles=_ADMIN)
    @openapi(
        "Register a webhook endpoint (tenant Admin)",
        description=(
            "The answer carries the signing `secret` (Standard Webhooks, `whsec_...`) once; "
            "it is never shown again (rotate it to get a new one). The URL must be http or "
            "https, without credentials, and resolve only to addresses outbound requests "
            "may reach (422 naming `url` otherwise). With billing on, the plan must "
            "include webhooks (402 otherwise)."
        ),
        body=WebhookCreateSchema,
        body_required=True,
        ok={201: ("Created", WebhookCreatedSchema)},
        errors=(400, 401, 402, 403, 415, 422),
        links={
            201: {
                "GetWebhook": link("WebhooksApi.get", id="$response.body#/id"),
                "ListWebhookDeliveries": link("WebhooksApi.deliveries", id="$response.body#/id"),
            }
        },
    )
    def post(self) -> Response:
        data = json_body(WebhookCreateSchema(), required=True)
        with transaction() as session:
            row, secret = hooks.create_endpoint(
                session,
                url=data["url"],
                event_types=data.get("event_types"),
                description=data.get("description"),
                active=data.get("active", True),
                created_by=current_user_id(),
            )
            body = WebhookCreatedSchema().dump({**_endpoint_dict(row), "secret": secret})
            endpoint_id = row.id
        resp = self.response(201, **body)
        resp.headers["Location"] = url_for(f"{self.endpoint}.get", id=str(endpoint_id))
        return _no_store(resp)

    @expose("/event-types", methods=("GET",))
    @endpoint("read", roles=_ADMIN)
    @openapi(
        "Event types an endpoint can subscribe to",
        ok={200: WebhookEventTypesSchema},
        errors=(401, 403),
    )
    def event_types(self) -> Response:
        return self.response(200, **WebhookEventTypesSchema().dump({"event_types": EVENT_TYPES}))

    @expose("/<id>", methods=("GET",))
    @endpoint("read", roles=_ADMIN)
    @openapi("Get a webhook endpoint (tenant Admin)", path=_ID, ok={200: WebhookSchema})
    def get(self, id: str) -> Response:
        row = hooks.get_endpoint_for(db.session, id)
        return self.response(200, **WebhookSchema().dump(_endpoint_dict(row)))

    @expose("/<id>", methods=("PATCH",))
    @endpoint("write", roles=_ADMIN)
    @openapi(
        "Change a webhook endpoint (tenant Admin)",
        description="Only the fields sent change: `url`, `event_types`, `description`, `active`.",
        path=_ID,
        body=WebhookUpdateSchema,
        ok={200: WebhookSchema},
        errors=(400, 401, 403, 404, 415, 422),
    )
    def patch(self, id: str) -> Response:
        data = json_body(WebhookUpdateSchema())
        with transaction() as session:
            row = hooks.get_endpoint_for(session, id)
            hooks.update_endpoint(
                session,
                row,
                by=current_user_id(),
                url=data.get("url"),
                event_types=data.get("event_types"),
                description=data.get("description"),
                active=data.get("active"),
                fields=tuple(data),
            )
            body = WebhookSchema().dump(_endpoint_dict(row))
        return self.response(200, **body)

    @expose("/<id>", methods=("DELETE",))
    @endpoint("write", roles=_ADMIN)
    @openapi(
        "Delete a webhook endpoint (tenant Admin)",
        description="Its pending deliveries are skipped.",
        path=_ID,
        ok={204: None},
        errors=(401, 403, 404),
    )
    def delete(self, id: str) -> Response:
        with transaction() as session:
            row = hooks.get_endpoint_for(session, id)
            hooks.delete_endpoint(session, row, by=current_user_id())
        return Response(status=204)

    @expose("/<id>/rotate-secret", methods=("POST",))
    @endpoint("write", roles=_ADMIN)
    @openapi(
        "Rotate a webhook endpoint's signing secret (tenant Admin)",
        description="The new secret is in the answer once; the old one signs nothing more.",
        path=_ID,
        ok={200: WebhookSecretSchema},
        errors=(401, 403, 404),
    )
    def rotate_secret(self, id: str) -> Response:
        with transaction() as session:
            row = hooks.get_endpoint_for(session, id)
            secret = hooks.rotate_secret(session, row, by=current_user_id())
            body = WebhookSecretSchema().dump({"id": row.id, "secret": secret})
        return _no_store(self.response(200, **body))

    @expose("/<id>/test", methods=("POST",))
    @endpoint("write", roles=_ADMIN)
    @openapi(
        "Send a test event (tenant Admin)",
        description=(
            "Sends a `webhook.test` event to the endpoint now (one attempt, no retries) "
            "and answers with the delivery: `status` sent or dead, the response code, "
            "the latency and the error."
        ),
        path=_ID,
        ok={200: WebhookDeliverySchema},
        errors=(401, 403, 404, 409),
    )
    def send_test(self, id: str) -> Response:
        session = db.session
        row = hooks.get_endpoint_for(session, id)
        result = hooks.send_test(session, _tenant(), row, by=current_user_id())
        return self.response(200, **WebhookDeliverySchema().dump(result))

    @expose("/<id>/deliveries", methods=("GET",))
    @endpoint("read", roles=_ADMIN)
    @openapi(
        "List an endpoint's deliveries (tenant Admin)",
        description="Newest first: status, response code, latency, attempts, last error.",
        path=_ID,
        query=WebhookDeliveryQuerySchema,
        ok={200: WebhookDeliveryListSchema},
        errors=(401, 403, 404, 422),
    )
    def deliveries(self, id: str) -> Response:
        args = query_args(WebhookDeliveryQuerySchema())
        session = db.session
        row = hooks.get_endpoint_for(session, id)
        total, items = hooks.list_deliveries(
            session,
            row,
            status=args.get("status"),
            limit=args["page_size"],
            offset=args["page"] * args["page_size"],
        )
        body = WebhookDeliveryListSchema().dump(
            {"count": total, "page": args["page"], "page_size": args["page_size"], "result": items}
        )
        return self.response(200, **body)

    @expose("/deliveries/<delivery_id>", methods=("GET",))
    @endpoint("read", roles=_ADMIN)
    @openapi("Get a delivery (tenant Admin)", path=_DELIVERY, ok={200: WebhookDeliverySchema})
    def get_delivery(self, delivery_id: str) -> Response:
        item = hooks.get_delivery_for(db.session, delivery_id)
        return self.response(200, **WebhookDeliverySchema().dump(item))

    @expose("/deliveries/<delivery_id>/redeliver", methods=("POST",))
    @endpoint("write", roles=_ADMIN)
    @openapi(
        "Redeliver (tenant Admin)",
        description=(
            "Starts the delivery over with a fresh set of attempts (whether it was dead, "
            "sent or pending) and makes the first attempt now; a failure is retried with "
            "backoff. The `webhook-id` stays the same."
        ),
        path=_DELIVERY,
        ok={200: WebhookDeliverySchema},
        errors=(401, 403, 404, 409),
    )
    def redeliver(self, delivery_id: str) -> Response:
        result = hooks.redeliver(db.session, _tenant(), delivery_id, by=current_user_id())
        return self.response(200, **WebhookDeliverySchema().dump(result))
