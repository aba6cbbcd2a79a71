"""Tenant-scoped API plumbing.

A tenant API call carries either a JWT issued for one tenant (``tenant`` claim)
or an API key (``Authorization: Bearer sk_...``), which belongs to one tenant and
one member. The blueprint's ``before_request`` authenticates first, which binds
the tenant (the security manager for a JWT, ``signoff.api_key_tenant`` for a key),
then requires an active membership and the class's ``tenant_roles``. No header
or path can name a tenant. Every failure is JSON in the shape of
:mod:`signoff.api.errors`; another tenant's ids are 404.

:class:`TenantBaseApi` adds what Signoff's own resources share: the ``endpoint``
decorator (FAB permission ``can_read``/``can_write``, optional tenant roles,
errors mapped to the error shape) and OpenAPI operations declared as Python data
(:func:`openapi`, read by :class:`DocumentedApi`) whose schemas are marshmallow
classes: each resource's in ``<resource>_schemas.py`` beside it, what several share in
:mod:`signoff.api.common_schemas`, paged lists on :mod:`signoff.api.paging`. A
resource publishes its schemas as components through FAB's
``openapi_spec_component_schemas`` (named by class name; nested schemas first).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

from flask import Blueprint, g, request
from flask_appbuilder import ModelRestApi
from flask_appbuilder.api import BaseApi
from flask_jwt_extended import verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt import PyJWTError
from marshmallow import Schema
from marshmallow import ValidationError as MarshmallowError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from signoff.api import errors
from signoff.api.common_schemas import ErrorSchema
from signoff.db.binding import current_tenant_id, set_current_tenant
from signoff.extensions import current_appbuilder, db
from signoff.security.caller import current_caller
from signoff.tenancy import apikeys
from signoff.tenancy.access import current_membership
from signoff.tenancy.models import Tenant
from signoff.workflow.actions import ActionError
from signoff.workflow.errors import ValidationError as FieldValidationError

UNAUTHORIZED = "A valid tenant access token or API key is required"


def api_error(status: int, code: str, message: str, field: str | None = None) -> Response:
    return errors.error_response(status, code, message, field=field)


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if header[:7].lower() != "bearer ":
        return None
    return header[7:].strip() or None


def _authenticate_api_key(raw: str) -> Response | None:
    session = db.session
    found = apikeys.resolve(session, raw)
    if found is None:
        return api_error(401, "unauthorized", UNAUTHORIZED)
    tenant_id, user_id = found
    user = current_appbuilder().sm.get_user_by_id(user_id)
    if user is None or not user.is_active:
        return api_error(401, "unauthorized", UNAUTHORIZED)
    set_current_tenant(tenant_id, session)
    g.tenant_id = tenant_id
    principal = apikeys.load_principal(session, raw, tenant_id, user_id)
    if principal is None:
        set_current_tenant(None, session)
        g.tenant_id = None
        return api_error(401, "unauthorized", UNAUTHORIZED)
    g.user = user
    g._api_key_user = True  # FAB's has_access then checks g.user
    g.api_key = principal
    if not principal.allows(request.method):
        return api_error(403, "insufficient_scope", "This API key's scopes do not allow this")
    return None


def jwt_user() -> Any | None:
    """The user of this request's valid access token (``None``: no valid token, or
    one whose user is gone or whose session ended)."""
    try:
        verify_jwt_in_request()
    except (JWTExtendedException, PyJWTError):
        return None
    return getattr(g, "user", None)


def authenticate_request() -> Response | None:
    """Authenticate by API key or tenant JWT; a response when that fails."""
    token = _bearer_token()
    if token is not None and apikeys.looks_like_key(token):
        return _authenticate_api_key(token)
    if jwt_user() is None:
        return api_error(401, "unauthorized", UNAUTHORIZED)
    return None


class TenantApiMixin:
    """Mixin for BaseApi/ModelRestApi classes whose data belongs to one tenant."""

    tenant_roles: ClassVar[tuple[str, ...]] = ()
    signoff_tenant_view: ClassVar[bool] = True
    #: Marks tenant APIs for the rate-limit wiring (plan quota, MFA-at-login policy).
    signoff_tenant_api: ClassVar[bool] = True

    def create_blueprint(self, appbuilder: Any, *args: Any, **kwargs: Any) -> Blueprint:
        bp: Blueprint = super().create_blueprint(appbuilder, *args, **kwargs)  # type: ignore[misc]
        roles = set(self.tenant_roles)

        @bp.before_request
        def _require_tenant_member() -> Response | None:
            failure = authenticate_request()
            if failure is not None:
                return failure
            if current_tenant_id() is None:
                return api_error(404, "not_found", "Not found")
            resolved = current_caller()
            if resolved is not None:
                # An access token: membership, tenant roles and the tenant's status
                # came with the statement that bound the tenant (signoff.api_caller).
                if resolved.tenant_id != current_tenant_id() or resolved.membership_id is None:
                    return api_error(404, "not_found", "Not found")
                if resolved.tenant_status != "active":
                    return api_error(403, "tenant_suspended", "This organisation is suspended")
                if roles and not roles.intersection(resolved.tenant_roles):
                    return api_error(403, "forbidden", "Your tenant role does not allow this")
                return None
            membership = current_membership(db.session)
            if membership is None:
                return api_error(404, "not_found", "Not found")
            tenant = db.session.get(Tenant, current_tenant_id())
            if tenant is None or tenant.status != "active":
                # Members learn why; outsiders got the 404 above. Data is kept.
                return api_error(403, "tenant_suspended", "This organisation is suspended")
            if roles and not roles.intersection(membership.role_names):
                return api_error(403, "forbidden", "Your tenant role does not allow this")
            return None

        bp.register_error_handler(Exception, errors.handle_unexpected)
        return bp


def _uuid_route(method: Any, http_method: str) -> Any:
    """Re-expose one of FAB's ``/<int:pk>`` item routes as ``/<pk>`` for uuid keys.

    Everything FAB's method does (protect, rison, schema merging) is kept; only
    the URL rule changes, so a uuid reaches the handler instead of a 405.
    """

    @functools.wraps(method)
    def wrapper(self: Any, pk: str, **kwargs: Any) -> Any:
        return method(self, pk, **kwargs)

    wrapper._urls = [("/<pk>", [http_method])]  # type: ignore[attr-defined]
    return wrapper


class UUIDModelRestApi(ModelRestApi):
    """ModelRestApi for uuid-keyed models (FAB routes GET by ``<int:pk>``)."""

    get = _uuid_route(ModelRestApi.get, "GET")

    def _sanitize_page_args(
        self, page: int | None, page_size: int | None
    ) -> tuple[int | None, int | None]:
        # FAB passes a negative or huge rison ``page`` straight to OFFSET (a 500 from
        # PostgreSQL); keep the offset within what PostgreSQL accepts.
        page_, size_ = super()._sanitize_page_args(page, page_size)
        if page_ is None:
            return page_, size_
        if not isinstance(page_, int) or page_ < 0:
            page_ = 0
        return min(page_, 2**31 // max(size_ or 1, 1)), size_


# --- OpenAPI as data ----------------------------------------------------------------------

SchemaRef = type[Schema] | dict[str, Any] | str

_ERROR_DESCRIPTIONS = {
    400: "Malformed request, or a field that does not match the schema (named in `field`)",
    401: "No valid tenant access token or API key",
    402: "Refused by billing: over a plan quota (named in `quota`, lifted by `upgrade_to`) "
    "or a payment is past due",
    403: "Your tenant role, FAB permission or API key scope does not allow this",
    404: "Not found (also: another tenant's id, or not visible to you)",
    405: "Method not allowed",
    409: "Conflict: the state moved on, the object is locked, or the Idempotency-Key was reused",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input or refused by the workflow rules; `field` names the input",
    429: "Rate limit exceeded; retry after `Retry-After` seconds",
    500: "Internal error",
    503: "A service this call needs (the database, Stripe, a virus scanner) is down; retry later",
}


def _error_ref() -> dict[str, Any]:
    return {"$ref": "#/components/schemas/ErrorSchema"}


def error_responses() -> dict[str, dict[str, Any]]:
    """``components.responses``: one per status, every one the error shape."""
    out: dict[str, dict[str, Any]] = {}
    for status, text in _ERROR_DESCRIPTIONS.items():
        entry: dict[str, Any] = {
            "description": text,
            "content": {"application/json": {"schema": _error_ref()}},
        }
        if status == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait",
                    "schema": {"type": "integer", "minimum": 0},
                }
            }
        out[str(status)] = entry
    return out


UUID_PATH = {"type": "string", "format": "uuid"}
IDEMPOTENCY_HEADER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "description": (
        "Retries with the same key return the first response; the same key with a "
        "different body is 409"
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"},
}


def _content(schema: SchemaRef, media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": schema}}


def openapi(
    summary: str,
    *,
    description: str | None = None,
    path: Sequence[tuple[str, dict[str, Any]]] = (),
    query: type[Schema] | None = None,
    body: SchemaRef | None = None,
    body_required: bool = False,
    body_content: Mapping[str, SchemaRef] | None = None,
    ok: Mapping[int, SchemaRef | tuple[str, SchemaRef] | None] | None = None,
    ok_content: Mapping[int, Mapping[str, SchemaRef]] | None = None,
    errors: Iterable[int] = (401, 403, 404),
    idempotent: bool = False,
    links: Mapping[int, Mapping[str, dict[str, Any]]] | None = None,
    security: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach one OpenAPI operation (as data, schemas as marshmallow classes) to a method.

    ``links`` are OpenAPI links of a success response (``operationId`` of the target as
    ``Class.method``), which clients and stateful testers follow. ``security`` names the
    schemes of a method without a FAB permission (one with a permission gets ``jwt`` and
    ``api_key`` from :meth:`DocumentedApi.operation_helper`).
    """

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        op: dict[str, Any] = {"summary": summary, "operationId": f.__name__}
        if description:
            op["description"] = description
        if security:
            op["security"] = [{scheme: []} for scheme in security]
        params: list[dict[str, Any]] = [
            {"in": "path", "name": name, "required": True, "schema": schema}
            for name, schema in path
        ]
        if query is not None:
            params.append({"in": "query", "schema": query})
        if idempotent:
            params.append(IDEMPOTENCY_HEADER)
        if params:
            op["parameters"] = params
        if body is not None or body_content:
            content = dict(body_content or {})
            if body is not None:
                content["application/json"] = body
            op["requestBody"] = {
                "required": body_required,
                "content": {media: {"schema": schema} for media, schema in content.items()},
            }
        responses: dict[str, Any] = {}
        for status, spec in (ok or {200: None}).items():
            text = "OK" if status < 300 else "Created"
            schema: SchemaRef | None
            if isinstance(spec, tuple):
                text, schema = spec
            else:
                schema = spec
            entry: dict[str, Any] = {"description": text}
            if ok_content and status in ok_content:
                entry["content"] = {m: {"schema": s} for m, s in ok_content[status].items()}
            elif schema is not None:
                entry["content"] = _content(schema)
            if links and status in links:
                entry["links"] = {name: dict(link) for name, link in links[status].items()}
            responses[str(status)] = entry
        # Every tenant API call draws from the tenant's plan quota: 429 is always possible.
        # A body is checked before the endpoint sees it (signoff.api.input_guard): too
        # large is 413, not JSON where JSON is expected 415.
        body_errors = {413, 415} if "requestBody" in op else set()
        for status in sorted({400, *errors, *body_errors, 429, 500}):
            responses[str(status)] = {"$ref": f"#/components/responses/{status}"}
        op["responses"] = responses
        f._openapi = op  # type: ignore[attr-defined]
        f.__doc__ = f"{summary}\n---\n"  # FAB renders a docstring-less method as {}
        return f

    return deco


def link(operation_id: str, **parameters: Any) -> dict[str, Any]:
    """An OpenAPI link to ``operation_id`` (``Class.method``) with runtime-expression params."""
    return {"operationId": operation_id, "parameters": parameters}


def endpoint(
    permission: str = "read", *, roles: Iterable[str] = (), decides: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """FAB permission ``can_<permission>`` on the class, optional tenant roles, and the
    mapping of domain and validation errors to the error shape. ``decides``: the
    endpoint takes one decision, so the caller's decision budget is drawn with the plan
    quota in the request's one Redis round trip (:mod:`signoff.security.ratelimit`)."""
    wanted = frozenset(roles)

    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def wrapper(self: BaseApi, *args: Any, **kwargs: Any) -> Any:
            perm = f"can_{permission}"
            sm = self.appbuilder.sm
            if perm not in (self.base_permissions or []) or not sm.has_access(
                perm, self.class_permission_name
            ):
                return api_error(403, "forbidden", "Your account lacks this API permission")
            if wanted:
                resolved = current_caller()
                names: Iterable[str]
                if resolved is not None and resolved.tenant_id == current_tenant_id():
                    if resolved.membership_id is None:
                        return api_error(404, "not_found", "Not found")
                    names = resolved.tenant_roles
                else:
                    membership = current_membership(db.session)
                    if membership is None:
                        return api_error(404, "not_found", "Not found")
                    names = membership.role_names
                if not wanted.intersection(names):
                    return api_error(403, "forbidden", "Your tenant role does not allow this")
            try:
                return f(self, *args, **kwargs)
            except ActionError as exc:
                db.session.rollback()
                return errors.from_action_error(exc)
            except MarshmallowError as exc:
                db.session.rollback()
                return errors.from_marshmallow(exc)
            except FieldValidationError as exc:
                db.session.rollback()
                return errors.from_field_errors(exc)
            except BadBody as exc:
                return api_error(
                    exc.status, errors.status_code_name(exc.status), exc.message, field=exc.field
                )

        wrapper._permission_name = permission  # type: ignore[attr-defined]
        wrapper._decides = decides  # type: ignore[attr-defined]
        return wrapper

    return deco


class DocumentedApi(BaseApi):
    """A BaseApi whose methods declare their OpenAPI operations with :func:`openapi`."""

    def operation_helper(
        self,
        path: str | None = None,
        operations: dict[str, Any] | None = None,
        methods: list[str] | None = None,
        func: Callable[..., Response] | None = None,
        **kwargs: Any,
    ) -> None:
        spec = getattr(func, "_openapi", None)
        if spec is None or operations is None:
            super().operation_helper(
                path=path, operations=operations, methods=methods, func=func, **kwargs
            )
            return
        for method in methods or []:
            op = copy.deepcopy(spec)
            if len(methods or []) > 1:
                op["operationId"] = f"{op['operationId']}_{method.lower()}"
            op["operationId"] = f"{type(self).__name__}.{op['operationId']}"
            if func is not None and self.get_method_permission(func.__name__):
                op["security"] = [{"jwt": []}, {"api_key": []}]
            operations[method.lower()] = op


class TenantBaseApi(TenantApiMixin, DocumentedApi):
    """Base of Signoff's own tenant resources (not model CRUD).

    A resource lists the marshmallow components of its operations in
    ``openapi_spec_component_schemas``, nested schemas before the schemas nesting them
    (apispec would publish an unregistered nested schema under another name).
    """

    allow_browser_login = False
    responses = error_responses()
    openapi_spec_component_schemas: tuple[type[Schema], ...] = (ErrorSchema,)


# --- request helpers ----------------------------------------------------------------------


def json_body(schema: Schema, *, required: bool = False) -> dict[str, Any]:
    """The request's JSON object validated by ``schema`` (marshmallow errors propagate)."""
    if request.content_length == 0 or not request.get_data(cache=True):
        if required:
            raise MarshmallowError({"body": ["A JSON object is required"]})
        payload: Any = {}
    else:
        if not request.is_json:
            raise BadBody("The request body must be JSON (Content-Type: application/json)", 415)
        # The input guard (signoff.api.input_guard) parsed and checked it already; what
        # reaches here is valid JSON (``null`` included).
        payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise MarshmallowError({"body": ["must be a JSON object"]})
    loaded: dict[str, Any] = schema.load(payload)
    return loaded


def query_args(schema: Schema) -> dict[str, Any]:
    """The query string validated by ``schema`` (unknown parameters are errors)."""
    data = {key: request.args.get(key) for key in request.args}
    loaded: dict[str, Any] = schema.load(data)
    return loaded


@contextmanager
def transaction() -> Iterator[Session]:
    """One transaction of its own on the request's session, committed on success.

    The read-only transaction the request had open (user loading, lookups) ends
    first; the new one is bound to the tenant by the ``after_begin`` listener.
    """
    real: Session = db.session()
    if real.in_transaction():
        real.commit()
    with real.begin():
        yield real


class BadBody(Exception):
    """The body as a whole is refused (its media type, its size): the field is ``body``."""

    def __init__(self, message: str, status: int = 400, field: str = "body") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.field = field


def idempotency_key() -> str | None:
    """The ``Idempotency-Key`` header (validated by the action layer)."""
    value = request.headers.get("Idempotency-Key")
    return value if value else None


def with_replay_header(resp: Response, replayed: bool) -> Response:
    if replayed:
        resp.headers["Idempotent-Replayed"] = "true"
    return resp
