"""REST API resources (FAB BaseApi / ModelRestApi), one module per resource.

``GET /api/v1/_openapi`` serves the OpenAPI document of every ``v1`` resource
(FAB's generator: method docs plus marshmallow components), readable without
signing in so clients and code generators can fetch it; FAB's own protected
``/api/<version>/_openapi`` stays for FAB admins and the Swagger page.
"""

from __future__ import annotations

import threading
from typing import Any

from apispec import APISpec
from flask import current_app
from flask_appbuilder import AppBuilder
from flask_appbuilder.api import BaseApi, expose
from flask_appbuilder.api.manager import OpenApi
from flask_appbuilder.menu import MenuApi
from werkzeug.wrappers import Response

from signoff.api import errors
from signoff.api.base import DocumentedApi, openapi
from signoff.extensions import current_appbuilder

API_VERSION = "v1"

#: Serialises the one build of the document per process (see ``SignoffOpenApi.get``).
_BUILD_LOCK = threading.Lock()


def build_openapi_spec(version: str = API_VERSION) -> dict[str, Any]:
    """The OpenAPI 3 document of every registered resource of ``version``."""
    from signoff.api.base import TenantBaseApi, error_responses

    spec: APISpec = OpenApi._create_api_spec(version)
    # One document for every caller: FAB's default ``servers`` is the request's host,
    # which would make the document depend on the Host header. Relative to the
    # document's own URL unless FAB_OPENAPI_SERVERS names the public address.
    spec.options["servers"] = current_app.config.get("FAB_OPENAPI_SERVERS", [{"url": "/"}])
    # Our error responses first: apispec keeps the first component of each name.
    for status, response in error_responses().items():
        spec.components.response(status, response)
    apis = [
        view
        for view in current_appbuilder().baseviews
        if isinstance(view, BaseApi)
        and view.version == version
        # FAB's own spec view and its UI menu helper are not part of Signoff's API.
        and not isinstance(view, OpenApi | MenuApi)
    ]
    # Components of our resources before FAB's: their nested schemas keep their names.
    apis.sort(key=lambda view: not isinstance(view, TenantBaseApi))
    for view in apis:
        view.add_api_spec(spec)
    document: dict[str, Any] = spec.to_dict()
    _complete_fab_docs(document, apis, version)
    document["info"]["description"] = (
        "Signoff: multi-tenant approval workflows. Authenticate with "
        "`POST /api/v1/security/login` (JSON `{username, password, provider: db, tenant}`) "
        "and send `Authorization: Bearer <access_token>`, or send a tenant API key "
        "(`Authorization: Bearer sk_...`). Errors are `{code, message, field, errors}`."
    )
    return document


def _ref(status: int) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{status}"}


def _complete_fab_docs(document: dict[str, Any], apis: list[BaseApi], version: str) -> None:
    """Say what FAB-generated operations really answer, so the spec holds for them too.

    Secured operations can always answer 401 (no or bad credentials) and 403 (FAB
    permission, tenant role, API key scope); FAB's login is rate limited
    and failed-login limits: 429); ``_info`` returns ``add_columns``/``edit_columns`` as
    lists; uuid-keyed ModelRestApis take a uuid ``{pk}``, not FAB's integer.
    """
    from signoff.api.base import UUIDModelRestApi

    uuid_bases = {
        view.route_base for view in apis if isinstance(view, UUIDModelRestApi) and view.route_base
    }
    for path, operations in document["paths"].items():
        for op in operations.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            if op.get("security"):
                responses.setdefault("401", _ref(401))
                responses.setdefault("403", _ref(403))
                # The tenant's plan quota (signoff.security.ratelimit) covers every call.
                responses.setdefault("429", _ref(429))
            if path.endswith("/_info"):
                props = (
                    responses.get("200", {})
                    .get("content", {})
                    .get("application/json", {})
                    .get("schema", {})
                    .get("properties", {})
                )
                for name in ("add_columns", "edit_columns"):
                    if name in props:
                        props[name] = {"type": "array", "items": {"type": "object"}}
            if any(path.startswith(base) for base in uuid_bases):
                for param in op.get("parameters", []):
                    if param.get("in") == "path" and param.get("name") == "pk":
                        param["schema"] = {"type": "string", "format": "uuid"}
    for rate_limited in ("login", "tenants"):
        login = document["paths"].get(f"/api/{version}/security/{rate_limited}", {}).get("post")
        if login is not None:
            login["responses"].setdefault("429", _ref(429))


class SignoffOpenApi(DocumentedApi):
    """``GET /api/v1/_openapi`` (public)."""

    route_base = f"/api/{API_VERSION}"
    version = API_VERSION
    openapi_spec_tag = "OpenAPI"

    @expose("/_openapi", methods=("GET",))
    @openapi(
        "The OpenAPI document of this API",
        ok={200: ("OpenAPI 3 document", {"type": "object"})},
        errors=(),
    )
    def get(self) -> Response:
        # Built once per process (the first call, ~350 ms) and never keyed on anything
        # a caller sends: the Host header used to key a cache that grew per host.
        cache: dict[str, dict[str, Any]] = current_app.extensions.setdefault("signoff_openapi", {})
        if API_VERSION not in cache:
            with _BUILD_LOCK:
                if API_VERSION not in cache:
                    cache[API_VERSION] = build_openapi_spec()
        return self.response(200, **cache[API_VERSION])


def register_apis(appbuilder: AppBuilder) -> None:
    from signoff.api.approval_workflow import ApprovalWorkflowApi
    from signoff.api.attachments import AttachmentsApi
    from signoff.api.audit import AuditApi
    from signoff.api.billing import BillingApi, StripeWebhookApi
    from signoff.api.delegations import DelegationsApi
    from signoff.api.keys import ApiKeysApi
    from signoff.api.members import MembersApi
    from signoff.api.metrics import MetricsApi
    from signoff.api.mfa import register as register_mfa_apis
    from signoff.api.notifications import NotificationsApi
    from signoff.api.requests import RequestsApi
    from signoff.api.roles import TenantRoleApi
    from signoff.api.sessions import SessionsApi
    from signoff.api.slack import SlackApi, SlackInteractivityApi
    from signoff.api.support_access import SupportAccessApi
    from signoff.api.webhooks import WebhooksApi
    from signoff.api.workflows import WorkflowsApi

    errors.install(current_app._get_current_object())  # type: ignore[attr-defined]
    appbuilder.add_api(SignoffOpenApi)
    appbuilder.add_api(ApprovalWorkflowApi)
    appbuilder.add_api(RequestsApi)
    appbuilder.add_api(AttachmentsApi)
    appbuilder.add_api(DelegationsApi)
    appbuilder.add_api(WorkflowsApi)
    appbuilder.add_api(MembersApi)
    appbuilder.add_api(AuditApi)
    appbuilder.add_api(MetricsApi)
    appbuilder.add_api(ApiKeysApi)
    appbuilder.add_api(TenantRoleApi)
    appbuilder.add_api(SlackApi)
    appbuilder.add_api(SlackInteractivityApi)
    appbuilder.add_api(WebhooksApi)
    appbuilder.add_api(NotificationsApi)
    appbuilder.add_api(SupportAccessApi)
    register_mfa_apis(appbuilder)
    appbuilder.add_api(SessionsApi)
    appbuilder.add_api(BillingApi)
    appbuilder.add_api(StripeWebhookApi)
